"""The stitcher against a dense float64 reference: every tile gets its own random
output, so any weight, carry or column mistake shows (a smooth operator would hide
one: every convex blend of equal values is the same value)."""

from __future__ import annotations

import numpy as np
import pytest

from hermes_deploy.runtime.images import Samples, from_float
from hermes_deploy.runtime.plan import plan_tiles
from hermes_deploy.runtime.stitch import Stitcher, stitched


def _tiles(rng, plan, channels=3):
    s = plan.scale
    return {(r, c): rng.random((s * plan.tile_h, s * plan.tile_w, channels)).astype(np.float32)
            for r in range(len(plan.ys)) for c in range(len(plan.xs))}


def _dense(plan, tiles, channels=3):
    """sum(w * out) / sum(w) over the whole padded output, in float64, then cropped."""
    s = plan.scale
    acc = np.zeros((s * plan.padded_h, s * plan.padded_w, channels))
    wsum = np.zeros((s * plan.padded_h, s * plan.padded_w, 1))
    for (r, c), out in tiles.items():
        y, x = s * plan.ys[r], s * plan.xs[c]
        w = plan.weights(r, c).astype(np.float64)[:, :, None]
        acc[y:y + out.shape[0], x:x + out.shape[1]] += w * out
        wsum[y:y + out.shape[0], x:x + out.shape[1]] += w
    return (acc / wsum)[: s * plan.height, : s * plan.width]


def _run(plan, tiles, samples=None, strip=None):
    st = Stitcher(plan, 3, samples)
    if strip:
        st.STRIP = strip
    got = []
    for r in range(len(plan.ys)):
        for c in range(len(plan.xs)):
            st.add(r, c, tiles[(r, c)])
        got += [rows.copy() for rows in st.finish_row(r)]  # views of a reused buffer
    return np.concatenate(got)


# (height, width, tile, overlap, scale): one tile; one row; one column; short last
# steps on both axes; a step smaller than the overlap zone (three tile rows touch some
# rows); no overlap at all; scale 1 and 4
PLANS = [(40, 40, (48, 48), 16, 2), (50, 300, (64, 64), 16, 2), (300, 50, (64, 64), 16, 2),
         (150, 230, (48, 64), 16, 2), (100, 100, (40, 40), 30, 2), (96, 96, (32, 32), 0, 2),
         (77, 61, (32, 24), 8, 1), (70, 90, (32, 32), 12, 4)]


@pytest.mark.parametrize("height,width,tile,overlap,scale", PLANS)
def test_stitched_rows_equal_the_dense_blend(rng, height, width, tile, overlap, scale):
    plan = plan_tiles(height, width, tile, overlap, scale)
    tiles = _tiles(rng, plan)
    ref = _dense(plan, tiles)
    got = _run(plan, tiles, strip=7)
    assert got.shape == ref.shape == (scale * height, scale * width, 3)
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-6)


@pytest.mark.parametrize("depth,channels", [(8, 3), (16, 3), (8, 1)])
def test_samples_are_rounded_as_from_float_rounds_the_blend(rng, depth, channels):
    plan = plan_tiles(150, 230, (48, 64), 16, 2)
    tiles = _tiles(rng, plan)
    for t in tiles.values():  # outside [0, 1] too: the conversion clips
        t *= 1.2
        t -= 0.1
    ref = from_float(_dense(plan, tiles).astype(np.float32), depth, channels)
    got = _run(plan, tiles, Samples(depth, channels))
    assert got.dtype == ref.dtype and got.shape == ref.shape
    # float32 vs float64 blending may round a sample that sits on .5 the other way
    assert np.abs(got.astype(np.int64) - ref.astype(np.int64)).max() <= 1
    assert np.mean(got != ref) < 1e-3


def test_stitched_takes_batches_in_plan_order(rng):
    plan = plan_tiles(150, 230, (48, 64), 16, 2)
    tiles = _tiles(rng, plan)
    keys = sorted(tiles)
    batches = [(keys[i:i + 3], np.stack([tiles[k].transpose(2, 0, 1) for k in keys[i:i + 3]]))
               for i in range(0, len(keys), 3)]
    got = np.concatenate([rows.copy() for rows in stitched(plan, 3, iter(batches))])
    np.testing.assert_allclose(got, _dense(plan, tiles), rtol=0, atol=2e-6)


def test_memory_is_one_row_of_finished_samples_plus_overlap_strips():
    plan = plan_tiles(8192, 8192, (256, 256), 16, 2)
    st = Stitcher(plan, 3, Samples(8, 3))
    floats = st._carry.nbytes + sum(w.nbytes for w in st._wins)
    assert st._done.dtype == np.uint8
    assert st._done.nbytes <= 2 * 256 * 2 * 8192 * 3
    assert floats < 2 * 256 * 2 * 8192 * 3 * 4 / 4  # a quarter of a float32 band
