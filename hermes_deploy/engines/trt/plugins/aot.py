"""Ahead-of-time compilation of the plugin kernels to PTX (no GPU needed).

TensorRT's ahead-of-time plugins (``tensorrt.plugin.aot_impl``) embed a kernel's PTX in
the engine and launch it with the arguments ``(input pointers..., int32 scalars...,
output pointers...)``. :func:`compile_ptx` compiles a kernel of :mod:`.kernels` for one
GPU architecture with Triton's compiler (``triton.compile`` with an explicit
``GPUTarget``, which runs on a machine without a GPU) and makes the PTX fit that calling
convention: Triton >= 3.3 appends hidden ``global_scratch`` / ``profile_scratch``
pointer parameters after the kernel's own arguments; they are removed when the kernel
body never reads them (scratch size 0), and compilation fails loudly otherwise.

Tested here: PTX for SM89 is generated for both kernels and assembles with ``ptxas``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ....errors import KernelCompileError

__all__ = ["CompiledKernel", "compile_ptx", "KERNEL_ARGS"]

#: kernel -> (pointer inputs, int32 scalars, pointer outputs), in argument order.
KERNEL_ARGS = {
    "selective_scan": (("x_ptr", "dt_ptr", "a_ptr", "b_ptr", "c_ptr"),
                       ("L", "H", "P", "G", "N"), ("y_ptr",)),
    "spectral_lowpass": (("x_ptr", "cut_ptr", "sharp_ptr"), ("C", "H", "W"), ("y_ptr",)),
}
_BLOCKS = {"selective_scan": ("BLOCK_P", "BLOCK_N"), "spectral_lowpass": ("BLOCK_H", "BLOCK_W")}




@dataclass(frozen=True)
class CompiledKernel:
    name: str  # PTX entry name
    ptx: str
    num_warps: int  # block = num_warps * 32 threads
    shared_mem: int  # dynamic shared memory in bytes
    num_params: int


def compile_ptx(kernel: str, dtype: str, blocks: dict[str, int], capability: int = 89
                ) -> CompiledKernel:
    """PTX of ``kernel`` (``"selective_scan"`` / ``"spectral_lowpass"``) for SM ``capability``.

    ``dtype`` is the I/O type, ``"fp32"`` or ``"fp16"``; ``blocks`` the constexpr block
    sizes (see :func:`.kernels.scan_launch` / :func:`.kernels.lowpass_launch`).
    """
    import triton
    from triton.backends.compiler import GPUTarget

    from .kernels import kernels

    if kernel not in KERNEL_ARGS or dtype not in ("fp32", "fp16"):
        raise KernelCompileError(f"no kernel {kernel!r} for {dtype!r}; kernels: "
                                 f"{sorted(KERNEL_ARGS)}, dtypes fp32/fp16")
    inputs, scalars, outputs = KERNEL_ARGS[kernel]
    # A, cutoff and sharpness share the node's float type (one type per node).
    signature = {name: f"*{dtype}" for name in inputs}
    signature.update({name: "i32" for name in scalars})
    signature.update({name: f"*{dtype}" for name in outputs})
    signature.update({name: "constexpr" for name in _BLOCKS[kernel]})
    source = triton.compiler.ASTSource(fn=kernels(interpret=False)[kernel], signature=signature,
                                       constexprs={k: int(blocks[k]) for k in _BLOCKS[kernel]})
    compiled = triton.compile(source, target=GPUTarget("cuda", int(capability), 32))
    meta = compiled.metadata
    for scratch in ("global_scratch_size", "profile_scratch_size"):
        if getattr(meta, scratch, 0):
            raise KernelCompileError(f"{kernel} needs {scratch}={getattr(meta, scratch)}; "
                                     "TensorRT's AOT launch cannot pass scratch buffers")
    wanted = len(inputs) + len(scalars) + len(outputs)
    ptx = strip_unused_trailing_params(compiled.asm["ptx"], meta.name, wanted)
    return CompiledKernel(meta.name, ptx, int(meta.num_warps), int(meta.shared), wanted)


def strip_unused_trailing_params(ptx: str, entry: str, keep: int) -> str:
    """Remove the parameters after the first ``keep`` of ``.entry entry`` if never read."""
    match = re.search(rf"\.entry\s+{re.escape(entry)}\s*\((.*?)\)", ptx, re.S)
    if match is None:
        raise KernelCompileError(f"PTX has no entry {entry}")
    params = [p.strip() for p in match.group(1).split(",") if p.strip()]
    names = [p.split()[-1] for p in params]
    if len(params) < keep:
        raise KernelCompileError(f"{entry} has {len(params)} parameters, expected {keep}")
    body = ptx[match.end():]
    used = [n for n in names[keep:] if re.search(rf"\[{re.escape(n)}\b", body)]
    if used:
        raise KernelCompileError(f"{entry} reads hidden parameters {used}; cannot launch it "
                                 "from TensorRT with (inputs, scalars, outputs) only")
    decl = ",\n".join("\t" + p for p in params[:keep])
    return ptx[:match.start(1)] + "\n" + decl + "\n" + ptx[match.end(1):]
