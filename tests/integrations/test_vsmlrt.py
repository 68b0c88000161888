"""vs-mlrt runs the single graph: VapourSynth's OpenVINO plugin (``vapoursynth-mlrt-ov``)
gives onnxruntime's output on the same tiles, and refuses the pair.

VapourSynth R81 and the plugin install only on Python >= 3.12 and the package runs on
3.11, so each test writes a VapourSynth script to ``tmp_path`` and runs it with the
python of ``.venv-vs/`` (``scripts/install-vs-env.sh``); frames go in and out as .npy.

What vs-mlrt does with a network, read in its source (AmusementClub/vs-mlrt,
``vsov/vs_openvino.cpp`` and ``common/onnx_utils.cpp``) and held here by the tiled case:
exactly one input and one output, fixed to batch 1 and the tile's size; tiles step by
``tilesize - 2 * overlap`` from 0, the last one clamped to the frame's end; each tile's
output is pasted as it is, less ``overlap`` pixels of *output* (not scaled by the model's
scale) at every edge that is not the frame's, later tiles over earlier ones, no blending.
The call signature is the installed wheel's (``core.ov.Model.signature``; an API4 port that
has ``num_streams`` and no ``builtin``).

OpenVINO's CPU plugin infers in bf16 on a CPU that has it unless told f32, so the scripts
pass ``INFERENCE_PRECISION_HINT=f32`` (without it: 0.024 max abs on an AVX512-BF16 CPU).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hermes_deploy.quality import load_photo

REPO = Path(__file__).resolve().parents[2]
VS_PYTHON = REPO / ".venv-vs" / "bin" / "python"
SCALE = 2
TOLERANCE = 1e-4  # OpenVINO vs onnxruntime in f32; measured 8.3e-7 whole, 7.8e-7 tiled

# Runs in the 3.12 environment: argv = frames.npy (N,3,H,W float32), out.npy, Model kwargs.
VS_SCRIPT = """\
import json, sys
import numpy as np
import vapoursynth as vs
from vapoursynth import core

frames = np.load(sys.argv[1])
n, _, h, w = frames.shape

def fill(n, f):
    out = f.copy()  # API4: a frame's planes are buffers, a copy's are writable
    for p in range(3):
        np.asarray(out[p])[:] = frames[n, p]
    return out

blank = core.std.BlankClip(format=vs.RGBS, width=w, height=h, length=n)
clip = core.std.ModifyFrame(blank, blank, fill)
up = core.ov.Model(clip, config=lambda: dict(INFERENCE_PRECISION_HINT="f32"), **json.loads(sys.argv[3]))
assert up.format.id == vs.RGBS, up.format
np.save(sys.argv[2], np.stack([np.stack([np.asarray(f[p]) for p in range(3)]) for f in up.frames()]))
"""


@pytest.fixture(scope="session")  # session: checked before the (session) ONNX exports
def vs_python() -> Path:
    if not VS_PYTHON.is_file():
        pytest.skip(f"needs the VapourSynth test environment {VS_PYTHON.relative_to(REPO)} "
                    "(bash scripts/install-vs-env.sh)")
    return VS_PYTHON


def photo_frames(h: int = 64, w: int = 96) -> np.ndarray:
    """Three different photographs, (3, 3, h, w) float32 in [0, 1]."""
    crops = [load_photo(name)[y:y + h, x:x + w]
             for name, y, x in (("astronaut", 100, 150), ("coffee", 150, 250), ("chelsea", 80, 150))]
    return np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2), np.float32)


def run_vs(python: Path, tmp_path: Path, frames: np.ndarray, **model_args) -> subprocess.CompletedProcess:
    (tmp_path / "upscale.py").write_text(VS_SCRIPT)
    np.save(tmp_path / "frames.npy", frames)
    model_args = {k: str(v) if isinstance(v, Path) else v for k, v in model_args.items()}
    return subprocess.run([str(python), "upscale.py", "frames.npy", "out.npy", json.dumps(model_args)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


def vsmlrt_starts(size: int, tile: int, overlap: int) -> list[int]:
    """vs-mlrt's tile origins along one axis."""
    starts = [0]
    while starts[-1] + tile != size:
        starts.append(min(starts[-1] + tile - 2 * overlap, size - tile))
    return starts


