"""The descriptor's call tiles inside: one context per image, the runtime's grid and blend,
bounded memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hermes_deploy.model.checkpoint import CONFIG_KEY, config_tensor
from hermes_deploy.spandrel.tiling import tile_plan

from .conftest import photo, psnr, routing_standin


def _descriptor(spandrel, model, **options):
    """A descriptor of ``model`` through HERMES's own ``load`` (``options``: tiling)."""
    from hermes_deploy.spandrel.arch import HermesArch

    state = {**model.state_dict(), CONFIG_KEY: config_tensor(model.config)}
    return HermesArch(**options).load(state)


def _spy(descriptor, monkeypatch):
    """Record the input of every forward and of every context computation."""
    model = descriptor.model
    seen = {"tiles": [], "contexts": []}
    model.register_forward_pre_hook(lambda m, args: seen["tiles"].append(tuple(args[0].shape)))
    real = model.compute_context

    def context(x):
        seen["contexts"].append(tuple(x.shape))
        return real(x)

    monkeypatch.setattr(model, "compute_context", context)
    return seen


def test_tiled_call_matches_the_whole_image_with_one_context(spandrel, monkeypatch):
    """A photograph cut into 6 tiles: the output is the whole-image output to >= 50 dB on
    a model that routes hard (a per-tile context would route tiles apart), the context
    is computed once, on the whole image, and no forward sees more than one tile."""
    model = routing_standin()
    descriptor = _descriptor(spandrel, model, tile=64, overlap=16)
    seen = _spy(descriptor, monkeypatch)
    x = photo(96, 136, y=120, x=180)
    got = descriptor(x)
    with torch.no_grad():
        want = model(x)
    plan = tile_plan(model, 96, 136, 64, 16)
    assert plan.count == 6 and len(seen["tiles"]) == 6
    assert all(t == (1, 3, 64, 64) for t in seen["tiles"])  # memory: one 64x64 tile at a time
    assert seen["contexts"] == [(1, 3, 96, 136)]
    assert psnr(got, want) >= 50.0


def test_tiled_call_is_the_runtime_output(spandrel, checkpoints):
    """Same grid, same blend weights: the descriptor equals hermes_deploy's own tiled
    runtime (restore_array with the torch runner) on the deploy checkpoint."""
    from hermes_deploy.engines.torch_runner import TorchRunner
    from hermes_deploy.runtime.pipeline import restore_array
    from hermes_deploy.model.checkpoint import load_checkpoint
    from hermes_deploy.runtime.plan import TileOptions

    path = checkpoints["deploy"]
    runner = TorchRunner(str(path))
    assert runner.spec.tile_overlap == 16  # the descriptor measures the same (recommended_overlap)
    descriptor = _descriptor(spandrel, load_checkpoint(path), tile=48, overlap=16)
    x = photo(72, 100, name="coffee", y=100, x=150)
    got = descriptor(x)
    out, stats = restore_array(runner, x[0].permute(1, 2, 0).numpy(), TileOptions(tile=(48, 48)))
    assert stats.tiles > 1
    want = torch.from_numpy(out).permute(2, 0, 1)[None].clamp(0, 1)
    assert (got - want).abs().max().item() <= 1e-5


def test_a_large_image_gets_its_context_from_a_downscaled_copy(spandrel, monkeypatch):
    """As the runtime does for a file: the context of an image longer than
    ``context_max_side`` comes from a copy downscaled to that side."""
    from hermes_deploy.model.checkpoint import load_checkpoint
    from hermes_deploy.cache import bundled_models

    descriptor = _descriptor(spandrel, load_checkpoint(bundled_models()["default"]), tile=64,
                             overlap=16, context_max_side=50)
    seen = _spy(descriptor, monkeypatch)
    descriptor(photo(60, 100, y=200, x=200))
    assert seen["contexts"] == [(1, 3, 30, 50)]


@pytest.mark.slow
def test_registered_defaults_on_a_whole_photograph(spandrel, checkpoints, monkeypatch):
    """spandrel's own loader, HERMES's defaults (256 px tiles, the measured overlap), the
    whole 512x512 astronaut: 9 tiles, one context, >= 50 dB against the whole image."""
    from hermes_deploy.model.checkpoint import load_checkpoint

    from hermes_deploy.spandrel.tiling import recommended_overlap

    descriptor = spandrel.ModelLoader().load_from_file(checkpoints["deploy"])
    assert recommended_overlap(descriptor.model) == 16  # measured now, kept for the call
    seen = _spy(descriptor, monkeypatch)
    x = photo(512, 512)
    got = descriptor(x)
    with torch.no_grad():
        want = load_checkpoint(checkpoints["deploy"])(x)
    assert len(seen["tiles"]) == 9 and set(seen["tiles"]) == {(1, 3, 256, 256)}
    assert seen["contexts"] == [(1, 3, 512, 512)]
    assert psnr(got, want) >= 50.0


def test_one_pixel_and_thin_images(spandrel, checkpoints):
    """Sides shorter than the reflection pad, and a strip much longer than a tile."""
    from hermes_deploy.model.checkpoint import load_checkpoint

    model = load_checkpoint(checkpoints["deploy"])
    descriptor = _descriptor(spandrel, model, tile=32, overlap=16)
    for h, w in ((1, 1), (3, 90)):
        x = torch.from_numpy(np.linspace(0, 1, 3 * h * w, dtype=np.float32).reshape(1, 3, h, w))
        got = descriptor(x)
        assert got.shape == (1, 3, 2 * h, 2 * w) and torch.isfinite(got).all()
        if w <= 32:
            with torch.no_grad():
                assert (got - model(x).clamp(0, 1)).abs().max().item() <= 1e-5
