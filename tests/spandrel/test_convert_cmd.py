"""``hermes-export convert`` as a user runs it, and spandrel on what it writes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import torch

from hermes_deploy.model.checkpoint import CONFIG_KEY, load_checkpoint

from ..cli.harness import cli
from .conftest import photo


def test_convert_to_pth_and_deploy_form_for_spandrel(spandrel, tmp_path):
    pth = tmp_path / "hermes-x2.pth"
    out = cli("convert", "default", pth)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"wrote {pth} (preset tiny, x2, training form")
    state = torch.load(pth, weights_only=True)  # a plain state dict, nothing else pickled
    assert CONFIG_KEY in state and all(isinstance(v, torch.Tensor) for v in state.values())

    fast = tmp_path / "hermes-x2-deploy.safetensors"
    out = cli("convert", pth, fast, "--deploy", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["deploy"] and report["fidelity"] and report["max_abs_diff"] < 1e-5
    assert report["params"] == 214_357

    x = photo(32, 40, y=100, x=220)
    for path in (pth, fast):
        descriptor = spandrel.ModelLoader().load_from_file(path)
        with torch.no_grad():
            want = load_checkpoint(path)(x).clamp(0, 1)
        assert (descriptor(x) - want).abs().max().item() <= 1e-5


def test_convert_errors_are_one_line(tmp_path):
    for args, expected in ((("nope.safetensors", tmp_path / "a.pth"), "no checkpoint 'nope.safetensors'"),
                           (("default", tmp_path / "a.onnx"), "written as .safetensors or .pth")):
        out = cli("convert", *args)
        assert out.returncode == 2 and out.stdout == ""
        assert out.stderr.count("\n") == 1 and expected in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_readme_example_runs_as_written(spandrel, tmp_path):
    """README's spandrel section: its convert line, then its Python block, in one folder."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("## spandrel, chaiNNer and ComfyUI"):]
    command = re.search(r"^(hermes-export convert [^#\n]+?)\s*#", section, re.M).group(1).split()
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert command[:3] == ["hermes-export", "convert", "default"]
    out = cli("convert", "default", tmp_path / command[3])  # the folder the block runs in
    assert out.returncode == 0, out.stderr
    code += "\nassert y.shape == (1, 3, 192, 256) and 0 <= y.min() and y.max() <= 1, y.shape\n"
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
