"""TileReader: runtime tiles of the degraded images, seeded, rewindable, distinct batches.

References are computed independently here (the bicubic downscale of the whole photo,
the context of the whole image, the grid formula); no onnxruntime needed.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hermes_deploy.calibration import TileReader, load_calibration_images, tile_grid
from hermes_deploy.errors import InputError
from hermes_deploy.quality import HELDOUT_PHOTOS, TRAIN_PHOTOS, bicubic_down, load_photo, mod_crop

PHOTOS = ("camera", "coins")


def mean_std_context(x: np.ndarray) -> np.ndarray:
    """A whole-image statistic standing in for the context graph: (1,C,H,W) -> (1,2C)."""
    return np.concatenate([x.mean(axis=(2, 3)), x.std(axis=(2, 3))], axis=1)


@pytest.fixture(scope="module")
def images():
    return load_calibration_images(list(PHOTOS))


def make(images, **kw):
    args = dict(tile=(32, 40), samples=12, batch=3, scale=2, seed=0)
    args.update(kw)
    return TileReader(images, mean_std_context, **args)


def test_default_images_are_the_training_photos_not_the_held_out_ones():
    names = [n for n, _ in load_calibration_images(None)]
    assert names == list(TRAIN_PHOTOS)
    assert set(names).isdisjoint(HELDOUT_PHOTOS)


def test_batches_differ_and_have_the_runtime_shapes(images):
    r = make(images)
    batches = list(r)
    assert len(batches) == len(r) == 4
    for b in batches:
        assert b["input"].shape == (3, 3, 32, 40) and b["input"].dtype == np.float32
        assert b["context"].shape == (3, 6)
    flat = [b["input"].tobytes() for b in batches]
    assert len(set(flat)) == len(flat), "two batches are identical (aliased buffers?)"
    tiles = [t.tobytes() for b in batches for t in b["input"]]
    assert len(set(tiles)) == len(tiles), "a tile repeats before the grids are used up"
    # the two images take turns: both are sampled
    assert {k for k, _, _ in r.plan} == {0, 1}


def test_rewind_and_seed_reproduce_the_stream(images):
    r = make(images)
    first = []
    while (b := r.get_next()) is not None:
        first.append(b)
    assert r.get_next() is None
    r.rewind()
    again = [r.get_next() for _ in range(len(first))]
    same_seed = list(make(images))
    other_seed = list(make(images, seed=1))
    for a, b, c in zip(first, again, same_seed):
        np.testing.assert_array_equal(a["input"], b["input"])
        np.testing.assert_array_equal(a["input"], c["input"])
        np.testing.assert_array_equal(a["context"], c["context"])
    assert any(not np.array_equal(a["input"], d["input"]) for a, d in zip(first, other_seed))
    # batches handed out earlier are not overwritten by later ones
    first[0]["input"][:] = -1
    r.rewind()
    assert r.get_next()["input"].min() >= 0


def test_tiles_are_crops_of_the_bicubic_downscale_with_whole_image_context(images):
    r = make(images, samples=6, batch=2)
    for i, (feed, gt) in enumerate(r.pairs()):
        for j in range(2):
            k, top, left = r.plan[i * 2 + j]
            name, photo = images[k]
            lq = bicubic_down(photo, 2)  # the quality harness' SR input, computed here again
            expect = lq[top:top + 32, left:left + 40].transpose(2, 0, 1)
            np.testing.assert_array_equal(feed["input"][j], expect)
            ctx = mean_std_context(lq.transpose(2, 0, 1)[None])[0]
            np.testing.assert_allclose(feed["context"][j], ctx, rtol=1e-5)
            hr = mod_crop(photo, 2)[2 * top:2 * top + 64, 2 * left:2 * left + 80].transpose(2, 0, 1)
            np.testing.assert_array_equal(gt[j], hr)


def test_tile_grid_is_the_runtime_grid():
    from hermes_deploy.runtime.plan import plan_tiles

    plan = plan_tiles(100, 70, (32, 32), overlap=8, scale=2, size_multiple=8)
    grid = tile_grid(100, 70, (32, 32), overlap=8, multiple=8)
    assert grid == [(t, l) for t in plan.ys for l in plan.xs]
    assert all(t % 8 == 0 and l % 8 == 0 for t, l in grid)
    grid = tile_grid(100, 70, (32, 32), overlap=8)
    tops, lefts = sorted({t for t, _ in grid}), sorted({l for _, l in grid})
    assert tops[-1] == 68 and lefts[-1] == 38  # multiple 1: the last tiles end at the border
    covered = np.zeros((100, 70), bool)
    for t, l in grid:
        covered[t:t + 32, l:l + 32] = True
    assert covered.all()
    assert tile_grid(20, 70, (32, 32)) == []
    with pytest.raises(InputError, match="overlap"):
        tile_grid(100, 100, (32, 32), overlap=32)


def test_scale_one_uses_the_images_as_inputs(images):
    r = TileReader(images[:1], None, tile=(48, 48), samples=2, batch=1, scale=1, seed=3)
    feed = r.get_next()
    assert set(feed) == {"input"}
    _, top, left = r.plan[0]
    np.testing.assert_array_equal(feed["input"][0], images[0][1][top:top + 48, left:left + 48].transpose(2, 0, 1))


def test_folder_of_files_and_errors(tmp_path):
    photo = load_photo("coins")[:120, :160]
    Image.fromarray((photo * 255).round().astype(np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    loaded = load_calibration_images(str(tmp_path))
    assert [n for n, _ in loaded] == ["a.png"]
    r = TileReader(loaded, None, tile=(32, 32), samples=4, scale=2)
    assert r.describe()["images"] == ["a.png"] and r.describe()["tiles"] == 4
    with pytest.raises(InputError, match="at least 64x64"):
        TileReader(loaded, None, tile=(64, 64), samples=4, scale=2)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no images"):
        load_calibration_images(str(empty))
    with pytest.raises(InputError, match="neither"):
        load_calibration_images(["no-such-photo"])
