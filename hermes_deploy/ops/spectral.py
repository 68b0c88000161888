"""``hermes::spectral_lowpass``: rFFT2 -> learnable radial low-pass gate -> irFFT2.

Contract:

* ``x``         (b, c, h, w) float32/float64 feature map, any h, w >= 1
* ``cutoff``    (c,) gate centre on the normalized radial frequency r in [0, 1]
* ``sharpness`` (c,) gate slope (> 0 keeps it a low-pass)
* returns ``low`` (b, c, h, w), real

With ``fy`` = fftfreq(h), ``fx`` = rfftfreq(w) (cycles per pixel) the gate is
``m = sigmoid(sharpness * (cutoff - sqrt(2) * sqrt(fy^2 + fx^2)))`` and
``low = irfft2(rfft2(x) * m, s=(h, w))``. The gate is real and even in frequency, so
the operator is a real, symmetric, shape-dependent linear filter of ``x``: the high
band is ``x - low`` by linearity. The FFT treats the map as periodic.
"""

from __future__ import annotations

import numpy as np
import torch

from ._autograd import register_autograd_via_reference

_SQRT2 = 2.0**0.5


def radial_frequency(h: int, w: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(h, w//2+1) normalized radial frequency in [0, 1] of an rFFT2 grid."""
    fy = torch.fft.fftfreq(h, device=device, dtype=dtype).abs()
    fx = torch.fft.rfftfreq(w, device=device, dtype=dtype)
    return _SQRT2 * torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def spectral_lowpass_reference(x: torch.Tensor, cutoff: torch.Tensor,
                               sharpness: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    r = radial_frequency(h, w, device=x.device, dtype=x.dtype)
    gate = torch.sigmoid(sharpness[:, None, None] * (cutoff[:, None, None] - r))
    spec = torch.fft.rfft2(x, norm="ortho")
    return torch.fft.irfft2(spec * gate, s=(h, w), norm="ortho")


def _half_basis(n, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Half-spectrum real DFT basis of length ``n`` and its bin weights.

    Returns ``m`` (2k x n) = [cos; sin] of 2*pi*u*y/n for the k = n//2 + 1 bins u of a
    real DFT, and ``wt`` (2k,) with the Hermitian weights 1 (DC and, for even n, the
    Nyquist bin) or 2 (every other bin, which stands for u and n - u) divided by n.
    Built from the runtime size: no size-keyed constants.
    """
    k = n // 2 + 1
    u = torch.arange(k, device=device, dtype=dtype)
    y = torch.arange(n, device=device, dtype=dtype)
    # reduce u*y modulo n before scaling so the angle stays accurate for large n
    phase = torch.remainder(u[:, None] * y[None, :], n) * (2.0 * torch.pi / n)
    m = torch.cat([torch.cos(phase), torch.sin(phase)], dim=0)
    single = (u == 0) | (2 * u == n)
    wt = (2.0 - single.to(dtype)) / n
    return m, torch.cat([wt, wt])


def spectral_lowpass_lowered(x: torch.Tensor, cutoff: torch.Tensor,
                             sharpness: torch.Tensor) -> torch.Tensor:
    """The same operator with the DFT written as real matmuls (the portable lowering).

    Half-spectrum in both axes: the gate is real and even in both frequencies, so for
    every column frequency v the filter along H is a real symmetric operator; it is
    applied to the cosine and sine parts of the W-axis real DFT separately, each as a
    half-spectrum cosine/sine transform (C(u) cos + S(u) sin summed over u = 0..H/2 with
    Hermitian weights, since C is even and S odd in u). Four real matmuls,
    x @ [cos|sin]_W, [cos;sin]_H @ ., [cos;sin]_H^T @ (gate * .), . @ [cos;sin]_W^T, of
    about a third of the FLOPs of full complex DFT matmuls. Uses only Range, Mul, Mod,
    Cos, Sin, MatMul, Sigmoid and Sqrt - ops TensorRT and every ONNX runtime support -
    and builds the bases from the input shape, so height and width stay dynamic. Cost
    O(HW(H+W)) per channel instead of O(HW log HW).
    """
    h, w = x.shape[-2], x.shape[-1]
    mh, wt_h = _half_basis(h, x.device, x.dtype)  # (2U, h), (2U,)
    mw, wt_w = _half_basis(w, x.device, x.dtype)  # (2V, w), (2V,)
    kh, kw = h // 2 + 1, w // 2 + 1
    fy = torch.arange(kh, device=x.device, dtype=x.dtype) / h
    fx = torch.arange(kw, device=x.device, dtype=x.dtype) / w
    r = _SQRT2 * torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)  # (U, V)
    r = r.repeat(2, 2)  # the same frequency for the cos and sin rows/columns
    gate = torch.sigmoid(sharpness[:, None, None] * (cutoff[:, None, None] - r))
    gate = gate * (wt_h[:, None] * wt_w[None, :])  # Hermitian weights and 1/(hw)
    spec = mh @ (x @ mw.transpose(0, 1))  # (b, c, 2U, 2V): [C; S] x [cos | sin]
    return (mh.transpose(0, 1) @ (spec * gate)) @ mw


@torch.library.custom_op("hermes::spectral_lowpass", mutates_args=())
def spectral_lowpass_op(x: torch.Tensor, cutoff: torch.Tensor,
                        sharpness: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return spectral_lowpass_reference(x, cutoff, sharpness).contiguous()


@spectral_lowpass_op.register_fake
def _(x, cutoff, sharpness):
    return torch.empty_like(x)


register_autograd_via_reference(spectral_lowpass_op, spectral_lowpass_reference, n_tensors=3)


def spectral_lowpass_numpy(x, cutoff, sharpness) -> np.ndarray:
    """Float64 reference by a direct (non-FFT) DFT, independent of torch.fft."""
    x = np.asarray(x, dtype=np.float64)
    h, w = x.shape[-2:]
    fy = np.abs(np.fft.fftfreq(h))
    fx = np.abs(np.fft.fftfreq(w))  # full grid: the gate is even, so use |fx|
    r = _SQRT2 * np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    cutoff = np.asarray(cutoff, np.float64)[:, None, None]
    sharp = np.asarray(sharpness, np.float64)[:, None, None]
    gate = 1.0 / (1.0 + np.exp(-sharp * (cutoff - r)))
    ky = np.exp(-2j * np.pi * np.outer(np.arange(h), np.arange(h)) / h)
    kx = np.exp(-2j * np.pi * np.outer(np.arange(w), np.arange(w)) / w)
    spec = np.einsum("uy,...yx,vx->...uv", ky, x, kx)
    back = np.einsum("uy,...yx,vx->...uv", ky.conj(), spec * gate, kx.conj()) / (h * w)
    return back.real
