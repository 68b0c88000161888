"""Checkpoints: round trips, strict validation, no unpickling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from hermes_deploy.errors import CheckpointError
from hermes_deploy.model.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from hermes_deploy.model.deploy import deploy

from ..cli.harness import tiny_fs  # noqa: F401 (the real full-filesystem fixture)
from ..conftest import make_model


@pytest.mark.slow
@pytest.mark.parametrize("form", ["training", "deploy"])
def test_round_trip_same_outputs(tmp_path, form):
    model = make_model("tiny", 2, seed=11)
    if form == "deploy":
        model = deploy(model, fidelity=True)
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    loaded = load_checkpoint(path)
    assert loaded.config == model.config
    x = torch.rand(1, 3, 23, 17)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    meta = read_checkpoint(path)[2]
    assert json.loads(meta["config"])["deploy"] == (form == "deploy")


def _save_tampered(tmp_path, mutate) -> Path:
    model = make_model("tiny", 2)
    path = save_checkpoint(model, tmp_path / "ok.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    mutate(tensors)
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=meta)
    return bad


def test_missing_and_mismatched_keys_are_listed(tmp_path):
    def mutate(t):
        del t["freq.cutoff"]
        t["head.4.weight"] = torch.zeros(3, 3, 3, 3)
        t["surprise.weight"] = torch.zeros(1)

    bad = _save_tampered(tmp_path, mutate)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(bad)
    msg = str(err.value)
    assert "\n" not in msg
    assert "missing 1: freq.cutoff" in msg and "unexpected 1: surprise.weight" in msg
    assert "head.4.weight (3, 3, 3, 3) vs model (12, 32, 3, 3)" in msg


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = tmp_path / "evil.pth"
    # Written by a separate interpreter so the test module holds no exploit class.
    code = (
        "import os, pickle, sys\n"
        "class P:\n"
        "    def __reduce__(self):\n"
        f"        return (os.system, ('touch {marker}',))\n"
        f"pickle.dump({{'config': '{{}}', 'state_dict': P()}}, open({str(payload)!r}, 'wb'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(CheckpointError, match="refusing"):
        load_checkpoint(payload)
    assert not marker.exists()


def test_plain_weights_pth_loads(tmp_path):
    model = make_model("tiny", 2, seed=2)
    path = tmp_path / "m.pth"
    torch.save({"config": model.config.to_json(), "state_dict": model.state_dict()}, path)
    loaded = load_checkpoint(path)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_corrupt_or_foreign_files_give_clear_errors(tmp_path, content):
    path = tmp_path / "x.safetensors"
    if content is None:  # valid safetensors, but no HERMES metadata
        save_file({"w": torch.zeros(2)}, str(path))
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "x.safetensors" in str(err.value) and "\n" not in str(err.value)


def test_truncated_checkpoint(tmp_path):
    path = save_checkpoint(make_model("tiny", 2), tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_a_full_disk_keeps_the_old_checkpoint_and_leaves_nothing(tiny_fs):
    """A real full filesystem (tmpfs) with room for one checkpoint (0.96 MB) but not two:
    saving over it fails with one line, the old file is intact, no temporary is left."""
    fs = tiny_fs(1536)
    path = save_checkpoint(make_model("tiny", 2, seed=0), fs / "m.safetensors")
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="No space left") as err:
        save_checkpoint(make_model("tiny", 2, seed=1), path)
    assert "m.safetensors" in str(err.value) and "\n" not in str(err.value)
    assert os.listdir(fs) == ["m.safetensors"]
    assert path.read_bytes() == before
    assert load_checkpoint(path).config == make_model("tiny", 2).config
