"""libhermes runs a single graph (``hermes-export onnx --single-graph``).

A single graph takes ``input`` only and computes the context inside from whatever it is
given, so each tile routes by itself; its spec says ``single_graph: true`` and names no
context graph. Here, with the bundled default model exported that way:

- an image that fits one tile: ``hermes-restore`` (file and in-memory API) equals
  onnxruntime's ``session.run`` of the same graph on the whole image, within the
  tolerance of test_cpp.py's C++-vs-Python tests (>= 90 dB, at most 2 levels), and
  reports no context time;
- a 2x2 grid: ``hermes-restore`` equals ``hermes-export infer`` of the same graph;
- a graph whose spec claims the other form (single_graph on a graph with a ``context``
  input, or a pair spec on a graph without one) is HERMES_ERR_MODEL with one line.

The build is test_cpp.py's when its ``cpp`` fixture ran first in the session, else the
folder ``HERMES_CPP_BUILD_DIR`` names, else one made here.
"""

from __future__ import annotations

import ctypes
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

HERMES_ERR_MODEL = 3  # include/hermes/hermes.h


@pytest.fixture(scope="session")
def build(tmp_path_factory) -> Path:
    """A Release build folder holding hermes-restore and libhermes.so."""
    given = os.environ.get("HERMES_CPP_BUILD_DIR")
    if given:
        return Path(given).resolve()
    for found in sorted(tmp_path_factory.getbasetemp().glob("cpp[0-9]*/build")):
        if (found / "hermes-restore").is_file() and (found / "libhermes.so").exists():
            return found
    toolchain_or_skip()
    folder = tmp_path_factory.mktemp("cpp-single") / "build"
    try:
        cpp_build.build(folder)
    except cpp_build.BuildError as exc:
        pytest.fail(str(exc))
    return folder


@pytest.fixture(scope="session")
def single_onnx(default_single_onnx) -> Path:
    """The bundled default model as one graph (conftest's export, shared with the Python tests)."""
    assert not list(default_single_onnx.parent.glob("*.context.onnx"))
    return default_single_onnx


def _png(path: Path, pixels: np.ndarray) -> Path:
    import pyvips

    pyvips.Image.new_from_array(np.ascontiguousarray(pixels)).copy(interpretation="srgb").write_to_file(str(path))
    return path


def _photo(rows: slice, cols: slice) -> np.ndarray:
    from hermes_deploy.quality.photos import load_photo

    return (np.clip(load_photo("astronaut")[rows, cols], 0, 1) * 255 + 0.5).astype(np.uint8)


