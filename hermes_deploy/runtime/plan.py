"""Tile planning and blend weights (numpy only): tile options, the plan of one image.

Every tile of an image has the same shape, so static engines and batching work. Tiles
start on multiples of the model's size multiple, spread evenly with neighbours
overlapping by at least ``overlap``; the last tile of a row or column is clamped to the
image end rounded up to the multiple, which is where the whole-image pass ends too
(the model pads the image to its multiple by reflection; the runtime pads the same
way). An image smaller than one tile is padded by reflection and cropped back. Both
rules matter on this network: window attention and down-sampling make it equivariant
only to shifts by its size multiple (unaligned tiles measured 28-31 dB against the
whole image), and it treats an image border differently from reflected content
(padding a tile far past the border measured 35 dB). An image side
shorter than the tile is padded up to the tile by edge reflection and cropped back.

Blending: a tile's output is least trustworthy near an edge it shares with a
neighbour, because the network saw no context beyond it. Each tile therefore gets a
separable weight that is 0 over a ``margin`` next to every interior edge, rises
linearly over a ``ramp``, and is 1 elsewhere; edges on the image border keep weight 1.
The output is the weighted sum divided by the sum of weights. With ``margin + ramp +
margin <= overlap`` some tile always has positive weight, and the discarded margins
hide the edge error while the ramp hides any remaining step (feathered blending, as
in chaiNNer's and vs-mlrt's overlap handling, with vs-mlrt's crop of the unreliable
border added in front of the ramp).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..tile_grid import axis_starts, round_up

DEFAULT_TILE = (256, 256)


@dataclass(frozen=True)
class TileOptions:
    tile: tuple[int, int] = DEFAULT_TILE  # input pixels; a static graph's own tile wins
    overlap: int | None = None  # input pixels; None = the model's recommended overlap
    batch: int = 1
    context_max_side: int = 1024  # larger images get their context from a downscaled copy
    progress: bool = False

    def __post_init__(self) -> None:
        # named by the CLI flags that set them: these values reach here from the shell
        if len(self.tile) != 2 or min(self.tile) < 1:
            raise InputError(f"--tile must be positive, got {'x'.join(map(str, self.tile))}")
        if self.overlap is not None and self.overlap < 0:
            raise InputError(f"--overlap must be 0 or more input pixels, got {self.overlap}")
        if self.batch < 1:
            raise InputError(f"--batch must be 1 or more, got {self.batch}")
        if self.context_max_side < 1:
            raise InputError(f"--context-size must be 1 or more pixels, got "
                             f"{self.context_max_side}")


def blend_profile(tile: int, scale: int, lead: bool, trail: bool, overlap: int) -> np.ndarray:
    """1-D output-space weights of one tile; ``lead``/``trail``: the edge is interior."""
    n = tile * scale
    w = np.ones(n, np.float32)
    margin = overlap // 4
    ramp = max(1, overlap - 2 * margin)
    # position of each output pixel in input pixels, measured from the edge
    d = (np.arange(n, dtype=np.float32) + 0.5) / scale
    edge = np.clip((d - margin) / ramp, 0.0, 1.0)
    if lead:
        w = np.minimum(w, edge)
    if trail:
        w = np.minimum(w, edge[::-1])
    return w


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one image go; all tiles are ``tile_h x tile_w`` input pixels."""

    height: int  # image size (input pixels)
    width: int
    tile_h: int
    tile_w: int
    overlap: int
    scale: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @property
    def padded_h(self) -> int:
        return self.ys[-1] + self.tile_h

    @property
    def padded_w(self) -> int:
        return self.xs[-1] + self.tile_w

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)

    def row_profile(self, row: int) -> np.ndarray:
        """(s*tile_h,) vertical blend weights of the tiles in tile row ``row``."""
        return blend_profile(self.tile_h, self.scale, row > 0, row < len(self.ys) - 1, self.overlap)

    def col_profile(self, col: int) -> np.ndarray:
        """(s*tile_w,) horizontal blend weights of the tiles in tile column ``col``."""
        return blend_profile(self.tile_w, self.scale, col > 0, col < len(self.xs) - 1, self.overlap)

    def weights(self, row: int, col: int) -> np.ndarray:
        """(s*tile_h, s*tile_w) blend weights of tile (row, col) in output pixels."""
        return self.row_profile(row)[:, None] * self.col_profile(col)[None, :]