def vsmlrt_tiled(run, frame: np.ndarray, tilesize: tuple[int, int],
                 overlap: tuple[int, int]) -> np.ndarray:
    """vs-mlrt's tiled pass of ``run`` over one (3,H,W) frame; sizes are (width, height)."""
    (tw, th), (ow, oh) = tilesize, overlap
    _, h, w = frame.shape
    out = np.zeros((3, SCALE * h, SCALE * w), np.float32)
    for y in vsmlrt_starts(h, th, oh):
        top, bottom = (0 if y == 0 else oh), (0 if y + th == h else oh)
        for x in vsmlrt_starts(w, tw, ow):
            left, right = (0 if x == 0 else ow), (0 if x + tw == w else ow)
            tile = run(frame[:, y:y + th, x:x + tw])
            rows = slice(SCALE * y + top, SCALE * (y + th) - bottom)
            cols = slice(SCALE * x + left, SCALE * (x + tw) - right)
            out[:, rows, cols] = tile[:, top:SCALE * th - bottom, left:SCALE * tw - right]
    return out


@pytest.fixture(scope="module")
def single_ort(default_single_onnx):
    """onnxruntime running the single graph on one (3,h,w) image -> (3,2h,2w)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(str(default_single_onnx), opts, providers=["CPUExecutionProvider"])
    return lambda image: session.run(["output"], {"input": np.ascontiguousarray(image[None])})[0][0]


def test_vsmlrt_tile_origins_follow_its_source():
    assert vsmlrt_starts(96, 96, 0) == [0]
    assert vsmlrt_starts(96, 32, 4) == [0, 24, 48, 64]  # the last one clamped
    assert vsmlrt_starts(64, 48, 8) == [0, 16]


@pytest.mark.parametrize("tiles", [None, ((32, 48), (4, 8))], ids=["whole-frame", "tiled"])
def test_vsmlrt_runs_the_single_graph_as_onnxruntime_does(vs_python, default_single_onnx, single_ort,
                                                          tmp_path, tiles):
    frames = photo_frames()
    args = {} if tiles is None else {"tilesize": list(tiles[0]), "overlap": list(tiles[1])}
    res = run_vs(vs_python, tmp_path, frames, network_path=default_single_onnx, **args)
    assert res.returncode == 0, res.stderr[-3000:]
    got = np.load(tmp_path / "out.npy")
    assert got.shape == (3, 3, SCALE * 64, SCALE * 96)

    whole = np.stack([single_ort(f) for f in frames])
    want = whole if tiles is None else np.stack([vsmlrt_tiled(single_ort, f, *tiles) for f in frames])
    err = float(np.abs(got - want).max())
    assert err <= TOLERANCE, f"vs-mlrt vs onnxruntime: max abs {err:.3g}"
    if tiles is not None:  # the tiles were real: each routes by itself, so the frame differs
        assert float(np.abs(got - whole).max()) > 1e-2


def test_vsmlrt_refuses_the_pair(vs_python, default_onnx, tmp_path):
    """The default export takes ``input`` and ``context``; vs-mlrt takes one input."""
    res = run_vs(vs_python, tmp_path, photo_frames()[:1], network_path=default_onnx)
    assert res.returncode != 0
    assert "graph must has a single input" in res.stderr, res.stderr[-3000:]


def test_readme_vsmlrt_example_runs(vs_python, default_single_onnx, tmp_path):
    """README's VapourSynth block, on a blank clip that fits its 256x256 tiles: both calls
    are accepted and give the x2 RGBS clip (outputs are the tests above)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("### The single graph in VapourSynth (vs-mlrt)"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "model.single.onnx").symlink_to(default_single_onnx)
    script = ("import vapoursynth as vs\nfrom vapoursynth import core\n"
              "clip = core.std.BlankClip(format=vs.RGBS, width=288, height=272, length=1)\n"
              + code + "\nprint([(c.format.name, c.width, c.height) for c in (up, up_tiled)])\n")
    (tmp_path / "example.py").write_text(script)
    res = subprocess.run([str(vs_python), "example.py"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip() == "[('RGBS', 576, 544), ('RGBS', 576, 544)]"
