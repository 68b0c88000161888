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
from hermes_deploy.runtime.tiler import TileOptions, restore_array


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


def test_onnxruntime_path_never_imports_torch(default_onnx, tmp_path):
    code = f"""
import json, sys
import numpy as np
from PIL import Image
from hermes_deploy.engines.select import open_runner
from hermes_deploy.runtime.batch import run_batch
from hermes_deploy.runtime.tiler import TileOptions
Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)).save(r"{tmp_path}/a.png")
runner, why = open_runner(r"{default_onnx}")
report = run_batch(runner, [r"{tmp_path}/a.png"], r"{tmp_path}/out", TileOptions(tile=(32, 32)))
print(json.dumps({{"torch": "torch" in sys.modules, "done": report.count("done"), "why": why}}))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout.strip().splitlines()[-1])
    assert data == {"torch": False, "done": 1, "why": data["why"]} and "onnxruntime" in data["why"]


def test_backend_choices_are_checked(default_onnx):
    from hermes_deploy.engines.select import open_runner

    with pytest.raises(InputError, match="unknown backend"):
        open_runner("default", "tensorflow")
    with pytest.raises(InputError, match="is an ONNX graph"):
        open_runner(str(default_onnx), "torch")
