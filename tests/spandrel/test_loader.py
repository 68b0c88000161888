"""spandrel's own loader on HERMES files, with spandrel's own architectures beside it."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from hermes_deploy.model.checkpoint import CONFIG_KEY, config_tensor, load_checkpoint

from .conftest import photo


@pytest.mark.parametrize("name", ["default", "default.pth", "deploy", "x4", "x4.pth", "x3",
                                  "x1-deploy.pth"])
def test_spandrel_loads_every_form_and_matches_torch(spandrel, checkpoints, name):
    path = checkpoints[name]
    descriptor = spandrel.ModelLoader().load_from_file(path)
    model = load_checkpoint(path)
    cfg = model.config
    assert isinstance(descriptor, spandrel.ImageModelDescriptor)
    assert descriptor.architecture.id == "HERMES"
    assert (descriptor.scale, descriptor.input_channels, descriptor.output_channels) == (cfg.scale, 3, 3)
    assert descriptor.purpose == ("SR" if cfg.scale > 1 else "Restoration")
    assert descriptor.tiling == spandrel.ModelTiling.INTERNAL
    assert not descriptor.supports_half and not descriptor.supports_bfloat16  # see arch.py
    assert descriptor.size_requirements.none  # the network pads itself (arch.py says why)
    assert descriptor.tags[1] == ("deploy" if cfg.deploy else "training")
    x = photo(40, 52, y=80, x=200)  # unaligned, one tile
    with torch.no_grad():
        want = model(x).clamp(0, 1)
    got = descriptor(x)
    assert got.shape == (1, 3, cfg.scale * 40, cfg.scale * 52)
    assert (got - want).abs().max().item() <= 1e-5


def test_register_is_idempotent_and_first(spandrel):
    from hermes_deploy.spandrel import register

    before = len(spandrel.MAIN_REGISTRY)
    support = register()
    assert register() is support and len(spandrel.MAIN_REGISTRY) == before
    ids = [a.architecture.id for a in spandrel.MAIN_REGISTRY.architectures("detection")]
    assert ids[0] == "HERMES" and ids.count("HERMES") == 1


def _spandrel_models(spandrel):
    """A few of spandrel's architectures at random weights (small configurations)."""
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.PLKSR import PLKSR
    from spandrel.architectures.SAFMN import SAFMN
    from spandrel.architectures.SPAN import SPAN

    torch.manual_seed(0)
    return {"ESRGAN": ESRGAN(num_filters=16, num_blocks=2, scale=4),
            "SPAN": SPAN(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=2),
            "Compact": Compact(num_feat=16, num_conv=4, upscale=2),
            "SAFMN": SAFMN(dim=16, n_blocks=2, upscaling_factor=2),
            "PLKSR": PLKSR(dim=16, n_blocks=2, upscaling_factor=2)}


def test_spandrel_architectures_are_still_detected(spandrel):
    from hermes_deploy.spandrel.arch import detect

    loader = spandrel.ModelLoader()
    for arch_id, net in _spandrel_models(spandrel).items():
        state = net.state_dict()
        assert not detect(state), arch_id
        descriptor = loader.load_from_state_dict(state)
        assert descriptor.architecture.id == arch_id
        x = torch.rand(1, 3, 16, 16)
        assert descriptor(x).shape[-1] == 16 * descriptor.scale


def test_no_other_architecture_claims_a_hermes_file(spandrel, checkpoints):
    """HERMES is tried first, but even without that no detector of spandrel takes it."""
    for name in ("default", "deploy", "x4"):
        state = load_file(str(checkpoints[name]))
        claims = [a.architecture.id for a in spandrel.MAIN_REGISTRY.architectures() if a.detect(state)]
        assert claims == ["HERMES"], name


def test_foreign_and_edited_files_are_not_taken_for_hermes(spandrel, checkpoints, tmp_path):
    from hermes_deploy.spandrel.arch import detect

    loader = spandrel.ModelLoader()
    with pytest.raises(spandrel.UnsupportedModelError):
        loader.load_from_state_dict({"conv.weight": torch.zeros(8, 3, 3, 3)})
    # another architecture's weights carrying a HERMES config tensor: not HERMES
    esrgan = _spandrel_models(spandrel)["ESRGAN"].state_dict()
    assert not detect({**esrgan, CONFIG_KEY: load_file(str(checkpoints["default"]))[CONFIG_KEY]})
    # a HERMES file with one tensor cut, one reshaped, or a config of another scale
    state = load_file(str(checkpoints["default"]))
    assert detect(state)
    cut = {k: v for k, v in state.items() if k != "freq.cutoff"}
    reshaped = {**state, "head.4.weight": torch.zeros(3, 3, 3, 3)}
    other = {**state, CONFIG_KEY: config_tensor(load_checkpoint(checkpoints["default"]).config.replace(scale=3))}
    garbage = {**state, CONFIG_KEY: torch.tensor(list(b"{oops"), dtype=torch.uint8)}
    for bad in (cut, reshaped, other, garbage):
        assert not detect(bad)
        with pytest.raises(spandrel.UnsupportedModelError):
            loader.load_from_state_dict(bad)
