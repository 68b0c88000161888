"""Image files through the runtime: bit depth, grey, alpha, EXIF orientation, ICC,
formats; and bad inputs (one-line errors, the batch goes on, no partial outputs)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hermes_deploy.errors import InputError
from hermes_deploy.quality.degrade import bicubic_down
from hermes_deploy.quality.photos import load_photo
from hermes_deploy.runtime.batch import run_batch
from hermes_deploy.runtime.images import ImageSource, OutputError
from hermes_deploy.runtime.pipeline import restore_array, restore_file
from hermes_deploy.runtime.plan import TileOptions

OPTS = TileOptions(tile=(32, 32), batch=4)


@pytest.fixture(scope="module")
def small_photo():
    return np.ascontiguousarray(bicubic_down(load_photo("chelsea"), 4)[:40, :56])


def _u8(x):
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def _load(path):
    with Image.open(path) as im:
        return np.asarray(im), im.mode, im.info


def _reference(runner, image_f32):
    out, _ = restore_array(runner, image_f32, OPTS)
    return np.clip(out, 0, 1)


def test_rgb_png_matches_in_memory_tiling(default_runner, small_photo, tmp_path):
    u8 = _u8(small_photo)
    Image.fromarray(u8).save(tmp_path / "a.png")
    restore_file(default_runner, tmp_path / "a.png", tmp_path / "out.png", OPTS)
    out, mode, _ = _load(tmp_path / "out.png")
    ref = _reference(default_runner, u8.astype(np.float32) / 255)
    assert mode == "RGB" and out.shape == (80, 112, 3)
    assert np.abs(out / 255.0 - ref).max() <= 0.5 / 255 + 1e-6  # rounding only


def test_sixteen_bit_is_preserved(default_runner, small_photo, tmp_path):
    import tifffile

    u16 = (np.clip(small_photo, 0, 1) * 65535 + 0.5).astype(np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", u16, photometric="rgb")
    restore_file(default_runner, tmp_path / "a.tif", tmp_path / "out.tif", OPTS)
    out = tifffile.imread(tmp_path / "out.tif")
    assert out.dtype == np.uint16 and out.shape == (80, 112, 3)
    ref = _reference(default_runner, u16.astype(np.float32) / 65535)
    assert np.abs(out / 65535.0 - ref).max() <= 0.5 / 65535 + 1e-6
    # and 16-bit precision is real: values are not multiples of 257 (8-bit widened)
    assert np.mean(out % 257 != 0) > 0.5


def test_grey_and_alpha(default_runner, small_photo, tmp_path):
    u8 = _u8(small_photo)
    grey = u8[:, :, 1]
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    alpha = np.tile(np.linspace(0, 255, 56).astype(np.uint8), (40, 1))
    Image.fromarray(np.dstack([u8, alpha]), "RGBA").save(tmp_path / "rgba.png")
    restore_file(default_runner, tmp_path / "g.png", tmp_path / "g_out.png", OPTS)
    restore_file(default_runner, tmp_path / "rgba.png", tmp_path / "rgba_out.png", OPTS)
    g, mode, _ = _load(tmp_path / "g_out.png")
    assert mode == "L" and g.shape == (80, 112)
    raw_g, _ = restore_array(default_runner, np.repeat(grey[:, :, None], 3, 2).astype(np.float32) / 255, OPTS)
    ref_g = np.clip(raw_g.mean(axis=2), 0, 1)  # grey out = mean of the three channels
    assert np.abs(g / 255.0 - ref_g).max() <= 0.5 / 255 + 1e-6
    rgba, mode, _ = _load(tmp_path / "rgba_out.png")
    assert mode == "RGBA" and rgba.shape == (80, 112, 4)
    ref = _reference(default_runner, u8.astype(np.float32) / 255)
    assert np.abs(rgba[:, :, :3] / 255.0 - ref).max() <= 0.5 / 255 + 1e-6  # alpha not fed
    # alpha upscaled on its own: a horizontal ramp stays a ramp at twice the width
    expected = np.asarray(Image.fromarray(alpha).resize((112, 80), Image.BICUBIC), np.float64)
    assert np.abs(rgba[:, :, 3].astype(np.float64) - expected)[:, 4:-4].max() <= 3


def test_exif_orientation_is_applied_and_icc_kept(default_runner, small_photo, tmp_path):
    u8 = _u8(small_photo)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    icc = Image.core.profile_tobytes(Image.core.profile_open(  # a real sRGB profile
        __import__("PIL.ImageCms", fromlist=["x"]).createProfile("sRGB").profile)) \
        if False else _srgb_icc()
    Image.fromarray(u8).save(tmp_path / "r.jpg", exif=exif, icc_profile=icc, quality=98)
    src = ImageSource(tmp_path / "r.jpg")
    assert (src.info.width, src.info.height) == (40, 56)  # rotated
    restore_file(default_runner, tmp_path / "r.jpg", tmp_path / "r_out.png", OPTS)
    out, _, info = _load(tmp_path / "r_out.png")
    assert out.shape == (112, 80, 3)
    assert info.get("icc_profile") == icc
    # the pixels: the model's output on the stored pixels turned 90 degrees clockwise here
    # (the JPEG decoded as stored, without its orientation, by the runtime's own decoder)
    import pyvips

    stored = pyvips.Image.new_from_file(str(tmp_path / "r.jpg")).numpy()
    assert stored.shape == (40, 56, 3)
    ref = _reference(default_runner, np.rot90(stored, -1).astype(np.float32) / 255)
    diff = np.abs(out / 255.0 - ref).max()
    assert diff <= 0.5 / 255 + 1e-6, f"not the model's output on the image turned clockwise (off by {diff:.3f})"
    # the same shape turned the other way, or mirrored, is far off: the check can tell them
    for wrong in (np.rot90(stored, 1), np.rot90(stored, -1)[:, ::-1]):
        ref = _reference(default_runner, np.ascontiguousarray(wrong).astype(np.float32) / 255)
        assert ref.shape == out.shape and np.abs(out / 255.0 - ref).max() > 0.2


def _srgb_icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".tif"])
def test_other_formats_round_trip(default_runner, small_photo, tmp_path, suffix):
    u8 = _u8(small_photo)
    Image.fromarray(u8).save(tmp_path / f"a{suffix}", quality=100)
    result = restore_file(default_runner, tmp_path / f"a{suffix}", tmp_path / f"o{suffix}", OPTS)
    out, _, _ = _load(result.output)
    with Image.open(tmp_path / f"a{suffix}") as im:
        decoded = np.asarray(im.convert("RGB"), np.float32) / 255
    ref = _reference(default_runner, decoded)
    tol = 0.5 / 255 + 1e-6 if suffix == ".tif" else 0.08  # lossy formats: a coarse check
    assert out.shape == (80, 112, 3) and np.abs(out / 255.0 - ref).mean() <= tol


def _bad_inputs(folder: Path, photo) -> dict[str, Path]:
    folder.mkdir()
    Image.fromarray(_u8(photo)).save(folder / "good.png")
    data = (folder / "good.png").read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    Image.fromarray(_u8(photo)).save(folder / "full.jpg", quality=95)
    jpg = bytearray((folder / "full.jpg").read_bytes())
    jpg[200:1200] = os.urandom(1000)  # garbage inside the entropy-coded data
    (folder / "corrupt.jpg").write_bytes(bytes(jpg[: len(jpg) * 2 // 3]))
    (folder / "full.jpg").unlink()
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("this is not an image\n")
    Image.new("RGB", (300, 200)).save(folder / "huge.png")  # over the limit set below
    return {p.name: p for p in folder.iterdir()}


def test_bad_inputs_fail_one_by_one_without_partial_outputs(default_runner, small_photo, tmp_path):
    inputs = _bad_inputs(tmp_path / "in", small_photo)
    out = tmp_path / "out"
    lines = []
    report = run_batch(default_runner, [str(tmp_path / "in")], out, OPTS, max_pixels=50_000,
                       say=lines.append)
    status = {Path(i.source).name: i for i in report.items}
    assert status["good.png"].status == "done"
    for name in ("truncated.png", "corrupt.jpg", "empty.png", "notes.png", "huge.png"):
        item = status[name]
        assert item.status == "failed", name
        assert item.message.startswith(name) and "\n" not in item.message, item.message
    assert "pixel limit" in status["huge.png"].message and "--max-pixels" in status["huge.png"].message
    assert "empty" in status["empty.png"].message
    assert report.failed == 5
    # only complete outputs exist: no partial, temporary or hidden files
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]
    assert set(inputs) >= {"good.png"}


def test_unwritable_output_folder(default_runner, small_photo, tmp_path):
    Image.fromarray(_u8(small_photo)).save(tmp_path / "a.png")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write to output folder"):
        run_batch(default_runner, [str(tmp_path / "a.png")], blocker / "out", OPTS)


def test_existing_outputs_are_skipped_unless_overwrite(default_runner, small_photo, tmp_path):
    Image.fromarray(_u8(small_photo)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"previous")
    report = run_batch(default_runner, [str(tmp_path / "a.png")], out, OPTS)
    assert report.items[0].status == "skipped" and (out / "a.png").read_bytes() == b"previous"
    report = run_batch(default_runner, [str(tmp_path / "a.png")], out, OPTS, overwrite=True)
    assert report.items[0].status == "done"
    assert _load(out / "a.png")[0].shape == (80, 112, 3)


def test_pixel_limit_applies_before_decoding(tmp_path):
    Image.new("RGB", (300, 200)).save(tmp_path / "big.png")
    with pytest.raises(InputError, match="over the pixel limit"):
        ImageSource(tmp_path / "big.png", max_pixels=10_000)
    assert ImageSource(tmp_path / "big.png", max_pixels=None).info.pixels == 60_000


def test_output_never_replaces_its_input(default_runner, small_photo, tmp_path):
    Image.fromarray(_u8(small_photo)).save(tmp_path / "a.png")
    before = (tmp_path / "a.png").read_bytes()
    report = run_batch(default_runner, [str(tmp_path)], tmp_path, OPTS, overwrite=True)
    assert report.items[0].status == "failed" and "replace the input" in report.items[0].message
    assert (tmp_path / "a.png").read_bytes() == before


def test_output_too_large_for_the_format_fails_before_computing(default_runner, tmp_path):
    Image.new("RGB", (8200, 4)).save(tmp_path / "wide.png")
    with pytest.raises(OutputError, match="too large for WEBP"):
        restore_file(default_runner, tmp_path / "wide.png", tmp_path / "wide.webp", OPTS)
    assert list(tmp_path.iterdir()) == [tmp_path / "wide.png"]