def _read(path: Path) -> np.ndarray:
    import pyvips

    return pyvips.Image.new_from_file(str(path)).numpy()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _restore(build: Path, model: Path, source: Path, out: Path, *extra: str) -> dict:
    run = subprocess.run([str(build / "hermes-restore"), str(model), str(source), str(out), *extra],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.parametrize("api", ["file", "in-memory"])
def test_one_tile_equals_onnxruntime_on_the_whole_image(build, single_onnx, tmp_path, api):
    """One 64x80 tile (a multiple of the 16-px grid: no padding) is the whole image, so
    libhermes must give what onnxruntime gives for the whole image, rounded to 8 bits the
    same way (measured: equal bit for bit)."""
    import onnxruntime as ort

    source = _png(tmp_path / "small.png", _photo(slice(100, 164), slice(200, 280)))
    ours = tmp_path / "cpp.png"
    figures = _restore(build, single_onnx, source, ours, "--tile", "128",
                       *(["--in-memory"] if api == "in-memory" else []))
    assert figures["grid"] == [1, 1] and figures["tile"] == [64, 80], figures
    assert figures["context_seconds"] == 0  # no context graph: each tile computes its own

    session = ort.InferenceSession(str(single_onnx), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    x = (_read(source).astype(np.float32) / 255).transpose(2, 0, 1)[None]
    y = session.run(["output"], {"input": x})[0][0].transpose(1, 2, 0)
    reference = (np.clip(y, 0, 1) * 255 + 0.5).astype(np.uint8)
    cpp_out = _read(ours)
    assert cpp_out.shape == reference.shape == (128, 160, 3)
    psnr = _psnr(reference, cpp_out)
    assert psnr >= 90.0, f"libhermes vs onnxruntime on one tile: {psnr:.1f} dB"
    assert np.abs(reference.astype(int) - cpp_out.astype(int)).max() <= 2


def test_two_by_two_grid_equals_hermes_export_infer(build, single_onnx, tmp_path):
    """Tiled, each tile routed by itself on both sides: libhermes equals the Python
    runtime running the same single graph (the tolerance of test_cpp.py's 2x2 test)."""
    source = _png(tmp_path / "photo.png", _photo(slice(0, 200, 2), slice(0, 200, 2)))  # 100x100
    ours = tmp_path / "cpp.png"
    figures = _restore(build, single_onnx, source, ours, "--tile", "64")
    assert figures["grid"] == [2, 2], figures
    done = subprocess.run([sys.executable, "-m", "hermes_deploy.cli.app", "infer", str(source), "--model",
                           str(single_onnx), "--backend", "onnxruntime", "--tile", "64", "-o", str(tmp_path / "py")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    python, cpp_out = _read(tmp_path / "py" / source.name), _read(ours)
    assert cpp_out.shape == python.shape == (200, 200, 3)
    psnr = _psnr(python, cpp_out)
    assert psnr >= 90.0, f"libhermes vs hermes-export infer on a 2x2 grid: {psnr:.1f} dB"
    assert np.abs(python.astype(int) - cpp_out.astype(int)).max() <= 2


def _with_spec(source: Path, target: Path, **changes) -> Path:
    """`source` saved as `target` with its hermes.spec fields changed."""
    import onnx

    model = onnx.load(str(source))
    (entry,) = [p for p in model.metadata_props if p.key == "hermes.spec"]
    entry.value = json.dumps({**json.loads(entry.value), **changes})
    onnx.save(model, str(target))
    return target


def _load_status(build: Path, model: Path) -> tuple[int, str]:
    """hermes_model_load's status and last-error line (the C ABI, through ctypes)."""
    lib = ctypes.CDLL(str(build / "libhermes.so"))
    lib.hermes_last_error.restype = ctypes.c_char_p
    lib.hermes_model_free.argtypes = [ctypes.c_void_p]
    handle = ctypes.c_void_p()
    status = lib.hermes_model_load(str(model).encode(), None, ctypes.byref(handle))
    message = lib.hermes_last_error().decode() if status else ""
    lib.hermes_model_free(handle)
    return status, message


@pytest.mark.parametrize("form", ["pair-graph-single-spec", "single-graph-pair-spec"])
def test_spec_and_graph_of_different_forms_are_refused(build, single_onnx, default_onnx, tmp_path, form):
    folder = tmp_path / "m"
    folder.mkdir()
    if form == "pair-graph-single-spec":
        model = _with_spec(default_onnx, folder / "model.onnx", single_graph=True, context_graph=None)
        expected = "'model.onnx' has a 'context' input but its HERMES spec says single_graph"
    else:  # with a context graph beside it, so only the graph's inputs can give it away
        model = _with_spec(single_onnx, folder / "model.onnx", single_graph=False, context_graph="model.context.onnx")
        shutil.copy(Path(default_onnx).with_name(Path(default_onnx).stem + ".context.onnx"),
                    folder / "model.context.onnx")
        expected = "'model.onnx' has no 'context' input but its HERMES spec describes a pair"
    status, message = _load_status(build, model)
    assert status == HERMES_ERR_MODEL, (status, message)
    assert message.startswith(expected) and "re-export with hermes-export onnx" in message, message
    source = _png(tmp_path / "small.png", _photo(slice(0, 32), slice(0, 32)))
    run = subprocess.run([str(build / "hermes-restore"), str(model), str(source), str(tmp_path / "out.png")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and run.stderr.strip().splitlines() == [f"hermes-restore: {message}"], run.stderr
    assert not (tmp_path / "out.png").exists()
