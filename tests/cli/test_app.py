"""The hermes-export app: light import, --help without torch, deploy, info, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from hermes_deploy.model.checkpoint import load_checkpoint, save_checkpoint
from hermes_deploy.model.stats import count_params

from ..conftest import make_model


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "hermes_deploy.cli.app", *args],
                          capture_output=True, text=True, **kw)



def test_cli_help_without_torch_import():
    code = ("import sys; sys.argv=['hermes-export','--help']\n"
            "from hermes_deploy.cli.app import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "TORCH False" in out.stdout and "deploy" in out.stdout


@pytest.mark.slow
def test_cli_deploy_writes_matching_deploy_checkpoint(tmp_path):
    model = make_model("tiny", 2, seed=4)
    src = save_checkpoint(model, tmp_path / "train.safetensors")
    out = tmp_path / "deploy.safetensors"
    res = _cli("deploy", str(src), "-o", str(out))
    assert res.returncode == 0, res.stderr
    diff = float(res.stdout.split("fidelity on): ")[1].split()[0])
    assert diff < 1e-4
    dep = load_checkpoint(out)
    assert dep.config.deploy and dep.config.fidelity and len(dep.moe.experts) == 3
    model.set_fidelity(True)
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        assert (dep(x) - model(x)).abs().max() < 1e-4


@pytest.mark.slow
def test_cli_info_json_counts_parameters():
    res = _cli("info", "tiny", "--scale", "4", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["params"] == count_params(make_model("tiny", 4))
    assert report["params"] < 300_000 and report["deploy_params"] < report["params"]
    assert report["deploy_macs"] < report["macs"]


def test_cli_bad_checkpoint_is_one_line_error(tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 10)
    res = _cli("deploy", str(bad), "-o", str(tmp_path / "o.safetensors"))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "broken.safetensors" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "o.safetensors").exists()


@pytest.mark.slow
def test_cli_deploy_keep_generative_of_a_deploy_checkpoint_is_one_line_error(tmp_path):
    """A deploy-form (fidelity) checkpoint has no generative expert left to keep."""
    model = make_model("tiny", 2, seed=5)
    src = save_checkpoint(model, tmp_path / "train.safetensors")
    dep = tmp_path / "deploy.safetensors"
    assert _cli("deploy", str(src), "-o", str(dep)).returncode == 0
    out = tmp_path / "again.safetensors"
    res = _cli("deploy", str(dep), "-o", str(out), "--keep-generative")
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "generative expert removed" in res.stderr and "training-form checkpoint" in res.stderr
    assert not out.exists()

