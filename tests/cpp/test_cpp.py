"""libhermes (cpp/) against the Python runtime, and its own C++ tests (ctest).

One CMake build per session (scripts/cpp_build.py) into a temporary folder, installed
into a prefix. Then:

- ctest runs the GoogleTest suites (C ABI errors, images, threads, the manifest corpus)
  with the exported default model and a folder of bad inputs made here;
- the tile grid and blend weights of C++ equal Python's bit for bit on a table of image
  sizes, tiles, overlaps and scales;
- C++ output of the default model equals ``hermes-export infer`` output on the bundled
  sample photo in a 3x3 grid (>= 50 dB; both f32), and on a 16-bit RGBA image;
- the example consumer in cpp/examples builds from the *installed* package with
  ``find_package(hermes)`` and runs;
- (slow) the same ctest suites under AddressSanitizer + UndefinedBehaviorSanitizer.

Without the C++ toolchain the tests skip, saying how to install it - except under CI
(``CI`` set), where a missing toolchain fails them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import cpp_build  # noqa: E402

from .toolchain import toolchain_or_skip  # noqa: E402


@pytest.fixture(scope="session")
def cpp(tmp_path_factory):
    """(build dir, install prefix) of one Release build."""
    toolchain_or_skip()
    base = tmp_path_factory.mktemp("cpp")
    try:
        cpp_build.build(base / "build", base / "install")
    except cpp_build.BuildError as exc:
        pytest.fail(str(exc))
    return base / "build", base / "install"


@pytest.fixture(scope="session")
def cpp_data(tmp_path_factory, default_onnx):
    """HERMES_TEST_MODEL and HERMES_TEST_DATA for the C++ tests (see cpp/tests/README.md)."""
    import onnx
    import pyvips
    from onnx import TensorProto, helper

    from hermes_deploy.quality.photos import load_photo

    data = tmp_path_factory.mktemp("cpp-data")
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), data / "not-hermes.onnx")
    (data / "garbage.onnx").write_bytes(b"this is not protobuf \x00\x01\x02" * 10)
    (data / "lonely").mkdir()
    shutil.copy(default_onnx, data / "lonely" / "model.onnx")  # without its context graph
    graph_bytes = Path(default_onnx).read_bytes()
    (data / "truncated.onnx").write_bytes(graph_bytes[: len(graph_bytes) // 2])
    (data / "model.txt").write_text("x")
    (data / "stray.engine").write_bytes(bytes(64))
    photo = (np.clip(load_photo("astronaut")[::2, ::2][:200, :232], 0, 1) * 255 + 0.5).astype(np.uint8)
    pyvips.Image.new_from_array(np.ascontiguousarray(photo)).copy(interpretation="srgb").write_to_file(
        str(data / "photo.png"))
    png = (data / "photo.png").read_bytes()
    (data / "truncated.png").write_bytes(png[: len(png) // 2])
    (data / "corrupt.png").write_bytes(png[:8] + np.random.default_rng(0).bytes(3000))
    (data / "empty.png").write_bytes(b"")
    return default_onnx, data


def _env(cpp_data) -> dict:
    model, data = cpp_data
    return {**os.environ, "HERMES_TEST_MODEL": str(model), "HERMES_TEST_DATA": str(data)}


def test_ctest_suites(cpp, cpp_data):
    build, _ = cpp
    done = subprocess.run(["ctest", "--output-on-failure", "--test-dir", str(build)], env=_env(cpp_data),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "tests passed" in done.stdout


GRID_CASES = [
    # height, width, tile (h, w), overlap, scale, size multiple
    (1, 1, (256, 256), 16, 2, 16), (17, 300, (64, 64), 16, 2, 16), (256, 256, (128, 128), 16, 2, 16),
    (200, 232, (128, 128), 16, 2, 16), (1000, 777, (256, 192), 24, 4, 16), (513, 129, (64, 96), 8, 3, 8),
    (64, 64, (64, 64), 0, 1, 1), (99, 350, (50, 70), 13, 2, 1), (4096, 3000, (256, 256), 32, 2, 16),
    (31, 45, (16, 16), 15, 2, 1), (48, 48, (32, 32), 20, 2, 16),  # the last one cannot work
]


def test_grid_and_blend_weights_equal_python_bit_for_bit(cpp):
    from hermes_deploy.errors import InputError
    from hermes_deploy.runtime.plan import TileOptions, make_plan
    from hermes_deploy.spec import ModelSpec

    build, _ = cpp
    lines = [json.dumps({"height": h, "width": w, "tile": list(t), "overlap": o, "scale": s,
                         "size_multiple": m}) for h, w, t, o, s, m in GRID_CASES]
    done = subprocess.run([str(build / "hermes-restore"), "--grid"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == len(GRID_CASES)
    refused = 0
    for (h, w, t, o, s, m), got in zip(GRID_CASES, results):
        spec = ModelSpec(scale=s, in_channels=3, out_channels=3, size_multiple=m, min_size=1, tile_overlap=o,
                         receptive_radius=0, context_channels=1, precision="fp32", io_dtype="float32",
                         target="portable", opset=18, fidelity=True)
        try:
            plan = make_plan(spec, h, w, TileOptions(tile=t, overlap=o))
        except InputError as exc:
            assert "error" in got, (h, w, t, o, s, m)
            assert got["error"].split(";")[0] == str(exc).split(";")[0]
            refused += 1
            continue
        assert "error" not in got, got.get("error")
        assert got["ys"] == list(plan.ys) and got["xs"] == list(plan.xs)
        assert got["tile"] == [plan.tile_h, plan.tile_w]
        for r, bits in enumerate(got["rows"]):
            assert np.array_equal(np.array(bits, np.uint32), plan.row_profile(r).view(np.uint32)), (h, w, r)
        for c, bits in enumerate(got["cols"]):
            assert np.array_equal(np.array(bits, np.uint32), plan.col_profile(c).view(np.uint32)), (h, w, c)
    assert refused == 1  # the table holds one combination that can never work


def _psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak ** 2 / mse)


def _read(path: Path) -> np.ndarray:
    import pyvips

    return pyvips.Image.new_from_file(str(path)).numpy()


def _hermes_export_infer(model: Path, source: Path, out: Path, *extra: str) -> Path:
    done = subprocess.run([sys.executable, "-m", "hermes_deploy.cli.app", "infer", str(source), "--model", str(model),
                           "--backend", "onnxruntime", "--tile", "128", "-o", str(out), *extra],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out / source.name


def test_cpp_equals_hermes_export_infer_on_the_sample_photo(cpp, default_onnx, tmp_path):
    build, _ = cpp
    done = subprocess.run([sys.executable, "-m", "hermes_deploy.cli.app", "infer", "--sample", "--model",
                           str(default_onnx), "--backend", "onnxruntime", "--tile", "128", "-o",
                           str(tmp_path / "py")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    source = tmp_path / "py" / "inputs" / "sample-astronaut.png"
    ours = tmp_path / "cpp.png"
    run = subprocess.run([str(build / "hermes-restore"), str(default_onnx), str(source), str(ours), "--tile", "128"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout.splitlines()[-1])
    assert figures["grid"] == [3, 3] and figures["backend"] == "openvino (CPU, f32)"
    python, cpp_out = _read(tmp_path / "py" / "sample-astronaut.png"), _read(ours)
    assert cpp_out.shape == python.shape == (512, 512, 3)
    assert _psnr(python, cpp_out, 255.0) >= 50.0  # the bound
    # both compute in f32 and round the same way: at most a level apart (measured: 1)
    assert np.abs(python.astype(int) - cpp_out.astype(int)).max() <= 2


def test_cpp_equals_python_on_sixteen_bit_rgba(cpp, default_onnx, tmp_path):
    """16-bit colour, alpha upscaled on its own: both runtimes, both channels."""
    import pyvips

    from hermes_deploy.quality.photos import load_photo

    build, _ = cpp
    rgb = load_photo("chelsea")[:150, :190]
    alpha = np.linspace(0.2, 1.0, rgb.shape[1], dtype=np.float32)[None, :, None].repeat(rgb.shape[0], 0)
    rgba = (np.concatenate([rgb, alpha], axis=2) * 65535 + 0.5).astype(np.uint16)
    source = tmp_path / "cat16.png"
    pyvips.Image.new_from_array(np.ascontiguousarray(rgba)).copy(interpretation="rgb16").write_to_file(str(source))
    python = _read(_hermes_export_infer(default_onnx, source, tmp_path / "py"))
    ours = tmp_path / "cpp16.png"
    run = subprocess.run([str(build / "hermes-restore"), str(default_onnx), str(source), str(ours), "--tile", "128"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    cpp_out = _read(ours)
    assert cpp_out.dtype == np.uint16 and cpp_out.shape == python.shape == (300, 380, 4)
    assert _psnr(python[..., :3], cpp_out[..., :3], 65535.0) >= 50.0
    assert _psnr(python[..., 3], cpp_out[..., 3], 65535.0) >= 50.0
    # tighter than the issue asks: 150x190 pads to the 16-px grid by reflection at two
    # borders, where a wrong reflection gives 55 dB but thousands of levels at the edge
    assert np.abs(python.astype(int) - cpp_out.astype(int)).max() <= 64  # of 65535 (measured: 1)


def test_example_builds_from_the_installed_package(cpp, cpp_data, tmp_path):
    _, prefix = cpp
    model, data = cpp_data
    example = tmp_path / "example-build"
    subprocess.run(["cmake", "-S", str(ROOT / "cpp" / "examples"), "-B", str(example),
                    f"-DCMAKE_PREFIX_PATH={prefix}"], check=True, capture_output=True, timeout=300)
    built = subprocess.run(["cmake", "--build", str(example)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-3000:]
    out = tmp_path / "restored.png"
    run = subprocess.run([str(example / "restore_c"), str(model), str(data / "photo.png"), str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert _read(out).shape == (400, 464, 3)
    bad = subprocess.run([str(example / "restore_c"), str(model), str(data / "corrupt.png"), str(out) + ".x.png"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "not a readable image" in bad.stderr


@pytest.mark.slow
def test_ctest_suites_under_asan_and_ubsan(cpp_data, tmp_path_factory):
    toolchain_or_skip()
    build = tmp_path_factory.mktemp("cpp-asan") / "build"
    try:
        cpp_build.build(build, sanitize=True)
    except cpp_build.BuildError as exc:
        pytest.fail(str(exc))
    env = {**_env(cpp_data), "ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1"}
    done = subprocess.run(["ctest", "--output-on-failure", "--test-dir", str(build)], env=env,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-6000:]
    assert "tests passed" in done.stdout
