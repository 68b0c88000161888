"""Triton kernels of the ``hermes`` custom ops (the compute side of the TensorRT plugins).

Kernel arguments are ordered (input pointers, int32 scalars, output pointer), the
calling convention of TensorRT's ahead-of-time plugin launches. Both kernels favour being obviously correct over speed. CPU tensors run them in the
Triton interpreter (``TRITON_INTERPRET=1``, scoped to those calls), CUDA tensors run the
compiled kernels; the tests check the interpreted ones against the torch reference ops,
``scripts/gpu_check.py`` the compiled ones on a GPU.

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

import contextlib
import functools
import importlib.util
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterator

from ....errors import InputError
from ....optional import require

__all__ = ["MAX_SIDE", "kernels", "selective_scan_triton", "spectral_lowpass_triton"]

#: Largest plane side the lowpass kernel accepts (the whole plane is one block).
MAX_SIDE = 256


def next_pow2(n: int, floor: int = 16) -> int:
    return max(floor, 1 << max(0, math.ceil(math.log2(max(1, n)))))


@contextlib.contextmanager
def _interpreter(on: bool) -> Iterator[None]:
    """``TRITON_INTERPRET=1`` while interpreted kernels are defined and launched.

    Triton decides at decoration time whether ``@triton.jit`` gives an interpreted
    function, and reads the flag again while interpreting; scoping it here lets one
    process hold both the compiled kernels (GPU, AOT) and the interpreted ones (CPU).
    """
    if not on:
        yield
        return
    previous = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = previous


def kernels(interpret: bool = False) -> dict[str, Any]:
    """The Triton kernels; ``interpret=True`` gives the interpreter's versions (CPU tensors).

    ``triton`` is imported here, lazily.
    """
    require("triton", purpose="Running the HERMES plugin kernels")
    return _define(bool(interpret))


@functools.cache
def _define(interpret: bool) -> dict[str, Any]:
    with _interpreter(interpret):
        path = Path(__file__).with_name("_triton_src.py")
        name = f"{__package__}._triton_src_{'interpreted' if interpret else 'compiled'}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # triton looks kernels' modules up by name
        spec.loader.exec_module(module)
    return {"selective_scan": module.selective_scan_kernel,
            "spectral_lowpass": module.spectral_lowpass_kernel}


def _launch(name: str, grid: tuple[int], args: tuple, blocks: dict[str, int], device: Any) -> None:
    interpret = getattr(device, "type", "cpu") != "cuda"
    kernel = kernels(interpret)[name]
    with _interpreter(interpret):
        kernel[grid](*args, **blocks)


def scan_launch(b: int, l: int, h: int, p: int, g: int, n: int) -> tuple[tuple[int], dict[str, int]]:
    """Grid and block sizes of the scan kernel for these sizes (shared with the AOT plugin)."""
    return (b * h,), {"BLOCK_P": next_pow2(p, 1), "BLOCK_N": next_pow2(n, 1)}


def lowpass_launch(b: int, c: int, h: int, w: int) -> tuple[tuple[int], dict[str, int]]:
    """Grid and block sizes of the lowpass kernel; refuses planes larger than ``MAX_SIDE``."""
    if h > MAX_SIDE or w > MAX_SIDE:
        raise InputError(f"spectral lowpass kernel handles planes up to {MAX_SIDE}x{MAX_SIDE}; "
                         f"got {h}x{w}: use smaller tiles")
    return (b * c,), {"BLOCK_H": next_pow2(h), "BLOCK_W": next_pow2(w)}


def selective_scan_triton(x, dt, A, B, C):
    """``hermes::selective_scan`` on torch tensors: compiled on CUDA, interpreted on CPU."""
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
    _launch("selective_scan", grid, (x, dt, A, B, C, l, h, p, g, n, y), blocks, x.device)
    return y


def spectral_lowpass_triton(x, cutoff, sharpness):
    """``hermes::spectral_lowpass`` on torch tensors: compiled on CUDA, interpreted on CPU."""
    b, c, h, w = x.shape
    if cutoff.shape != (c,) or sharpness.shape != (c,):
        raise InputError(f"spectral lowpass: cutoff {tuple(cutoff.shape)} and sharpness "
                         f"{tuple(sharpness.shape)} must both be ({c},) for x {tuple(x.shape)}")
    x, cutoff, sharpness = (t.contiguous() for t in (x, cutoff, sharpness))
    y = x.new_empty(x.shape)
    grid, blocks = lowpass_launch(b, c, h, w)
    _launch("spectral_lowpass", grid, (x, cutoff, sharpness, c, h, w, y), blocks, x.device)
    return y
