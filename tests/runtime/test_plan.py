"""Tile plans, blend weights and stitching, checked against whole-image results of
local numpy operators (exact references: a local operator computed on overlapping
tiles equals the whole-image result wherever each tile saw enough context)."""

from __future__ import annotations

import numpy as np
import pytest

from hermes_deploy.errors import InputError
from hermes_deploy.runtime.plan import axis_starts, pad_to, plan_tiles
from hermes_deploy.runtime.pipeline import restore_array
from hermes_deploy.runtime.plan import TileOptions
from hermes_deploy.spec import ModelSpec


@pytest.mark.parametrize("length,tile,overlap,m", [(100, 32, 8, 1), (32, 32, 8, 8), (33, 32, 8, 8),
                                                    (7, 32, 8, 16), (1000, 96, 24, 16),
                                                    (97, 16, 0, 1), (300, 64, 16, 16)])
def test_axis_starts_cover_with_aligned_equal_tiles(length, tile, overlap, m):
    starts = axis_starts(length, tile, overlap, m)
    end = -(-length // m) * m
    assert starts[-1] + tile == max(end, tile)  # the last tile ends where the model's pad ends
    covered = np.zeros(starts[-1] + tile, bool)
    for a, b in zip(starts, starts[1:]):
        assert b > a and a + tile - b >= overlap  # neighbours overlap by at least `overlap`
    for s in starts:
        assert 0 <= s < length and s % m == 0  # on the model's grid, inside the image
        covered[s:s + tile] = True
    assert covered[:length].all()


def test_tile_not_larger_than_overlap_is_refused():
    with pytest.raises(InputError, match="must exceed the overlap"):
        axis_starts(100, 16, 16)
    with pytest.raises(InputError, match="size multiple 16"):
        axis_starts(100, 24, 16, 16)
    assert axis_starts(10, 16, 16) == [0]  # a single tile needs no overlap


def test_blend_weights_cover_every_output_pixel():
    plan = plan_tiles(150, 230, (48, 64), overlap=16, scale=2)
    total = np.zeros((2 * plan.padded_h, 2 * plan.padded_w))
    for r, y in enumerate(plan.ys):
        for c, x in enumerate(plan.xs):
            total[2 * y:2 * (y + plan.tile_h), 2 * x:2 * (x + plan.tile_w)] += plan.weights(r, c)
    assert total.min() > 0.5  # some tile always has real weight


def test_pad_to_reflects():
    a = np.arange(6, dtype=np.float32).reshape(2, 3, 1)
    p = pad_to(a, 5, 4)
    assert p.shape == (5, 4, 1)
    np.testing.assert_array_equal(p[:2, :3], a)
    np.testing.assert_array_equal(p[2, :3], a[1, :, ])  # symmetric: the edge row repeats


class LocalOpRunner:
    """A real (numpy) model with a known receptive field: a 5x5 box blur, then an
    x``scale`` nearest upscale, with a per-image context added (to check it is fed)."""

    def __init__(self, scale=2, size_multiple=8, tile=None, batch=None):
        self.spec = ModelSpec(scale=scale, in_channels=3, out_channels=3,
                              size_multiple=size_multiple, min_size=1, tile_overlap=8,
                              receptive_radius=2, context_channels=1, precision="fp32",
                              io_dtype="float32", target="portable", opset=18, fidelity=True,
                              tile=tile, batch=batch)
        self.name = "numpy"
        self.calls = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def context(self, images):
        return images.mean(axis=(1, 2, 3))[:, None]

    def infer(self, tiles, context):
        self.calls.append(tiles.shape)
        if self.spec.batch:
            assert tiles.shape[0] == self.spec.batch
        b, c, h, w = tiles.shape
        p = np.pad(tiles, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="symmetric")
        blur = sum(p[:, :, i:i + h, j:j + w] for i in range(5) for j in range(5)) / 25.0
        blur = blur + context[:, :, None, None]
        s = self.spec.scale
        return blur.repeat(s, axis=2).repeat(s, axis=3).astype(np.float32)


def _whole(runner, image):
    x = image.transpose(2, 0, 1)[None]
    return runner.infer(x, runner.context(x))[0].transpose(1, 2, 0)


@pytest.mark.parametrize("shape,tile,batch,scale", [((77, 130), (32, 32), 1, 2),
                                                   ((64, 64), (32, 48), 3, 3),
                                                   ((20, 13), (32, 32), 2, 2),
                                                   ((131, 61), (40, 24), 4, 1)])
def test_tiled_equals_whole_image_for_a_local_operator(rng, shape, tile, batch, scale):
    image = rng.random((*shape, 3), dtype=np.float32)
    runner = LocalOpRunner(scale=scale)
    out, stats = restore_array(runner, image, TileOptions(tile=tile, overlap=8, batch=batch))
    ref = _whole(runner, image)
    assert out.shape == ref.shape == (scale * shape[0], scale * shape[1], 3)
    # the margins hide each tile's border error (radius 2 < overlap // 4 = 2 + ramp)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert stats.tiles == stats.grid[0] * stats.grid[1]


def test_static_tile_and_batch_are_respected(rng):
    image = rng.random((70, 90, 3), dtype=np.float32)
    runner = LocalOpRunner(tile=(32, 32), batch=4)
    out, stats = restore_array(runner, image, TileOptions(overlap=8))
    assert all(shape == (4, 3, 32, 32) for shape in runner.calls)
    np.testing.assert_allclose(out, _whole(LocalOpRunner(), image), atol=1e-5)
    with pytest.raises(InputError, match="fixed tile 32x32"):
        restore_array(runner, image, TileOptions(tile=(64, 64), overlap=8))


def test_overlap_must_fit_the_tile(rng):
    with pytest.raises(InputError, match="overlap 40 must be smaller"):
        restore_array(LocalOpRunner(), rng.random((64, 64, 3), dtype=np.float32),
                      TileOptions(tile=(32, 32), overlap=40))


class OutOfMemoryAbove(LocalOpRunner):
    """Raises MemoryError (what onnxruntime/torch report as an allocation failure) for
    calls larger than ``limit`` pixels: GPU memory exhaustion cannot happen on CPU CI."""

    def __init__(self, limit, **kw):
        super().__init__(**kw)
        self.limit = limit

    def infer(self, tiles, context):
        if tiles.shape[0] * tiles.shape[2] * tiles.shape[3] > self.limit:
            raise MemoryError("failed to allocate memory")
        return super().infer(tiles, context)


def test_out_of_memory_backs_off_to_smaller_batches_and_tiles(rng, tmp_path):
    from PIL import Image

    from hermes_deploy.runtime.pipeline import restore_file

    u8 = (rng.random((90, 100, 3)) * 255).astype(np.uint8)
    Image.fromarray(u8).save(tmp_path / "a.png")
    runner = OutOfMemoryAbove(limit=48 * 48)
    said = []
    result = restore_file(runner, tmp_path / "a.png", tmp_path / "b.png",
                          TileOptions(tile=(64, 64), overlap=8, batch=4), say=said.append)
    assert said and "retrying" in said[0]
    assert result.stats.tile[0] * result.stats.tile[1] <= 48 * 48
    out = np.asarray(Image.open(tmp_path / "b.png"), np.float32) / 255
    ref = np.clip(_whole(LocalOpRunner(), u8.astype(np.float32) / 255), 0, 1)
    assert np.abs(out - ref).max() <= 0.5 / 255 + 1e-5
    with pytest.raises(InputError, match="out of memory even with"):
        restore_file(OutOfMemoryAbove(limit=10), tmp_path / "a.png", tmp_path / "c.png",
                     TileOptions(tile=(64, 64), overlap=8, batch=2))
    assert not (tmp_path / "c.png").exists()
