"""Triton kernels of the ``hermes`` custom ops (the compute side of the TensorRT plugins).

Both kernels favour being obviously correct over speed; they are checked against the torch
reference ops under the Triton interpreter (``TRITON_INTERPRET=1``, CPU tensors) and,
on a CUDA machine, by ``scripts/gpu_check.py``.

``selective_scan_kernel`` - one program per (batch, head). The state ``s`` (n x p) lives
in registers and the program walks the sequence once::

    s = exp(dt_t * A_h) * s + dt_t * B_t[:, None] * x_t[None, :]
    y_t = sum_n C_t[n] * s[n, :]

This is the recurrence of :func:`hermes_deploy.ops.scan.selective_scan_numpy`
(sequential, O(l n p) per head), not the chunked SSD form: no chunk attribute is needed
and the sequence length is unbounded. Math in FP32 whatever the I/O type.

``spectral_lowpass_kernel`` - one program per (batch, channel) plane. The 2-D DFT is
written as real matrix products with cos/sin bases made in the kernel (the same
algebra as :func:`hermes_deploy.ops.spectral.spectral_lowpass_lowered`): forward along
W and H, multiply by the radial sigmoid gate, inverse along W and H, divide by H*W.
The plane must fit the block (``H, W <= MAX_SIDE``); cost O(HW(H+W)) per plane. Matrix
products use ``input_precision="ieee"`` so GPUs do not round to TF32.

Ideas: Mamba-2's selective-state-update kernel (one program per head, state in
registers) and the TensorRT quickly-deployable-plugin samples (Triton kernels whose PTX
is embedded in the engine). Kernels written here.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from ...errors import InputError, MissingDependencyError

__all__ = ["MAX_SIDE", "kernels", "selective_scan_triton", "spectral_lowpass_triton"]

#: Largest plane side the lowpass kernel accepts (the whole plane is one block).
MAX_SIDE = 256


def _next_pow2(n: int, floor: int = 16) -> int:
    return max(floor, 1 << max(0, math.ceil(math.log2(max(1, n)))))


@functools.cache
def kernels() -> dict[str, Any]:
    """Compile-on-first-use Triton kernels (``triton`` is imported here, lazily).

    Whether they run in the interpreter is decided by ``TRITON_INTERPRET`` at the first
    call of this function.
    """
    try:
        import triton
        import triton.language as tl
    except ImportError:
        raise MissingDependencyError("triton", "plugins", "Running the HERMES plugin kernels") from None

    @triton.jit
    def selective_scan_kernel(x_ptr, dt_ptr, a_ptr, b_ptr, c_ptr, y_ptr,
                              L, H, P, G, N,
                              BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr):
        pid = tl.program_id(0)  # over batch * heads
        bi = pid // H
        hi = pid % H
        gi = hi // (H // G)
        offs_p = tl.arange(0, BLOCK_P)
        offs_n = tl.arange(0, BLOCK_N)
        mask_p = offs_p < P
        mask_n = offs_n < N
        a = tl.load(a_ptr + hi).to(tl.float32)
        state = tl.zeros((BLOCK_N, BLOCK_P), dtype=tl.float32)
        for t in range(0, L):
            row = bi * L + t
            x = tl.load(x_ptr + (row * H + hi) * P + offs_p, mask=mask_p, other=0.0).to(tl.float32)
            dt = tl.load(dt_ptr + row * H + hi).to(tl.float32)
            bv = tl.load(b_ptr + (row * G + gi) * N + offs_n, mask=mask_n, other=0.0).to(tl.float32)
            cv = tl.load(c_ptr + (row * G + gi) * N + offs_n, mask=mask_n, other=0.0).to(tl.float32)
            state = tl.exp(dt * a) * state + (dt * bv)[:, None] * x[None, :]
            y = tl.sum(cv[:, None] * state, axis=0)
            tl.store(y_ptr + (row * H + hi) * P + offs_p, y.to(y_ptr.dtype.element_ty), mask=mask_p)

    @triton.jit
    def spectral_lowpass_kernel(x_ptr, cut_ptr, sharp_ptr, y_ptr, C, H, W,
                                BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
        pid = tl.program_id(0)  # over batch * channels
        ci = pid % C
        base = pid * H * W
        two_pi: tl.constexpr = 6.283185307179586
        rows = tl.arange(0, BLOCK_H)
        cols = tl.arange(0, BLOCK_W)
        mask_h = rows < H
        mask_w = cols < W
        plane_mask = mask_h[:, None] & mask_w[None, :]
        x = tl.load(x_ptr + base + rows[:, None] * W + cols[None, :], mask=plane_mask,
                    other=0.0).to(tl.float32)

        # bases: [k, j] = cos/sin(2 pi (k j mod n) / n), zero outside n x n
        kh = (rows[:, None] * rows[None, :]) % H
        ph = kh.to(tl.float32) * (two_pi / H)
        hmask = mask_h[:, None] & mask_h[None, :]
        ch = tl.where(hmask, tl.cos(ph), 0.0)
        sh = tl.where(hmask, tl.sin(ph), 0.0)
        kw = (cols[:, None] * cols[None, :]) % W
        pw = kw.to(tl.float32) * (two_pi / W)
        wmask = mask_w[:, None] & mask_w[None, :]
        cw = tl.where(wmask, tl.cos(pw), 0.0)
        sw = tl.where(wmask, tl.sin(pw), 0.0)

        # forward DFT (e^{-i} convention): re = Ch X Cw - Sh X Sw, im = -(Ch X Sw + Sh X Cw)
        xc = tl.dot(x, cw, input_precision="ieee")
        xs = tl.dot(x, sw, input_precision="ieee")
        re = tl.dot(ch, xc, input_precision="ieee") - tl.dot(sh, xs, input_precision="ieee")
        im = -(tl.dot(ch, xs, input_precision="ieee") + tl.dot(sh, xc, input_precision="ieee"))

        # radial gate on |fftfreq|: r = sqrt(2) * sqrt(fy^2 + fx^2)
        fy = tl.minimum(rows, H - rows).to(tl.float32) / H
        fx = tl.minimum(cols, W - cols).to(tl.float32) / W
        r = 1.4142135623730951 * tl.sqrt(fy[:, None] * fy[:, None] + fx[None, :] * fx[None, :])
        cut = tl.load(cut_ptr + ci).to(tl.float32)
        sharp = tl.load(sharp_ptr + ci).to(tl.float32)
        z = tl.minimum(tl.maximum(sharp * (cut - r), -80.0), 80.0)  # exp stays finite
        gate = tl.where(plane_mask, 1.0 / (1.0 + tl.exp(-z)), 0.0)
        re = re * gate
        im = im * gate

        # inverse DFT (e^{+i}), real part: Ch (re Cw - im Sw) - Sh (re Sw + im Cw)
        pr = tl.dot(re, cw, input_precision="ieee") - tl.dot(im, sw, input_precision="ieee")
        pi = tl.dot(re, sw, input_precision="ieee") + tl.dot(im, cw, input_precision="ieee")
        out = tl.dot(ch, pr, input_precision="ieee") - tl.dot(sh, pi, input_precision="ieee")
        out = out / (H * W)
        tl.store(y_ptr + base + rows[:, None] * W + cols[None, :],
                 out.to(y_ptr.dtype.element_ty), mask=plane_mask)

    return {"selective_scan": selective_scan_kernel, "spectral_lowpass": spectral_lowpass_kernel,
            "triton": triton}


def scan_launch(b: int, l: int, h: int, p: int, g: int, n: int) -> tuple[tuple[int], dict[str, int]]:
    """Grid and block sizes of the scan kernel for these sizes (shared with the AOT plugin)."""
    return (b * h,), {"BLOCK_P": _next_pow2(p, 1), "BLOCK_N": _next_pow2(n, 1)}


def lowpass_launch(b: int, c: int, h: int, w: int) -> tuple[tuple[int], dict[str, int]]:
    """Grid and block sizes of the lowpass kernel; refuses planes larger than ``MAX_SIDE``."""
    if h > MAX_SIDE or w > MAX_SIDE:
        raise InputError(f"spectral lowpass kernel handles planes up to {MAX_SIDE}x{MAX_SIDE}; "
                         f"got {h}x{w}: use smaller tiles")
    return (b * c,), {"BLOCK_H": _next_pow2(h), "BLOCK_W": _next_pow2(w)}


def selective_scan_triton(x, dt, A, B, C):
    """``hermes::selective_scan`` on torch tensors (CUDA, or CPU under the interpreter)."""
    b, l, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    if dt.shape != (b, l, h) or A.shape != (h,) or B.shape != (b, l, g, n) or C.shape != B.shape \
            or h % g:
        raise InputError(f"selective scan shapes do not fit: x {tuple(x.shape)}, dt "
                         f"{tuple(dt.shape)}, A {tuple(A.shape)}, B {tuple(B.shape)}, C "
                         f"{tuple(C.shape)}; expected (b,l,h,p), (b,l,h), (h,), (b,l,g,n) x2")
    x, dt, A, B, C = (t.contiguous() for t in (x, dt, A, B, C))
    y = x.new_empty(x.shape)
    grid, blocks = scan_launch(b, l, h, p, g, n)
    kernels()["selective_scan"][grid](x, dt, A, B, C, y, l, h, p, g, n, **blocks)
    return y


def spectral_lowpass_triton(x, cutoff, sharpness):
    """``hermes::spectral_lowpass`` on torch tensors (CUDA, or CPU under the interpreter)."""
    b, c, h, w = x.shape
    if cutoff.shape != (c,) or sharpness.shape != (c,):
        raise InputError(f"spectral lowpass: cutoff {tuple(cutoff.shape)} and sharpness "
                         f"{tuple(sharpness.shape)} must both be ({c},) for x {tuple(x.shape)}")
    x, cutoff, sharpness = (t.contiguous() for t in (x, cutoff, sharpness))
    y = x.new_empty(x.shape)
    grid, blocks = lowpass_launch(b, c, h, w)
    kernels()["spectral_lowpass"][grid](x, cutoff, sharpness, y, c, h, w, **blocks)
    return y
