"""``core.hermes.Restore``: the VapourSynth plugin (``cpp/vapoursynth/``) on libhermes.

The plugin is the session's CMake build (built where ``scripts/cpp_build.py`` finds the
VapourSynth headers of ``.venv-vs``, made by ``scripts/install-vs-env.sh``; compiled here
against that libhermes otherwise), loaded with
``core.std.LoadPlugin`` in that Python 3.12 environment, and its frames are compared with
the Python runtime (``restore_array``, OpenVINO f32, the same tiles) on the same frames:
float clips to max abs 0, integer clips byte for byte after the same rounding the
runtime's writers do, half clips after numpy's float16 rounding.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hermes_deploy.quality import load_photo

from ..cpp.test_single_graph import build  # noqa: F401 - the session's libhermes build

REPO = Path(__file__).resolve().parents[2]
VS_PYTHON = REPO / ".venv-vs" / "bin" / "python"
VS_INCLUDE = REPO / ".venv-vs" / "lib" / "python3.12" / "site-packages" / "vapoursynth" / "include"
TILE = 64

# Runs in the 3.12 environment: argv = plugin, frames.npy (N,3,H,W float32 in the clip's
# sample values), format name, out.npy, Restore kwargs (JSON), request order (JSON or null),
# a HermesContext property for every source frame (JSON or null); each output frame's
# HermesContext goes to contexts.json
SCRIPT = """\
import json, sys
import numpy as np
import vapoursynth as vs
from vapoursynth import core

core.std.LoadPlugin(sys.argv[1])
frames = np.load(sys.argv[2])
fmt = getattr(vs, sys.argv[3])
n, _, h, w = frames.shape

def fill(n, f):
    out = f.copy()
    for p in range(3):
        plane = np.asarray(out[p])
        plane[:] = frames[n, p].astype(plane.dtype)
    return out

blank = core.std.BlankClip(format=fmt, width=w, height=h, length=n)
clip = core.std.ModifyFrame(blank, blank, fill)
context = json.loads(sys.argv[7])
if context is not None:
    clip = core.std.SetFrameProps(clip, HermesContext=context)
up = core.hermes.Restore(clip, **json.loads(sys.argv[5]))
order = json.loads(sys.argv[6]) or list(range(n))
frames_out = {i: up.get_frame(i) for i in order}
np.save(sys.argv[4], np.stack([np.stack([np.array(frames_out[i][p]) for p in range(3)]) for i in range(n)]))
json.dump([list(frames_out[i].props.get("HermesContext", [])) for i in range(n)], open("contexts.json", "w"))
"""


@pytest.fixture(scope="module")
def plugin(build, tmp_path_factory) -> Path:  # noqa: F811
    if not VS_PYTHON.is_file() or not (VS_INCLUDE / "VapourSynth4.h").is_file():
        pytest.skip(f"needs the VapourSynth test environment {VS_PYTHON.parent.parent.name}/ "
                    "(bash scripts/install-vs-env.sh)")
    if (build / "libhermes_vs.so").is_file():  # CMake built it (scripts/cpp_build.py found the headers)
        return build / "libhermes_vs.so"
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    out = tmp_path_factory.mktemp("vs-plugin") / "libhermes_vs.so"
    res = subprocess.run([cxx, "-std=c++17", "-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror",
                          "-I", str(REPO / "cpp" / "include"), "-I", str(VS_INCLUDE),
                          str(REPO / "cpp" / "vapoursynth" / "hermes_vs.cpp"), "-L", str(build),
                          "-lhermes", f"-Wl,-rpath,{build}", "-o", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def frames() -> np.ndarray:
    """Two photographs, (2, 3, 48, 80) float32 in [0, 1]."""
    crops = [load_photo("astronaut")[100:148, 150:230], load_photo("coffee")[150:198, 250:330]]
    return np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2), np.float32)


def run(plugin: Path, tmp_path: Path, values: np.ndarray, fmt: str, order=None, prop=None, **kwargs):
    (tmp_path / "s.py").write_text(SCRIPT)
    np.save(tmp_path / "in.npy", values)
    kwargs = {k: str(v) if isinstance(v, Path) else v for k, v in kwargs.items()}
    return subprocess.run([str(VS_PYTHON), "s.py", str(plugin), "in.npy", fmt, "out.npy", json.dumps(kwargs),
                           json.dumps(order), json.dumps(prop)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def python_runtime(default_onnx):
    """(3,H,W) float32 -> (3,2H,2W) float32: the Python runtime on the plugin's tiles."""
    from hermes_deploy.engines.ov_runner import OvRunner
    from hermes_deploy.runtime.pipeline import restore_array
    from hermes_deploy.runtime.plan import TileOptions

    with OvRunner(default_onnx, precision="f32") as runner:
        yield lambda x: restore_array(runner, np.ascontiguousarray(x.transpose(1, 2, 0)),
                                      TileOptions(tile=(TILE, TILE)))[0].transpose(2, 0, 1)


def quantize(x: np.ndarray, bits: int) -> np.ndarray:
    peak = np.float32((1 << bits) - 1)
    return ((np.clip(x, 0, 1) * peak + np.float32(0.5)).astype(np.uint16)).astype(np.float32)


