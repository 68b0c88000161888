"""PTX of the plugin kernels for an RTX target, compiled without a GPU and assembled by ptxas.

This is the part of the ahead-of-time plugins that can run here: Triton compiles the
kernels for SM89, the hidden scratch parameters are stripped so TensorRT's
``(inputs, scalars, outputs)`` launch matches the entry, and ``ptxas`` (shipped inside the
triton wheel) accepts the result.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

triton = pytest.importorskip("triton", reason="triton is not installed "
                             "(pip install 'hermes-deploy[plugins]')")
if os.environ.get("TRITON_INTERPRET") == "1":
    pytest.skip("compilation to PTX needs the real Triton compiler (TRITON_INTERPRET=1 is set "
                "for this whole process)", allow_module_level=True)

from hermes_deploy.engines.trt.plugins import aot  # noqa: E402

PTXAS = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"


@pytest.mark.parametrize("kernel, blocks", [
    ("selective_scan", {"BLOCK_P": 8, "BLOCK_N": 16}),
    ("spectral_lowpass", {"BLOCK_H": 32, "BLOCK_W": 32}),
])
@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_kernel_compiles_to_launchable_ptx(tmp_path, kernel, blocks, dtype):
    compiled = aot.compile_ptx(kernel, dtype, blocks, capability=89)
    inputs, scalars, outputs = aot.KERNEL_ARGS[kernel]
    entry = re.search(rf"\.entry\s+{compiled.name}\s*\((.*?)\)", compiled.ptx, re.S).group(1)
    params = [p for p in entry.split(",") if p.strip()]
    assert len(params) == compiled.num_params == len(inputs) + len(scalars) + len(outputs)
    kinds = ["u64" if i < len(inputs) or i >= len(inputs) + len(scalars) else "u32"
             for i in range(len(params))]
    assert [("u64" if ".u64" in p else "u32") for p in params] == kinds
    assert ".target sm_89" in compiled.ptx and compiled.num_warps >= 1
    if not PTXAS.is_file():
        pytest.skip("triton ships no ptxas here")
    source = tmp_path / "k.ptx"
    source.write_text(compiled.ptx)
    done = subprocess.run([str(PTXAS), "-arch=sm_89", str(source), "-o", str(tmp_path / "k.cubin")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "k.cubin").stat().st_size > 0


def test_used_hidden_parameter_is_refused():
    ptx = (".visible .entry k(\n\t.param .u64 k_param_0,\n\t.param .u64 k_param_1\n)\n"
           "{\n\tld.param.u64 %rd1, [k_param_1];\n}\n")
    with pytest.raises(aot.KernelCompileError, match="reads hidden parameters"):
        aot.strip_unused_trailing_params(ptx, "k", 1)
    unused = ptx.replace("[k_param_1]", "[k_param_0]")
    assert "k_param_1" not in aot.strip_unused_trailing_params(unused, "k", 1)
