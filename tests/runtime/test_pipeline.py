"""Tiled inference of the shipped default model (onnxruntime) against the whole image."""

from __future__ import annotations

import numpy as np
import pytest

from hermes_deploy.quality.degrade import bicubic_down
from hermes_deploy.quality.photos import load_photo
from hermes_deploy.runtime.pipeline import image_context, restore_array
from hermes_deploy.runtime.plan import TileOptions, make_plan


def _psnr(a, b):
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(1.0 / mse)


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


@pytest.fixture(scope="module")
def photo_case(default_runner):
    image = np.ascontiguousarray(bicubic_down(load_photo("astronaut"), 2)[:208, :224])
    x = image.transpose(2, 0, 1)[None]
    whole = default_runner.infer(x, image_context(default_runner, image))[0].transpose(1, 2, 0)
    return image, whole


def test_tiled_matches_whole_image_and_has_no_seams(default_runner, photo_case):
    image, whole = photo_case
    options = TileOptions(tile=(64, 64), batch=4)  # default overlap from the ModelSpec
    out, stats = restore_array(default_runner, image, options)
    assert stats.grid[0] >= 4 and stats.grid[1] >= 4
    assert np.isfinite(out).all()
    psnr = _psnr(out, whole)
    assert psnr >= 45.0, f"tiled vs whole-image PSNR {psnr:.2f} dB"
    across, elsewhere = seam_gradients(out, make_plan(default_runner.spec, *image.shape[:2], options))
    assert abs(across / elsewhere - 1) <= 0.05, (across, elsewhere)


def test_seam_metric_catches_pasted_tiles(default_runner, photo_case):
    """Without overlap (tiles pasted edge to edge, as a plain tile loop does) the same
    measurements fail: the checks above can fail."""
    image, whole = photo_case
    options = TileOptions(tile=(64, 64), overlap=0, batch=4)
    out, _ = restore_array(default_runner, image, options)
    across, elsewhere = seam_gradients(out, make_plan(default_runner.spec, *image.shape[:2], options))
    assert across / elsewhere > 1.05
    assert _psnr(out, whole) < 45.0


@pytest.mark.parametrize("name,size,tile", [("coffee", (200, 300), 64), ("chelsea", (150, 225), 48)])
def test_image_sizes_off_the_model_grid(default_runner, name, size, tile):
    """Sizes that are not multiples of the tile step or of 16: tiles stay on the model's
    16-pixel grid (unaligned tiles measured 28-31 dB here)."""
    image = np.ascontiguousarray(bicubic_down(load_photo(name), 2)[:size[0], :size[1]])
    x = image.transpose(2, 0, 1)[None]
    whole = default_runner.infer(x, image_context(default_runner, image))[0].transpose(1, 2, 0)
    options = TileOptions(tile=(tile, tile), batch=4)
    out, stats = restore_array(default_runner, image, options)
    assert out.shape == whole.shape and stats.grid[0] >= 3 and stats.grid[1] >= 4
    assert _psnr(out, whole) >= 45.0
    # edges: the tiled output's gradient ratio is the whole image's own at those lines
    plan = make_plan(default_runner.spec, *size, options)
    tiled, ref = seam_gradients(out, plan), seam_gradients(whole, plan)
    assert abs(tiled[0] / tiled[1] - ref[0] / ref[1]) <= 0.02