@pytest.mark.parametrize("fmt,bits", [("RGBS", 32), ("RGBH", 16), ("RGB24", 8), ("RGB30", 10), ("RGB48", 16)])
def test_every_format_equals_the_python_runtime(plugin, default_onnx, python_runtime, tmp_path, fmt, bits):
    x = frames()
    if fmt == "RGBS":
        values, model_in = x, x
    elif fmt == "RGBH":
        values = x.astype(np.float16).astype(np.float32)
        model_in = values
    else:
        values = quantize(x, bits)
        model_in = values * np.float32(1.0 / ((1 << bits) - 1))
    res = run(plugin, tmp_path, values, fmt, model=default_onnx, tile=TILE)
    assert res.returncode == 0, res.stderr[-3000:]
    got = np.load(tmp_path / "out.npy").astype(np.float32)
    assert got.shape == (2, 3, 96, 160)
    want = np.stack([python_runtime(f) for f in model_in])
    if fmt == "RGBH":
        want = want.astype(np.float16).astype(np.float32)
    elif fmt != "RGBS":
        want = quantize(want, bits)
    diff = float(np.abs(got - want).max())
    print(f"{fmt}: max abs {diff}")
    assert diff == 0.0


def test_frames_out_of_order_and_in_parallel_are_the_same(plugin, default_onnx, tmp_path):
    x = np.concatenate([frames(), frames()[::-1]])  # 4 frames
    outs = []
    for i, order in enumerate([None, [3, 1, 2, 0]]):
        folder = tmp_path / str(i)
        folder.mkdir()
        res = run(plugin, folder, x, "RGBS", order=order, model=default_onnx, tile=TILE, sessions=2)
        assert res.returncode == 0, res.stderr[-3000:]
        outs.append(np.load(folder / "out.npy"))
    assert np.array_equal(outs[0], outs[1])
    assert np.array_equal(outs[0][0], outs[0][3]) and np.array_equal(outs[0][1], outs[0][2])


def test_context_from_a_frame_property(plugin, routing_onnx, tmp_path):
    """context="frame" gives each output frame the context it used (HermesContext), the
    Python runtime's; context="prop" routes every frame by the property a script set: here
    frame 0's context on both frames, so frame 1 comes out as the runtime gives it with
    frame 0's context (a random routing model, whose output moves with the context)."""
    from hermes_deploy.engines.ov_runner import OvRunner
    from hermes_deploy.runtime.pipeline import image_context, restore_array
    from hermes_deploy.runtime.plan import TileOptions

    x = frames()
    res = run(plugin, tmp_path, x, "RGBS", model=routing_onnx, tile=TILE)
    assert res.returncode == 0, res.stderr[-3000:]
    used = json.loads((tmp_path / "contexts.json").read_text())
    with OvRunner(routing_onnx, precision="f32") as runner:
        images = [np.ascontiguousarray(f.transpose(1, 2, 0)) for f in x]
        want_ctx = [image_context(runner, im)[0] for im in images]
        assert np.abs(np.array(used[0]) - want_ctx[0]).max() <= 1e-6
        assert np.abs(np.array(used[1]) - want_ctx[1]).max() <= 1e-6
        assert np.abs(want_ctx[0] - want_ctx[1]).max() > 1e-3  # two photographs, two contexts
        res = run(plugin, tmp_path, x, "RGBS", prop=used[0], model=routing_onnx, tile=TILE, context="prop")
        assert res.returncode == 0, res.stderr[-3000:]
        got = np.load(tmp_path / "out.npy")
        shared = np.asarray(used[0], np.float32)[None]
        want1, _ = restore_array(runner, images[1], TileOptions(tile=(TILE, TILE)), context=shared)
        own1, _ = restore_array(runner, images[1], TileOptions(tile=(TILE, TILE)))
    diff = float(np.abs(got[1].transpose(1, 2, 0) - want1).max())
    assert diff <= 1e-5, diff
    assert float(np.abs(got[1].transpose(1, 2, 0) - own1).max()) > 1e-3  # the property was used


def test_errors_are_one_line_through_vapoursynth(plugin, default_onnx, tmp_path):
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(default_onnx, lonely / "model.onnx")  # no context graph beside it
    (tmp_path / "foreign.onnx").write_bytes(b"not a graph" * 20)
    cases = [({"model": tmp_path / "missing.onnx"}, "does not exist"),
             ({"model": tmp_path / "foreign.onnx"}, "not a readable ONNX"),
             ({"model": lonely / "model.onnx"}, "context graph"),
             ({"model": default_onnx, "context": "shot"}, "not available yet"),
             ({"model": default_onnx, "context": "prop"}, "HermesContext"),
             ({"model": default_onnx, "precision": "fp8"}, "precision must be"),
             ({"model": default_onnx, "tile": 0}, "tile")]
    for kwargs, words in cases:
        res = run(plugin, tmp_path, frames(), "RGBS", **kwargs)
        assert res.returncode != 0
        line = [ln for ln in res.stderr.splitlines() if "Restore:" in ln]
        assert line and words in line[-1], (kwargs, res.stderr[-1500:])
    res = run(plugin, tmp_path, quantize(frames(), 8), "YUV444P8", model=default_onnx)
    assert res.returncode != 0 and "Restore: the clip is not RGB" in res.stderr
