"""Runners behind one interface: torch and onnxruntime agree through the tiler, the
onnxruntime path never imports torch, and ``auto`` explains its choice."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hermes_deploy.errors import InputError
from hermes_deploy.quality.degrade import bicubic_down
from hermes_deploy.quality.photos import load_photo
from hermes_deploy.runtime.pipeline import restore_array
from hermes_deploy.runtime.plan import TileOptions


@pytest.mark.slow
def test_torch_and_onnxruntime_runners_agree(default_runner, tmp_path, monkeypatch):
    monkeypatch.setenv("HERMES_CACHE_DIR", str(tmp_path / "cache"))
    from hermes_deploy.engines.torch_runner import TorchRunner

    image = np.ascontiguousarray(bicubic_down(load_photo("coffee"), 4)[:40, :56])
    runner = TorchRunner("default", device="cpu")
    assert runner.spec.tile_overlap == default_runner.spec.tile_overlap
    assert runner.spec.scale == default_runner.spec.scale
    opts = TileOptions(tile=(32, 32), batch=2)
    a, _ = restore_array(runner, image, opts)
    b, _ = restore_array(default_runner, image, opts)
    assert np.abs(a - b).max() <= 1e-4
    # the measured spec is cached per checkpoint
    assert list((tmp_path / "cache" / "specs").glob("*.json"))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "auto"])
def test_graph_backends_never_import_torch(default_onnx, tmp_path, backend):
    if backend == "openvino":
        pytest.importorskip("openvino", reason="openvino is not installed")
    code = f"""
import json, sys
import numpy as np
from PIL import Image
from hermes_deploy.engines.select import open_runner
from hermes_deploy.runtime.batch import run_batch
from hermes_deploy.runtime.plan import TileOptions
Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)).save(r"{tmp_path}/a.png")
runner, why = open_runner(r"{default_onnx}", "{backend}")
report = run_batch(runner, [r"{tmp_path}/a.png"], r"{tmp_path}/out", TileOptions(tile=(32, 32)))
print(json.dumps({{"torch": "torch" in sys.modules, "done": report.count("done"), "why": why}}))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout.strip().splitlines()[-1])
    assert data == {"torch": False, "done": 1, "why": data["why"]}
    assert backend == "auto" or backend in data["why"]


def test_backend_choices_are_checked(default_onnx):
    from hermes_deploy.engines.select import open_runner

    with pytest.raises(InputError, match="unknown backend"):
        open_runner("default", "tensorflow")
    with pytest.raises(InputError, match="is an ONNX graph"):
        open_runner(str(default_onnx), "torch")


def test_static_engine_profile_becomes_the_tile():
    from hermes_deploy.engines.trt.runner import _with_static_tile
    from hermes_deploy.spec import ModelSpec

    spec = ModelSpec(scale=2, in_channels=3, out_channels=3, size_multiple=16, min_size=1,
                     tile_overlap=16, receptive_radius=9, context_channels=48,
                     precision="fp32", io_dtype="float32", target="portable", opset=18,
                     fidelity=True)
    static = [{"input": [[1, 3, 64, 96], [2, 3, 64, 96], [4, 3, 64, 96]]}]
    dynamic = [{"input": [[1, 3, 32, 32], [1, 3, 64, 64], [1, 3, 256, 256]]}]
    assert _with_static_tile(spec, static).tile == (64, 96)
    assert _with_static_tile(spec, dynamic).tile is None
    assert _with_static_tile(spec, static + dynamic).tile is None
