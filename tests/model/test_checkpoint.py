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

from hermes_deploy.cache import bundled_models
from hermes_deploy.errors import CheckpointError
from hermes_deploy.model.checkpoint import (CONFIG_KEY, config_from_tensor, config_tensor, convert_checkpoint,
                                           load_checkpoint, read_checkpoint, save_checkpoint)
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


# ----------------------------------------------------------------------------- config tensor


def test_safetensors_carry_the_config_as_a_tensor_too(tmp_path):
    """Tools that drop the metadata (spandrel loads with load_file) still find the config."""
    model = make_model("tiny", 3, seed=4)
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    raw = load_file(str(path))
    assert raw[CONFIG_KEY].dtype == torch.uint8 and raw[CONFIG_KEY].dim() == 1
    assert config_from_tensor(raw[CONFIG_KEY]) == model.config
    config, state, _ = read_checkpoint(path)
    assert config == model.config and CONFIG_KEY not in state and set(state) == set(model.state_dict())
    # metadata gone (as after a tool re-saved the tensors alone): the tensor is enough
    bare = tmp_path / "bare.safetensors"
    save_file(raw, str(bare))
    x = torch.rand(1, 3, 12, 20)
    with torch.no_grad():
        assert torch.equal(load_checkpoint(bare)(x), model(x))


def test_pth_is_a_plain_state_dict_that_loads_back(tmp_path):
    model = deploy(make_model("tiny", 4, seed=5), fidelity=True)
    path = save_checkpoint(model, tmp_path / "m.pth")
    obj = torch.load(path, weights_only=True)
    assert isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values())
    assert set(obj) == set(model.state_dict()) | {CONFIG_KEY}
    loaded = load_checkpoint(path)
    assert loaded.config == model.config
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_a_pth_state_dict_without_config_is_refused(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(make_model("tiny", 2).state_dict(), path)
    with pytest.raises(CheckpointError, match="no HERMES config") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("bad", [torch.zeros(3, dtype=torch.float32), torch.tensor(list(b"{nope"), dtype=torch.uint8),
                                 torch.zeros(2, 2, dtype=torch.uint8)])
def test_a_malformed_config_tensor_is_one_clear_error(tmp_path, bad):
    state = dict(make_model("tiny", 2).state_dict())
    state[CONFIG_KEY] = bad
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match=CONFIG_KEY) as err:
        load_checkpoint(tmp_path / "w.pth")
    assert "\n" not in str(err.value)


def test_metadata_and_tensor_must_agree(tmp_path):
    def mutate(t):
        t[CONFIG_KEY] = config_tensor(make_model("tiny", 2).config.replace(scale=3))

    with pytest.raises(CheckpointError, match="disagree"):
        read_checkpoint(_save_tampered(tmp_path, mutate))


def test_the_bundled_default_carries_the_config_tensor():
    path = bundled_models()["default"]
    raw = load_file(str(path))
    config, _, meta = read_checkpoint(path)
    assert config_from_tensor(raw[CONFIG_KEY]) == config
    assert meta["config"] == config.to_json() and "val_psnr_y" in meta  # training notes kept


# ----------------------------------------------------------------------------- convert


def test_convert_keeps_weights_and_notes_bit_for_bit(tmp_path):
    pth = convert_checkpoint("default", tmp_path / "d.pth")
    assert pth.max_abs_diff is None and pth.params == 234_614
    back = convert_checkpoint(pth.output, tmp_path / "d.safetensors")
    want = load_file(str(bundled_models()["default"]))
    got = load_file(str(back.output))
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
    # the .pth has no metadata: notes survive safetensors -> safetensors only
    notes = convert_checkpoint("default", tmp_path / "n.safetensors")
    assert "val_psnr_y" in read_checkpoint(notes.output)[2]


def test_convert_deploy_writes_the_fidelity_form(tmp_path):
    result = convert_checkpoint("default", tmp_path / "fast.pth", deploy=True)
    assert result.config.deploy and result.config.fidelity and result.params == 214_357
    assert result.max_abs_diff < 1e-5
    fast = load_checkpoint(result.output)
    model = load_checkpoint(bundled_models()["default"])
    model.set_fidelity(True)
    x = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (fast(x) - model(x)).abs().max().item() < 1e-5


def test_convert_refuses_unknown_names_and_suffixes(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint 'nope'"):
        convert_checkpoint("nope", tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match=r"\.safetensors or \.pth"):
        convert_checkpoint("default", tmp_path / "x.onnx")
    assert list(tmp_path.iterdir()) == []
