"""Quickly deployable TensorRT plugins (``tensorrt.plugin``, TensorRT >= 10.9) for HERMES.

WRITTEN AGAINST THE DOCUMENTED API, NOT RUN: full TensorRT cannot be installed where this
package is tested, and TensorRT-RTX has no ``tensorrt_rtx.plugin`` (see the package doc).

For each ``hermes`` op this registers, under the plugin id ``hermes::<OpType>`` that the
ONNX parser looks up from the node's op type and ``plugin_namespace``:

- ``@trtp.register``: the output descriptor (same shape and type as ``x``) and the node's
  attributes (``chunk`` for the scan; it changes cost in the SSD form only, and the
  sequential kernel ignores it);
- ``@trtp.autotune``: all tensors FP32, or all FP16, linear layout;
- ``@trtp.aot_impl``: the kernel's PTX for the building GPU (:func:`.aot.compile_ptx`),
  the launch grid / block / shared memory and the int32 scalar arguments as symbolic
  shape expressions, so the engine embeds the kernels and runs with no Python and no
  plugin library (a C++ service can load it).

Only an AOT implementation is registered, so TensorRT cannot fall back to a Python JIT
implementation at run time. Block sizes are build-time constants: the scan's head width
``p`` and state size ``n`` are static in HERMES graphs; the lowpass uses the exact plane
size when height and width are build-time constants (static ``--tile`` engines) and
:data:`.kernels.MAX_SIDE` blocks otherwise. No ``from __future__ import annotations``
here: ``tensorrt.plugin`` reads the type hints of the decorated functions as objects.
"""


import functools
from typing import Any

from ....contracts import SELECTIVE_SCAN, SPECTRAL_LOWPASS
from .aot import KERNEL_ARGS, compile_ptx
from .kernels import MAX_SIDE, next_pow2

__all__ = ["register"]

SCAN_ID = SELECTIVE_SCAN.plugin_id
LOWPASS_ID = SPECTRAL_LOWPASS.plugin_id


def _capability() -> int:
    """SM number of CUDA device 0 (the GPU full TensorRT builds for)."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("full TensorRT builds for the local GPU; no CUDA device is visible")
    major, minor = torch.cuda.get_device_capability(0)
    return major * 10 + minor


def _const(expr: Any, what: str) -> int:
    if not expr.is_constant:
        raise ValueError(f"{what} must be a build-time constant for the HERMES plugin")
    return int(expr.constant_value())


def _side_block(expr: Any) -> int:
    return next_pow2(int(expr.constant_value())) if expr.is_constant else MAX_SIDE


@functools.cache
def register(trt: Any) -> list[str]:
    """Register both plugins with ``tensorrt.plugin`` (once per process); return their ids."""
    import tensorrt.plugin as trtp

    def dtype_name(desc: Any) -> str:
        return "fp16" if desc.dtype == trt.float16 else "fp32"

    def launch(kernel: str, compiled: Any, grid: Any, scalars: list[Any]):
        params = trtp.KernelLaunchParams()
        params.grid_x = grid
        params.block_x = compiled.num_warps * 32
        params.shared_mem = compiled.shared_mem
        extra = trtp.SymIntExprs.from_tuple([trtp.SymInt32(s) for s in scalars])
        assert len(scalars) == len(KERNEL_ARGS[kernel][1])
        return compiled.name.encode(), compiled.ptx.encode(), params, extra

    @trtp.register(SCAN_ID)
    def _scan_desc(x: trtp.TensorDesc, dt: trtp.TensorDesc, A: trtp.TensorDesc,
                   B: trtp.TensorDesc, C: trtp.TensorDesc, chunk: int) -> trtp.TensorDesc:
        return x.like()

    @trtp.autotune(SCAN_ID)
    def _scan_formats(x, dt, A, B, C, outputs):
        return [trtp.AutoTuneCombination(", ".join(["FP32|FP16"] * 6))]

    @trtp.aot_impl(SCAN_ID)
    def _scan_aot(x: trtp.TensorDesc, dt: trtp.TensorDesc, A: trtp.TensorDesc,
                  B: trtp.TensorDesc, C: trtp.TensorDesc, outputs, tactic: int):
        b, l, h, p = x.shape_expr[0], x.shape_expr[1], x.shape_expr[2], x.shape_expr[3]
        g, n = B.shape_expr[2], B.shape_expr[3]
        blocks = {"BLOCK_P": next_pow2(_const(p, "scan head width"), 1),
                  "BLOCK_N": next_pow2(_const(n, "scan state size"), 1)}
        compiled = compile_ptx("selective_scan", dtype_name(x), blocks, _capability())
        return launch("selective_scan", compiled, b * h, [l, h, p, g, n])

    @trtp.register(LOWPASS_ID)
    def _lowpass_desc(x: trtp.TensorDesc, cutoff: trtp.TensorDesc,
                      sharpness: trtp.TensorDesc) -> trtp.TensorDesc:
        return x.like()

    @trtp.autotune(LOWPASS_ID)
    def _lowpass_formats(x, cutoff, sharpness, outputs):
        return [trtp.AutoTuneCombination(", ".join(["FP32|FP16"] * 4))]

    @trtp.aot_impl(LOWPASS_ID)
    def _lowpass_aot(x: trtp.TensorDesc, cutoff: trtp.TensorDesc, sharpness: trtp.TensorDesc,
                     outputs, tactic: int):
        b, c, h, w = (x.shape_expr[i] for i in range(4))
        blocks = {"BLOCK_H": _side_block(h), "BLOCK_W": _side_block(w)}
        compiled = compile_ptx("spectral_lowpass", dtype_name(x), blocks, _capability())
        return launch("spectral_lowpass", compiled, b * c, [c, h, w])

    return [SCAN_ID, LOWPASS_ID]
