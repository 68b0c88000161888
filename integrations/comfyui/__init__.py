"""HERMES for ComfyUI: copy this folder into ``ComfyUI/custom_nodes/`` (any folder name).

Needs ``hermes-deploy`` installed in ComfyUI's Python (``pip install hermes-deploy``;
spandrel and torchvision come with ComfyUI). On import it:

* registers HERMES with spandrel, so ComfyUI's own "Load Upscale Model" node loads
  HERMES checkpoints (``.safetensors`` or ``.pth`` in ``models/upscale_models``; older
  ones: ``hermes-export convert``);
* adds the node "Upscale Image (HERMES, one context per image)". ComfyUI's "Upscale
  Image (using Model)" cuts 512 px tiles itself and calls the model once per tile, so
  each tile computes its own per-image context and routes by itself (the model's
  declared ``INTERNAL`` tiling is not read). This node calls HERMES once per image: the
  context is computed on the whole image and the tiles are cut and blended inside.
"""

from __future__ import annotations

from hermes_deploy.optional import has
from hermes_deploy.runtime.pipeline import is_out_of_memory
from hermes_deploy.spandrel import register, upscale_images

register()

MIN_TILE = 64


def _device(model):
    """ComfyUI's compute device when running inside ComfyUI, else where the model is."""
    if has("comfy.model_management"):
        import comfy.model_management

        return comfy.model_management.get_torch_device()
    return next(model.model.parameters()).device


class HermesUpscale:
    """IMAGE (B, H, W, C) in [0, 1] -> IMAGE upscaled by the model, tiled inside it."""

    DESCRIPTION = ("Upscale with a HERMES model: one per-image context, tiles cut and blended "
                   "inside (ComfyUI's own upscale node gives each 512 px tile its own context).")
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"
    CATEGORY = "image/upscaling"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"upscale_model": ("UPSCALE_MODEL",), "image": ("IMAGE",)},
                "optional": {"tile": ("INT", {"default": 256, "min": MIN_TILE, "max": 4096,
                                              "step": 16, "tooltip": "Tile size in input pixels; "
                                              "halved after running out of memory."})}}

    def upscale(self, upscale_model, image, tile: int = 256):
        device = _device(upscale_model)
        home = next(upscale_model.model.parameters()).device
        upscale_model.to(device)
        try:
            while True:
                try:
                    return (upscale_images(upscale_model, image, tile=tile),)
                except Exception as exc:
                    if not is_out_of_memory(exc) or tile // 2 < MIN_TILE:
                        raise
                    tile //= 2
        finally:
            upscale_model.to(home)


NODE_CLASS_MAPPINGS = {"HermesUpscale": HermesUpscale}
NODE_DISPLAY_NAME_MAPPINGS = {"HermesUpscale": "Upscale Image (HERMES, one context per image)"}
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
