"""The TensorRT plugin library (cpp/plugins/): its kernels' math on the CPU, its contract.

- The CPU harness (cpp/plugins/tests/harness.cpp, plain C++ built here with the C++
  compiler, under AddressSanitizer + UBSan where available) runs the kernels'
  ``__host__ __device__`` math by walking their launch grids; its outputs are compared
  with the float64 numpy references of the torch ops (``selective_scan_numpy``: the
  sequential recurrence; ``spectral_lowpass_numpy``: a direct DFT), float32 and float16
  I/O, on lengths that are not a multiple of the chunk, one head, several groups, 1x1 and
  odd planes.
- Planted bugs (a wrong carry across chunks, a wrong frequency index) are applied to a
  copy of the kernel headers; the same comparisons must then fail.
- cpp/plugins/contract.hpp must say what hermes_deploy/contracts.py says.
- With nvcc and TensorRT's headers (``TensorRT_INCLUDE_DIR`` or ``TensorRT_ROOT``), the
  plugin library is compiled for every architecture with warnings as errors and must
  export getCreators; cpp/plugins/tests/plugin_check.cpp then loads it and drives its
  creators and plugins through TensorRT's interfaces (registration at load, attributes,
  formats, shape checks, workspace sizes, serialization, per-context copies) - virtual
  calls only, no libnvinfer, no GPU. Without nvcc or the headers these tests skip,
  saying why (CI has no TensorRT).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hermes_deploy import contracts
from hermes_deploy.ops.scan import selective_scan_numpy
from hermes_deploy.ops.spectral import spectral_lowpass_numpy

from .toolchain import unavailable

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "cpp" / "plugins"
sys.path.insert(0, str(ROOT / "scripts"))

#: max |kernel - reference| / max(1, max |reference|)
F32_TOL, F16_TOL = 2e-5, 4e-3


def _compiler() -> str:
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        unavailable("no C++ compiler (c++/g++); install build-essential (bash scripts/install-cpp-deps.sh)")
    return cxx


def _sanitizers_work(cxx: str, folder: Path) -> bool:
    probe = folder / "probe.cpp"
    probe.write_text("int main() { return 0; }\n")
    done = subprocess.run([cxx, "-fsanitize=address,undefined", str(probe), "-o", str(folder / "probe")],
                          capture_output=True)
    return done.returncode == 0 and subprocess.run([str(folder / "probe")]).returncode == 0


def build_harness(source_root: Path, out: Path) -> Path:
    """Compile the harness from ``source_root`` (a cpp/plugins folder) into ``out``."""
    cxx = _compiler()
    out.mkdir(parents=True, exist_ok=True)
    flags = ["-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wconversion",
             "-Wno-sign-conversion", "-Werror"]
    if _sanitizers_work(cxx, out):
        flags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
    exe = out / "hermes_plugin_harness"
    done = subprocess.run([cxx, *flags, str(source_root / "tests" / "harness.cpp"), "-o", str(exe)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return exe


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    return build_harness(PLUGINS, tmp_path_factory.mktemp("harness"))


# ----------------------------------------------------------------------------- running


def _store(folder: Path, name: str, value: np.ndarray, dtype) -> np.ndarray:
    """Write ``value`` as the harness reads it; return what the kernel sees (as float64)."""
    stored = np.ascontiguousarray(value, dtype=dtype)
    stored.tofile(folder / f"{name}.bin")
    return stored.astype(np.float64)


def run_scan(exe: Path, folder: Path, rng, b, l, h, p, g, n, chunk, dtype=np.float32, a_range=(0.05, 1.0)):
    """(kernel output, float64 reference) of the scan on random inputs."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = {"x": rng.standard_normal((b, l, h, p)), "dt": rng.uniform(0.0, 0.3, (b, l, h)),
           "A": -rng.uniform(*a_range, h), "B": rng.standard_normal((b, l, g, n)),
           "C": rng.standard_normal((b, l, g, n))}
    seen = {k: _store(folder, k, v, dtype) for k, v in raw.items()}
    kind = "f16" if dtype == np.float16 else "f32"
    done = subprocess.run([str(exe), "scan", kind, *map(str, (b, l, h, p, g, n, chunk)), str(folder)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    y = np.fromfile(folder / "y.bin", dtype).reshape(b, l, h, p).astype(np.float64)
    return y, selective_scan_numpy(*(seen[k] for k in ("x", "dt", "A", "B", "C")))


def run_lowpass(exe: Path, folder: Path, rng, b, c, h, w, dtype=np.float32):
    folder.mkdir(parents=True, exist_ok=True)
    raw = {"x": rng.standard_normal((b, c, h, w)), "cutoff": rng.uniform(0.0, 1.0, c),
           "sharpness": rng.uniform(0.5, 12.5, c)}
    seen = {k: _store(folder, k, v, dtype) for k, v in raw.items()}
    kind = "f16" if dtype == np.float16 else "f32"
    done = subprocess.run([str(exe), "lowpass", kind, *map(str, (b, c, h, w)), str(folder)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    low = np.fromfile(folder / "low.bin", dtype).reshape(b, c, h, w).astype(np.float64)
    return low, spectral_lowpass_numpy(seen["x"], seen["cutoff"], seen["sharpness"])


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    assert np.all(np.isfinite(got)), "kernel output has NaN/inf (a read of unwritten memory?)"
    return float(np.abs(got - ref).max() / max(1.0, np.abs(ref).max()))


# b, l, h, p, g, n, chunk
SCAN_CASES = [
    (2, 37, 4, 8, 2, 16, 16),   # l not a multiple of the chunk, two groups
    (1, 1, 1, 1, 1, 1, 64),     # one step, one head
    (1, 200, 3, 5, 1, 4, 64),   # one group of three heads, last chunk 8 long
    (2, 130, 6, 3, 3, 5, 7),    # odd chunk, three groups
    (1, 1000, 2, 4, 2, 8, 100), # chunk above the kernel's maximum: clamped, same result
    (1, 64, 1, 16, 1, 16, 64),  # exactly one chunk
    (3, 257, 8, 2, 4, 3, 32),   # several batches, 4 groups of 2 heads
]
# b, c, h, w
LOWPASS_CASES = [(2, 3, 16, 16), (1, 4, 13, 21), (1, 1, 1, 1), (1, 2, 1, 7), (1, 2, 6, 1),
                 (1, 2, 32, 20), (2, 1, 9, 9), (1, 2, 64, 48)]


@pytest.mark.parametrize("case", SCAN_CASES, ids=[str(c) for c in SCAN_CASES])
def test_scan_kernel_math_matches_the_sequential_recurrence(harness, tmp_path, case):
    y, ref = run_scan(harness, tmp_path, np.random.default_rng(sum(case)), *case)
    assert rel_err(y, ref) < F32_TOL


def test_scan_carry_over_many_chunks(harness, tmp_path):
    """Slow decays (A = -0.01): the state carried across 32 chunks dominates the output."""
    y, ref = run_scan(harness, tmp_path, np.random.default_rng(5), 1, 512, 2, 4, 1, 4, 16,
                      a_range=(0.005, 0.01))
    assert rel_err(y, ref) < F32_TOL


def test_scan_fp16_io_accumulates_in_fp32(harness, tmp_path):
    y, ref = run_scan(harness, tmp_path, np.random.default_rng(7), 2, 150, 4, 8, 2, 16, 32,
                      dtype=np.float16)
    # the reference sees the same float16 inputs; the output is rounded to float16 once
    assert rel_err(y, ref) < F16_TOL


@pytest.mark.parametrize("case", LOWPASS_CASES, ids=[str(c) for c in LOWPASS_CASES])
def test_lowpass_kernel_math_matches_the_direct_dft(harness, tmp_path, case):
    low, ref = run_lowpass(harness, tmp_path, np.random.default_rng(sum(case)), *case)
    assert rel_err(low, ref) < F32_TOL


def test_lowpass_fp16_io(harness, tmp_path):
    low, ref = run_lowpass(harness, tmp_path, np.random.default_rng(3), 1, 3, 13, 21, dtype=np.float16)
    assert rel_err(low, ref) < F16_TOL


def test_float16_conversion_is_round_to_nearest_even(harness, tmp_path):
    """The host-side float16 of the harness rounds as numpy (and __float2half_rn) do."""
    rng = np.random.default_rng(11)
    values = np.concatenate([
        rng.standard_normal(4000).astype(np.float32) * np.float32(10.0) ** rng.integers(-9, 6, 4000),
        np.array([0.0, -0.0, 65504.0, 65519.0, 65520.0, 1e6, -1e6, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8,
                  1e-9, np.inf, -np.inf, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 2049.0, 2051.0],
                 np.float32)]).astype(np.float32)
    values.tofile(tmp_path / "f32.bin")
    done = subprocess.run([str(harness), "half", str(values.size), str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    bits = np.fromfile(tmp_path / "f16.bin", np.uint16)
    with np.errstate(over="ignore"):  # values past 65504 become inf, on purpose
        expect = values.astype(np.float16)
    assert np.array_equal(bits, expect.view(np.uint16))
    back = np.fromfile(tmp_path / "back.bin", np.float32)
    assert np.array_equal(back, expect.astype(np.float32))


# ----------------------------------------------------------------------------- planted bugs

PLANTED = {
    "wrong carry across chunks": ("kernels/scan_math.hpp",
                                  "run = expf(a.totals[at]) * run + own;", "run = run + own;"),
    "wrong frequency index": ("kernels/lowpass_math.hpp",
                              "const float fy = static_cast<float>(u) / static_cast<float>(d.h);",
                              "const float fy = static_cast<float>(u) / static_cast<float>(d.w);"),
}


def _planted_harness(tmp_path: Path, bug: str) -> Path:
    source = tmp_path / "plugins"
    shutil.copytree(PLUGINS / "kernels", source / "kernels")
    shutil.copytree(PLUGINS / "tests", source / "tests")
    name, correct, wrong = PLANTED[bug]
    text = (source / name).read_text()
    assert text.count(correct) == 1, f"the line to plant '{bug}' into is gone from {name}: update PLANTED"
    (source / name).write_text(text.replace(correct, wrong))
    return build_harness(source, tmp_path / "build")


def test_planted_wrong_carry_is_caught(tmp_path):
    exe = _planted_harness(tmp_path, "wrong carry across chunks")
    # one chunk: nothing is carried, the bug cannot show
    y, ref = run_scan(exe, tmp_path / "one", np.random.default_rng(1), 1, 64, 1, 16, 1, 16, 64)
    assert rel_err(y, ref) < F32_TOL
    # several chunks: the tests above fail
    for case in (SCAN_CASES[0], SCAN_CASES[2], SCAN_CASES[6]):
        y, ref = run_scan(exe, tmp_path / "many", np.random.default_rng(sum(case)), *case)
        assert rel_err(y, ref) > 100 * F32_TOL, case


def test_planted_wrong_frequency_is_caught(tmp_path):
    exe = _planted_harness(tmp_path, "wrong frequency index")
    low, ref = run_lowpass(exe, tmp_path / "square", np.random.default_rng(0), 1, 2, 16, 16)
    assert rel_err(low, ref) < F32_TOL  # square planes: h = w hides it
    for case in (LOWPASS_CASES[1], LOWPASS_CASES[5], LOWPASS_CASES[7]):
        low, ref = run_lowpass(exe, tmp_path / "odd", np.random.default_rng(sum(case)), *case)
        assert rel_err(low, ref) > 100 * F32_TOL, case


# ----------------------------------------------------------------------------- contract


def _header_constants() -> tuple[dict[str, str], dict[str, tuple[str, ...]], dict[str, int]]:
    text = (PLUGINS / "contract.hpp").read_text()
    strings = dict(re.findall(r'constexpr char (k\w+)\[\] = "([^"]*)";', text))
    lists = {name: tuple(re.findall(r'"([^"]*)"', body))
             for name, body in re.findall(r"constexpr const char \*(k\w+)\[\] = \{([^}]*)\};", text)}
    ints = {name: int(v) for name, v in re.findall(r"constexpr int (k\w+) = (\d+);", text)}
    return strings, lists, ints


def test_cpp_contract_is_contracts_py():
    strings, lists, ints = _header_constants()
    assert strings == {"kDomain": contracts.DOMAIN, "kPluginNamespace": contracts.PLUGIN_NAMESPACE,
                       "kPluginVersion": contracts.PLUGIN_VERSION,
                       "kScanName": contracts.SELECTIVE_SCAN.name,
                       "kLowpassName": contracts.SPECTRAL_LOWPASS.name}
    assert ints["kDomainVersion"] == contracts.DOMAIN_VERSION
    scan, lowpass = contracts.SELECTIVE_SCAN, contracts.SPECTRAL_LOWPASS
    assert lists == {"kScanInputs": scan.inputs, "kScanOutputs": scan.outputs,
                     "kScanAttributes": scan.attributes, "kLowpassInputs": lowpass.inputs,
                     "kLowpassOutputs": lowpass.outputs}
    assert lowpass.attributes == ()  # the header has no attribute list for the low-pass
    assert {op.name for op in contracts.OPS} == {scan.name, lowpass.name}, "a new op needs a plugin"


# ----------------------------------------------------------------------------- CMake and nvcc


def _cmake_or_skip() -> str:
    cmake = shutil.which("cmake")
    if cmake is None:
        unavailable("cmake is not installed; bash scripts/install-cpp-deps.sh")
    return cmake


def test_cmake_without_tensorrt_says_so_and_builds_the_harness(tmp_path):
    cmake = _cmake_or_skip()
    empty = tmp_path / "no-tensorrt"
    empty.mkdir()
    done = subprocess.run([cmake, "-S", str(PLUGINS), "-B", str(tmp_path / "b"), f"-DTensorRT_INCLUDE_DIR={empty}"],
                          capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if not k.startswith("TensorRT_")})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(s for s in done.stdout.splitlines() if "TensorRT plugin library" in s)
    assert "skipped" in line and "TensorRT's headers not found" in line, line
    built = subprocess.run([cmake, "--build", str(tmp_path / "b"), "--target", "hermes_plugin_harness"],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-3000:]


def _tensorrt_headers() -> Path | None:
    for key in ("TensorRT_INCLUDE_DIR", "TensorRT_ROOT"):
        value = os.environ.get(key)
        for folder in ([Path(value), Path(value) / "include"] if value else []):
            if (folder / "NvInferRuntime.h").is_file():
                return folder
    return None


def _nvcc() -> Path | None:
    found = shutil.which("nvcc")
    if found:
        return Path(found)
    default = Path("/usr/local/cuda/bin/nvcc")
    return default if default.is_file() else None


@pytest.fixture(scope="module")
def plugin_library(tmp_path_factory):
    """Build libhermes_trt_plugins.so for every architecture, warnings as errors."""
    headers, nvcc = _tensorrt_headers(), _nvcc()
    if nvcc is None:
        unavailable("compiling the plugin library needs nvcc (the CUDA toolkit): not found")
    if headers is None:
        pytest.skip("compiling the plugin library needs TensorRT's C++ headers, which are not "
                    "redistributable (set TensorRT_INCLUDE_DIR to the include/ folder of NVIDIA/TensorRT)")
    cmake = _cmake_or_skip()
    build = tmp_path_factory.mktemp("plugins-build")
    configure = subprocess.run([cmake, "-S", str(PLUGINS), "-B", str(build), f"-DTensorRT_INCLUDE_DIR={headers}",
                                f"-DCMAKE_CUDA_COMPILER={nvcc}", "-DHERMES_WITH_PLUGINS=ON",
                                "-DHERMES_PLUGINS_WERROR=ON"], capture_output=True, text=True, timeout=300)
    assert configure.returncode == 0, configure.stdout[-3000:] + configure.stderr[-3000:]
    done = subprocess.run([cmake, "--build", str(build), "-j", "2", "--target", "hermes_trt_plugins",
                           "hermes_plugin_check"], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    log = done.stdout + done.stderr
    return build, configure.stdout, log


def test_plugin_library_compiles_for_every_architecture_without_warnings(plugin_library):
    build, configure, log = plugin_library
    assert "architectures 80-real;86-real;89-real;90-real;120-real;120-virtual" in configure
    assert "warning" not in log.lower(), log[-3000:]
    library = build / "libhermes_trt_plugins.so"
    exported = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True).stdout
    names = {line.split()[-1] for line in exported.splitlines() if line.strip()}
    assert {"getCreators", "setLoggerFinder"} <= names
    assert not [n for n in names if "hermes" in n], "only the two entry points are exported"
    needed = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True).stdout
    assert "libnvinfer" not in needed  # interface classes only: no link dependency on TensorRT
    assert "libcudart.so" in needed


def test_plugin_library_through_tensorrts_interfaces(plugin_library):
    """Registration at load, getCreators, createPlugin, formats, shapes, workspace, clones."""
    build, _, _ = plugin_library
    cuda_lib = _nvcc().resolve().parents[1] / "lib64"
    env = {**os.environ, "LD_LIBRARY_PATH": f"{cuda_lib}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
    done = subprocess.run([str(build / "hermes_plugin_check"), str(build / "libhermes_trt_plugins.so")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "plugin interface checks passed" in done.stdout
    # without the load-time registration the checks of it fail: the check can fail
    off = subprocess.run([str(build / "hermes_plugin_check"), str(build / "libhermes_trt_plugins.so")],
                         capture_output=True, text=True, timeout=120,
                         env={**env, "HERMES_TRT_PLUGINS_STATIC": "0"})
    assert off.returncode == 1 and "registered.size() == 2" in off.stderr

