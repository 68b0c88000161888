"""Where tiles go along one image axis, and the size multiple rule: shared by the tiled
runtime and the INT8 calibration reader, so calibration sees exactly the tiles the
runtime will cut. Pure Python (no numpy).
"""

from __future__ import annotations

from .errors import InputError


def round_up(length: int, multiple: int) -> int:
    """``length`` rounded up to a multiple of ``multiple`` (a multiple below 1 counts as 1).

    The one rounding rule of the package: the model pads an image to its size multiple
    by reflection, so tile sizes, grids and padded extents all round up the same way.
    """
    m = max(1, int(multiple))
    return -(-int(length) // m) * m


def axis_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Tile start positions along one axis of ``length`` pixels.

    Starts are multiples of ``multiple`` (the model's size multiple), so the network's
    windows and down-sampling see each tile on the same grid as the whole image, and the
    last tile ends where the whole-image pass ends: at ``length`` rounded up to the
    multiple (the few pixels past the image are the same reflection the model pads the
    whole image with). Steps are spread evenly and never exceed ``tile - overlap``.
    """
    m = max(1, multiple)
    end = round_up(length, m)
    if end <= tile:
        return [0]  # one tile: no neighbour to overlap
    step = (tile - overlap) // m  # in units of m
    if tile <= overlap or step < 1:
        raise InputError(f"tile {tile} must exceed the overlap {overlap} by at least the "
                         f"model's size multiple {m}; raise --tile or lower --overlap")
    units = (end - tile) // m
    n = -(-units // step)  # number of steps
    return [(i * units // n) * m for i in range(n)] + [end - tile]
