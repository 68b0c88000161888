"""integrations/comfyui: imported as ComfyUI imports a custom-node folder, its node called
with real IMAGE tensors. ComfyUI itself is not on PyPI, so it is not run here: its
loader's steps (load the file's tensors, ``ModelLoader().load_from_state_dict``, check
``ImageModelDescriptor``) are repeated as ComfyUI's "Load Upscale Model" takes them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hermes_deploy.model.checkpoint import load_checkpoint

from .conftest import photo, psnr, routing_standin

FOLDER = Path(__file__).resolve().parents[2] / "integrations" / "comfyui"


@pytest.fixture(scope="module")
def nodes(spandrel):
    spec = importlib.util.spec_from_file_location("hermes_comfyui_nodes", FOLDER / "__init__.py",
                                                  submodule_search_locations=[str(FOLDER)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def comfy_load(spandrel, path: Path):
    """What ComfyUI's "Load Upscale Model" does with a file in models/upscale_models."""
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    descriptor = spandrel.ModelLoader().load_from_state_dict(state).eval()
    assert isinstance(descriptor, spandrel.ImageModelDescriptor)
    return descriptor


def test_the_folder_registers_hermes_and_declares_its_node(nodes, spandrel):
    assert "HERMES" in spandrel.MAIN_REGISTRY
    node = nodes.NODE_CLASS_MAPPINGS["HermesUpscale"]
    assert "HermesUpscale" in nodes.NODE_DISPLAY_NAME_MAPPINGS
    inputs = node.INPUT_TYPES()
    assert inputs["required"] == {"upscale_model": ("UPSCALE_MODEL",), "image": ("IMAGE",)}
    assert inputs["optional"]["tile"][0] == "INT"
    assert node.RETURN_TYPES == ("IMAGE",) and callable(getattr(node(), node.FUNCTION))


@pytest.mark.parametrize("name", ["default", "x4.pth"])
def test_node_upscales_a_batch_one_context_per_image(nodes, spandrel, checkpoints, name):
    """Two different photographs in one IMAGE batch: each comes out as its own
    whole-image output (a context shared across the batch would mix them)."""
    descriptor = comfy_load(spandrel, checkpoints[name])
    model = load_checkpoint(checkpoints[name])
    a, b = photo(40, 48, y=60, x=200), photo(40, 48, name="coffee", y=100, x=200)
    images = torch.cat([a, b]).permute(0, 2, 3, 1).contiguous()  # (B, H, W, C)
    (out,) = nodes.HermesUpscale().upscale(descriptor, images)
    s = model.config.scale
    assert out.shape == (2, s * 40, s * 48, 3) and out.dtype == images.dtype
    for i, x in enumerate((a, b)):
        with torch.no_grad():
            want = model(x).clamp(0, 1)[0].permute(1, 2, 0)
        assert (out[i] - want).abs().max().item() <= 1e-5


def test_node_tiles_inside_with_one_context(nodes, spandrel, monkeypatch):
    """The node's tile setting cuts the image inside; on a model that routes hard the
    result is the whole-image output to >= 50 dB, the context computed once."""
    from hermes_deploy.model.checkpoint import CONFIG_KEY, config_tensor

    model = routing_standin()
    descriptor = spandrel.ModelLoader().load_from_state_dict(
        {**model.state_dict(), CONFIG_KEY: config_tensor(model.config)})
    from hermes_deploy.spandrel.tiling import recommended_overlap

    recommended_overlap(descriptor.model)  # measured before the spies go in
    tiles, contexts = [], []
    descriptor.model.register_forward_pre_hook(lambda m, args: tiles.append(tuple(args[0].shape)))
    real = descriptor.model.compute_context
    monkeypatch.setattr(descriptor.model, "compute_context",
                        lambda x: contexts.append(tuple(x.shape)) or real(x))
    x = photo(96, 136, y=120, x=180)
    (out,) = nodes.HermesUpscale().upscale(descriptor, x.permute(0, 2, 3, 1), tile=64)
    with torch.no_grad():
        want = model(x)
    assert len(tiles) == 6 and contexts == [(1, 3, 96, 136)]
    assert psnr(out.permute(0, 3, 1, 2), want) >= 50.0


def test_node_halves_the_tile_after_running_out_of_memory(nodes, spandrel, checkpoints, monkeypatch):
    import hermes_deploy.spandrel as hs

    descriptor = comfy_load(spandrel, checkpoints["default"])
    asked = []
    real = hs.upscale_images

    def flaky(model, images, tile=None):
        asked.append(tile)
        if tile > 64:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, images, tile=tile)

    monkeypatch.setattr(nodes, "upscale_images", flaky)
    (out,) = nodes.HermesUpscale().upscale(descriptor, photo(24, 24).permute(0, 2, 3, 1), tile=256)
    assert asked == [256, 128, 64] and out.shape == (1, 48, 48, 3)


def test_node_refuses_other_architectures_in_one_line(nodes, spandrel):
    from spandrel.architectures.Compact import Compact

    from hermes_deploy.errors import InputError

    descriptor = spandrel.ModelLoader().load_from_state_dict(Compact(num_feat=8, num_conv=2).state_dict())
    with pytest.raises(InputError, match="Upscale Image \\(using Model\\)") as err:
        nodes.HermesUpscale().upscale(descriptor, torch.rand(1, 16, 16, 3))
    assert "\n" not in str(err.value)
