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


def _dft_basis(n, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of 2*pi*u*y/n (n x n), from the runtime size: no size-keyed constants."""
    k = torch.arange(n, device=device, dtype=dtype)
    # reduce u*y modulo n before scaling so the angle stays accurate for large n
    phase = torch.remainder(k[:, None] * k[None, :], n) * (2.0 * torch.pi / n)
    return torch.cos(phase), torch.sin(phase)


def spectral_lowpass_lowered(x: torch.Tensor, cutoff: torch.Tensor,
                             sharpness: torch.Tensor) -> torch.Tensor:
    """The same operator with the DFT written as real matmuls (the portable lowering).

    Uses only Range, Mul, Mod, Cos, Sin, MatMul, Sigmoid and Sqrt - ops TensorRT and every
    ONNX runtime support - and builds the bases from the input shape, so height and width
    stay dynamic. Cost O(HW(H+W)) per channel instead of O(HW log HW).
    """
    h, w = x.shape[-2], x.shape[-1]
    ch, sh = _dft_basis(h, x.device, x.dtype)
    cw, sw = _dft_basis(w, x.device, x.dtype)
    k_h = torch.arange(h, device=x.device, dtype=x.dtype)
    k_w = torch.arange(w, device=x.device, dtype=x.dtype)
    fy = torch.minimum(k_h, h - k_h) / h  # |fftfreq|
    fx = torch.minimum(k_w, w - k_w) / w
    r = _SQRT2 * torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    gate = torch.sigmoid(sharpness[:, None, None] * (cutoff[:, None, None] - r))
    xc, xs = x @ cw, x @ sw
    re = (ch @ xc - sh @ xs) * gate  # spectrum of x (e^{-i..} convention), gated
    im = -(ch @ xs + sh @ xc) * gate
    out = ch @ (re @ cw - im @ sw) - sh @ (re @ sw + im @ cw)
    return out / (h * w)


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
