"""HERMES for spandrel, and through it for ComfyUI and chaiNNer.

>>> from hermes_deploy.spandrel import register
>>> register()                      # HERMES joins spandrel's MAIN_REGISTRY (idempotent)
>>> from spandrel import ModelLoader
>>> model = ModelLoader().load_from_file("hermes-x2.safetensors")   # or a .pth
>>> out = model(image)              # (1, 3, H, W) in [0, 1] -> (1, 3, 2H, 2W)

The descriptor's call computes the per-image context once and tiles inside
(:mod:`.tiling`); :func:`upscale_images` does the same for ComfyUI's IMAGE batches.
Importing this package imports neither torch nor spandrel; :func:`register` needs the
``spandrel`` extra and imports spandrel through :mod:`.compat` (torchvision beside a
CPU torch).
"""

from __future__ import annotations

from typing import Any


def register(registry: Any = None, **options: Any) -> Any:
    """Add HERMES to spandrel's registry (see :func:`.arch.register`)."""
    from .arch import register as add

    return add(registry, **options)


def upscale_images(model: Any, images: Any, tile: int | None = None) -> Any:
    """ComfyUI ``IMAGE`` (B, H, W, C) float in [0, 1] -> (B, sH, sW, C) in [0, 1].

    ``model``: a spandrel descriptor of a HERMES checkpoint (or a ``Hermes``). Each image
    gets its own context, computed once on the whole image, and is tiled inside
    (``tile`` input pixels, default 256), on the model's device and dtype; the result
    comes back on the images' device and dtype.
    """
    import torch

    from ..errors import InputError
    from ..model.network import Hermes
    from .tiling import TILE, tiled_upscale

    net = getattr(model, "model", model)
    if not isinstance(net, Hermes):
        raise InputError(f"this node runs HERMES models, got {type(net).__name__}; use ComfyUI's "
                         "'Upscale Image (using Model)' node for other upscale models")
    if images.dim() != 4 or images.shape[-1] != net.config.in_channels:
        raise InputError(f"expected a (batch, height, width, {net.config.in_channels}) IMAGE, got "
                         f"{tuple(images.shape)}")
    param = next(net.parameters())
    out = []
    with torch.inference_mode():  # as ComfyUI runs its nodes (the result is an inference tensor)
        for image in images:  # one at a time: one context each, one image's memory
            x = image.movedim(-1, 0)[None].to(device=param.device, dtype=param.dtype)
            y = tiled_upscale(net, x, tile=tile or TILE).clamp_(0, 1)
            out.append(y[0].movedim(0, -1).to(device=images.device, dtype=images.dtype))
        return torch.stack(out)


__all__ = ["register", "upscale_images"]
