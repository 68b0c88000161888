"""Tiled inference inside one call, in torch: one context per image, the runtime's grid.

A host that calls a model once per image (spandrel's descriptor call, ComfyUI's nodes)
gets from :func:`tiled_upscale` what ``hermes-export infer`` gives from a file: the
per-image context is computed once on the whole image - on a copy downscaled to
``context_max_side`` when the image is larger, as the runtime's file path does
(``runtime/pipeline.py``: ``ImageSource.whole(options.context_max_side)``) - and every
tile is run with it, so the whole image routes through the experts one way. Tiles are
placed by the runtime's grid (:func:`~hermes_deploy.runtime.plan.plan_tiles`: starts
on the size multiple, the last tile clamped to the image end rounded up to it, the
image padded at the bottom/right by symmetric reflection) and blended with its weights
(:meth:`~hermes_deploy.runtime.plan.TilePlan.row_profile` / ``col_profile``: a
discarded margin, then a linear ramp, separable), computed in torch on the input's
device and dtype.

Memory: one tile at a time through the network, so activations are bounded by the tile
size, plus the input, its padded copy and the output accumulator (the call returns the
whole output, so that much is unavoidable).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..model.network import Hermes
from ..runtime.plan import DEFAULT_TILE, TileOptions, TilePlan, plan_tiles
from ..tile_grid import round_up

TILE = DEFAULT_TILE[0]  # 256 input pixels, the runtime's default
CONTEXT_MAX_SIDE = TileOptions().context_max_side  # 1024, the runtime's default
_OVERLAPS: "weakref.WeakKeyDictionary[Hermes, int]" = weakref.WeakKeyDictionary()


def recommended_overlap(model: Hermes) -> int:
    """The overlap an export records for ``model`` (``describe_model``): the measured 99%
    effective receptive radius rounded up to 8, at least the size multiple. Measured once
    per model object (a second or so for ``tiny`` on a CPU) and kept while it lives."""
    if model not in _OVERLAPS:
        from ..model.stats import effective_receptive_radius

        with torch.inference_mode(False), torch.enable_grad():  # it backpropagates
            radius = effective_receptive_radius(model)
        _OVERLAPS[model] = max(model.config.size_multiple, round_up(radius, 8))
    return _OVERLAPS[model]


def image_context(model: Hermes, image: torch.Tensor, max_side: int = CONTEXT_MAX_SIDE) -> torch.Tensor:
    """(N, K) context of (N, C, H, W) images; a side above ``max_side`` is downscaled
    (bicubic, antialiased) for it, as the runtime does for a file."""
    h, w = image.shape[-2:]
    longest = max(h, w)
    if longest > max_side:
        size = (max(1, round(h * max_side / longest)), max(1, round(w * max_side / longest)))
        image = F.interpolate(image, size=size, mode="bicubic", align_corners=False,
                              antialias=True).clamp(0, 1)
    return model.compute_context(image)


def pad_symmetric(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad (.., H, W) at the bottom/right to (height, width) by symmetric reflection
    (numpy's ``symmetric``, what the runtime pads tiles with; any length, 1-pixel sides
    included)."""
    for dim, size in ((-2, height), (-1, width)):
        n = x.shape[dim]
        if size > n:
            idx = torch.arange(size, device=x.device) % (2 * n)
            x = x.index_select(dim, torch.where(idx < n, idx, 2 * n - 1 - idx))
    return x


def tile_plan(model: Hermes, height: int, width: int, tile: int, overlap: int) -> TilePlan:
    """The runtime's plan (``make_plan`` for a dynamic-shape model) of one image."""
    m = model.config.size_multiple
    tiles = (min(tile, round_up(height, m)), min(tile, round_up(width, m)))
    return plan_tiles(height, width, tiles, overlap, model.config.scale, m)


def _profiles(plan: TilePlan, rows: bool, like: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per-tile 1-D weights along one axis and their sum over the padded axis."""
    s = plan.scale
    starts, size = (plan.ys, plan.tile_h) if rows else (plan.xs, plan.tile_w)
    profile = plan.row_profile if rows else plan.col_profile
    weights = [torch.from_numpy(profile(i)).to(device=like.device, dtype=like.dtype)
               for i in range(len(starts))]
    total = torch.zeros(s * (starts[-1] + size), device=like.device, dtype=like.dtype)
    for start, wt in zip(starts, weights):
        total[s * start:s * (start + size)] += wt
    return weights, total


def tiled_forward(model: Hermes, image: torch.Tensor, context: torch.Tensor, tile: int,
                  overlap: int, on_tile=None) -> torch.Tensor:
    """``model(image, context)`` computed tile by tile; ``on_tile(tile_input)`` is told
    of each tile before it runs (tests count them)."""
    n, _, h, w = image.shape
    plan = tile_plan(model, h, w, tile, overlap)
    if plan.count == 1:  # the runtime pads one tile to the multiple: so does the model
        if on_tile is not None:
            on_tile(image)
        return model(image, context=context)
    s, th, tw = plan.scale, plan.tile_h, plan.tile_w
    padded = pad_symmetric(image, plan.padded_h, plan.padded_w)
    wy, sum_y = _profiles(plan, True, image)
    wx, sum_x = _profiles(plan, False, image)
    out = None
    for r, y in enumerate(plan.ys):
        for c, x in enumerate(plan.xs):
            piece = padded[..., y:y + th, x:x + tw]
            if on_tile is not None:
                on_tile(piece)
            result = model(piece, context=context)
            if out is None:
                out = image.new_zeros(n, result.shape[1], s * plan.padded_h, s * plan.padded_w)
            out[..., s * y:s * (y + th), s * x:s * (x + tw)] += result * (wy[r][:, None] * wx[c][None, :])
            del result
    out /= sum_y[:, None] * sum_x[None, :]
    return out[..., :s * h, :s * w]


@dataclass
class TiledCall:
    """The descriptor's ``call_fn``: ``(model, image) -> output``, tiled inside.

    ``overlap`` None: the model's recommended overlap (:func:`recommended_overlap`),
    measured on the first image that needs more than one tile.
    """

    tile: int = TILE
    overlap: int | None = None
    context_max_side: int = CONTEXT_MAX_SIDE

    def __call__(self, model: Hermes, image: torch.Tensor, on_tile=None) -> torch.Tensor:
        h, w = image.shape[-2:]
        if tile_plan(model, h, w, self.tile, 0).count == 1:
            overlap = 0  # one tile: no neighbour to overlap
        else:
            overlap = recommended_overlap(model) if self.overlap is None else self.overlap
        context = image_context(model, image, self.context_max_side)
        return tiled_forward(model, image, context, self.tile, overlap, on_tile)


def tiled_upscale(model: Hermes, image: torch.Tensor, tile: int = TILE, overlap: int | None = None,
                  context_max_side: int = CONTEXT_MAX_SIDE, on_tile=None) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> (N, C, sH, sW), one context per image, tiled inside
    (not clamped: spandrel's descriptor clamps what its call returns)."""
    if model.training:
        model.eval()
    with torch.inference_mode():
        return TiledCall(tile, overlap, context_max_side)(model, image, on_tile)
