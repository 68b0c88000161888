"""Tiled output against the whole-image output, on crops of real photographs.

The measurement behind README's tiling table (``python benchmarks/bench_runtime.py
tiles``) and ``tests/runtime/test_pipeline.py``, which checks each row. A row's input
is the photograph downscaled 2x (bicubic) and cropped from its top-left corner to the
row's size; "whole" is one pass of the runner over that input with the context of that
input, "tiled" is :func:`restore_array` with the row's tile and the ModelSpec's default
overlap (16 px for the default model), batch 4.

Two figures per row:

- PSNR of the tiled output against the whole-image output (peak 1.0, float outputs,
  no clipping);
- the seam gradient ratio: the mean absolute difference between neighbouring output
  pixels across the lines where tiles meet (where a tile starts and where its
  neighbour ends, both at output scale), over the same mean everywhere else. On the
  whole-image output the same lines give the image content's own ratio; a seam shows as
  a tiled ratio above it (pasting tiles without overlap gives about 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hermes_deploy.quality.metrics import psnr

#: README's rows: (photo, input height, input width, tile)
README_ROWS = (("astronaut", 208, 224, 64), ("astronaut", 256, 256, 48), ("coffee", 200, 300, 64),
               ("chelsea", 150, 225, 48))


@dataclass(frozen=True)
class TiledRow:
    photo: str
    size: tuple[int, int]
    tile: int
    grid: tuple[int, int]  # tile rows x tile columns
    psnr_db: float  # tiled vs whole
    ratio_tiled: float  # seam gradient ratio of the tiled output
    ratio_whole: float  # the same lines of the whole-image output


def seam_gradients(out: np.ndarray, plan) -> tuple[float, float]:
    """Mean |difference| between neighbouring output pixels across tile edges, and
    elsewhere. Tile edges: where each tile starts and where its neighbour ends."""
    s = plan.scale
    gx = np.abs(np.diff(out, axis=1)).mean(axis=(0, 2))  # between column j and j+1
    gy = np.abs(np.diff(out, axis=0)).mean(axis=(1, 2))

    def edges(starts, tile, n):
        found = set()
        for i in range(1, len(starts)):
            for edge in (s * starts[i], s * (starts[i - 1] + tile)):
                if 0 < edge <= n:
                    found.add(edge - 1)
        return sorted(found)

    bx, by = edges(plan.xs, plan.tile_w, gx.size), edges(plan.ys, plan.tile_h, gy.size)
    mx = np.ones(gx.size, bool)
    mx[bx] = False
    my = np.ones(gy.size, bool)
    my[by] = False
    across = (gx[bx].sum() + gy[by].sum()) / (len(bx) + len(by))
    elsewhere = (gx[mx].sum() + gy[my].sum()) / (mx.sum() + my.sum())
    return float(across), float(elsewhere)


def crop(photo: str, h: int, w: int) -> np.ndarray:
    """The bundled photograph downscaled 2x, top-left ``h`` x ``w``, (H, W, 3) float32."""
    from hermes_deploy.quality.degrade import bicubic_down
    from hermes_deploy.quality.photos import load_photo

    return np.ascontiguousarray(bicubic_down(load_photo(photo), 2)[:h, :w])


def whole_image(runner, image: np.ndarray) -> np.ndarray:
    """One pass of ``runner`` over all of ``image`` (its own context), (sH, sW, 3)."""
    from hermes_deploy.runtime.pipeline import image_context

    x = np.ascontiguousarray(image.transpose(2, 0, 1)[None])
    return runner.infer(x, image_context(runner, image))[0].transpose(1, 2, 0)


def measure(runner, photo: str, h: int, w: int, tile: int, batch: int = 4) -> TiledRow:
    """One row of the table (see module doc)."""
    from hermes_deploy.runtime.pipeline import restore_array
    from hermes_deploy.runtime.plan import TileOptions, make_plan

    image = crop(photo, h, w)
    whole = whole_image(runner, image)
    options = TileOptions(tile=(tile, tile), batch=batch)  # default overlap from the ModelSpec
    tiled, stats = restore_array(runner, image, options)
    if tiled.shape != whole.shape:
        raise RuntimeError(f"tiled output {tiled.shape} and whole-image output {whole.shape} differ in shape")
    plan = make_plan(runner.spec, h, w, options)
    across, elsewhere = seam_gradients(tiled, plan)
    ref_across, ref_elsewhere = seam_gradients(whole, plan)
    return TiledRow(photo, (h, w), tile, tuple(stats.grid), psnr(tiled, whole), across / elsewhere,
                    ref_across / ref_elsewhere)


def format_table(rows: list[TiledRow]) -> str:
    """README's markdown table."""
    lines = ["| photo (input size) | tile | grid | PSNR tiled vs whole | edge/elsewhere gradient, tiled (whole) |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.photo} {r.size[0]}x{r.size[1]} | {r.tile} | {r.grid[0]}x{r.grid[1]} | "
                     f"{r.psnr_db:.1f} dB | {r.ratio_tiled:.3f} ({r.ratio_whole:.3f}) |")
    return "\n".join(lines)