def plan_tiles(height: int, width: int, tile: tuple[int, int], overlap: int, scale: int,
               size_multiple: int = 1) -> TilePlan:
    """Plan tiles for an image; ``tile`` is rounded up to the size multiple."""
    if height < 1 or width < 1:
        raise InputError(f"image has no pixels ({width}x{height})")
    m = max(1, size_multiple)
    th, tw = (round_up(t, m) for t in tile)
    if overlap < 0:
        raise InputError(f"overlap must be >= 0, got {overlap}")
    return TilePlan(height=height, width=width, tile_h=th, tile_w=tw, overlap=overlap,
                    scale=scale, ys=tuple(axis_starts(height, th, overlap, m)),
                    xs=tuple(axis_starts(width, tw, overlap, m)))


def pad_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad an (H, W, C) array at the bottom/right up to (height, width) by reflection."""
    h, w = image.shape[:2]
    if h >= height and w >= width:
        return image
    ph, pw = max(0, height - h), max(0, width - w)
    mode = "symmetric"  # works for any pad length, unlike "reflect" on 1-pixel images
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)

def make_plan(spec, height: int, width: int, options: TileOptions) -> TilePlan:
    overlap = spec.tile_overlap if options.overlap is None else options.overlap
    if spec.tile is not None:
        if tuple(options.tile) != DEFAULT_TILE and tuple(options.tile) != tuple(spec.tile):
            raise InputError(f"this model has a fixed tile {spec.tile[0]}x{spec.tile[1]}; "
                             f"drop --tile or re-export with --tile "
                             f"{options.tile[0]}x{options.tile[1]}")
        tile = tuple(spec.tile)
    else:
        # a side shorter than the tile gets a shorter tile (less padding to compute)
        tile = (min(options.tile[0], round_up(height, spec.size_multiple)),
                min(options.tile[1], round_up(width, spec.size_multiple)))
    if min(tile) < 1:
        raise InputError(f"tile must be positive, got {tile}")
    if (height > tile[0] and overlap >= tile[0]) or (width > tile[1] and overlap >= tile[1]):
        raise InputError(f"overlap {overlap} must be smaller than the tile {tile[0]}x{tile[1]}; "
                         "raise --tile or lower --overlap")
    return plan_tiles(height, width, tile, overlap, spec.scale, spec.size_multiple)


def check_options(spec, options: TileOptions) -> None:
    """Refuse tile settings that cannot work for an image larger than one tile, before a
    batch starts, naming the values as the user gave them (see :func:`axis_starts`: a
    tile, rounded up to the size multiple, must exceed the overlap by that multiple)."""
    m = max(1, spec.size_multiple)
    overlap = spec.tile_overlap if options.overlap is None else options.overlap
    said_overlap = (f"--overlap {overlap}" if options.overlap is not None
                    else f"the model's recommended overlap of {overlap}px (set --overlap to change it)")
    if spec.tile is not None:
        make_plan(spec, *spec.tile, options)  # refuses a --tile other than the graph's own
        tile, said_tile = tuple(spec.tile), f"this graph's fixed tile {spec.tile[0]}x{spec.tile[1]}"
    else:
        tile = tuple(options.tile)
        said_tile = f"--tile {tile[0]}x{tile[1]}"
    rounded = tuple(round_up(t, m) for t in tile)
    if rounded != tile:
        said_tile += f" (rounded up to {rounded[0]}x{rounded[1]}, the model's size multiple is {m})"
    if min(rounded) - overlap < m:
        most = min(rounded) - m
        fix = f"--overlap {most} or less" if most else "--overlap 0"
        if spec.tile is None:
            fix = f"--tile {round_up(overlap + m, m)} or more, or {fix}"
        raise InputError(f"{said_tile} leaves no room for {said_overlap}: a tile must exceed the "
                         f"overlap by at least {m}px; use {fix}")
