"""Triton source of the plugin kernels (see :mod:`hermes_deploy.engines.trt.plugins.kernels`).

Loaded by ``kernels._define`` once per mode (compiled / interpreted) as a separate module
object, because ``@triton.jit`` fixes the mode when it decorates and resolves helpers
through the module globals. Do not import this module directly.
"""

import triton
import triton.language as tl


# tl.sum is a @triton.jit helper of triton.language, decided once when triton was
# imported; a combine function defined here follows this kernel set's mode instead.
@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def selective_scan_kernel(x_ptr, dt_ptr, a_ptr, b_ptr, c_ptr,
                          L, H, P, G, N,
                          y_ptr,
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
    state = tl.full((BLOCK_N, BLOCK_P), 0.0, tl.float32)  # tl.zeros is a jit helper too
    for t in range(0, L):
        row = bi * L + t
        x = tl.load(x_ptr + (row * H + hi) * P + offs_p, mask=mask_p, other=0.0).to(tl.float32)
        dt = tl.load(dt_ptr + row * H + hi).to(tl.float32)
        bv = tl.load(b_ptr + (row * G + gi) * N + offs_n, mask=mask_n, other=0.0).to(tl.float32)
        cv = tl.load(c_ptr + (row * G + gi) * N + offs_n, mask=mask_n, other=0.0).to(tl.float32)
        state = tl.exp(dt * a) * state + (dt * bv)[:, None] * x[None, :]
        y = tl.reduce(cv[:, None] * state, 0, _add)
        tl.store(y_ptr + (row * H + hi) * P + offs_p, y.to(y_ptr.dtype.element_ty), mask=mask_p)

@triton.jit
def spectral_lowpass_kernel(x_ptr, cut_ptr, sharp_ptr, C, H, W, y_ptr,
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
