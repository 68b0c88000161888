"""Bundled photographs load offline; user image files load in every common format."""

import importlib.util
import socket
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from hermes_deploy.quality import (
    HELDOUT_PHOTOS,
    TRAIN_PHOTOS,
    load_image_file,
    load_photo,
)


# Only the bundled photos need scikit-image; load_image_file tests run without it.
needs_skimage = pytest.mark.skipif(
    importlib.util.find_spec("skimage") is None, reason="scikit-image not installed"
)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    # Patch methods, not the class: modules imported lazily (ssl) subclass socket.socket.
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@needs_skimage
@pytest.mark.parametrize("name", TRAIN_PHOTOS + HELDOUT_PHOTOS)
def test_every_photo_loads_offline(name, no_network):
    img = load_photo(name)
    assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3
    assert min(img.shape[:2]) >= 128 and img.flags.c_contiguous
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert img.max() - img.min() > 0.5  # a real photo, not a blank or mis-scaled array


@needs_skimage
def test_split_is_disjoint_in_names_and_content():
    assert len(HELDOUT_PHOTOS) >= 3 and len(TRAIN_PHOTOS) >= 3
    assert not set(TRAIN_PHOTOS) & set(HELDOUT_PHOTOS)
    assert len(set(TRAIN_PHOTOS)) == len(TRAIN_PHOTOS)
    # Aliases (e.g. skimage's cat == chelsea) would share shape and pixels.
    held = {name: load_photo(name) for name in HELDOUT_PHOTOS}
    for name in TRAIN_PHOTOS:
        img = load_photo(name)
        for other, ref in held.items():
            assert not (img.shape == ref.shape and np.allclose(img, ref, atol=0.05)), (name, other)


@needs_skimage
def test_heldout_photos_are_colour():
    for name in HELDOUT_PHOTOS:
        img = load_photo(name)
        assert np.abs(img[..., 0] - img[..., 2]).mean() > 0.02, name


@needs_skimage
def test_gray_photo_is_replicated():
    img = load_photo("camera")
    assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2])


def test_unknown_photo_lists_known_names():
    with pytest.raises(ValueError, match="unknown photo 'lena'.*astronaut"):
        load_photo("lena")


def test_load_8bit_rgb_and_rgba(tmp_path):
    rgba = np.random.default_rng(0).integers(0, 256, (9, 13, 4), dtype=np.uint8)
    Image.fromarray(rgba[..., :3]).save(tmp_path / "rgb.png")
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    for name in ("rgb.png", "rgba.png"):
        img = load_image_file(tmp_path / name)
        assert img.dtype == np.float32 and img.shape == (9, 13, 3)
        assert np.allclose(img, rgba[..., :3] / 255.0, atol=1e-7)


def test_load_8bit_gray_and_palette(tmp_path):
    gray = np.random.default_rng(1).integers(0, 256, (7, 5), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    img = load_image_file(str(tmp_path / "gray.png"))
    assert img.shape == (7, 5, 3) and np.allclose(img, (gray / 255.0)[..., None], atol=1e-7)
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:, 3:] = (200, 30, 90)
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=2)
    pal.save(tmp_path / "pal.png")
    assert Image.open(tmp_path / "pal.png").mode == "P"
    assert np.allclose(load_image_file(tmp_path / "pal.png"), rgb / 255.0, atol=1e-7)


def test_load_16bit_gray_full_precision(tmp_path):
    gray = np.random.default_rng(2).integers(0, 65536, (6, 8), dtype=np.uint16)
    Image.fromarray(gray).save(tmp_path / "g16.png")
    img = load_image_file(tmp_path / "g16.png")
    assert img.shape == (6, 8, 3)
    assert np.allclose(img, (gray / 65535.0)[..., None], atol=1e-7)


def _write_png16_rgb(path, arr):
    # Minimal PNG encoder (filter 0 on every row): Pillow cannot write 48-bit RGB.
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def test_load_16bit_rgb_within_8bit_precision(tmp_path):
    rgb = np.random.default_rng(3).integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    _write_png16_rgb(tmp_path / "rgb16.png", rgb)
    img = load_image_file(tmp_path / "rgb16.png")
    assert img.shape == (5, 7, 3)
    # Pillow decodes 16-bit colour to 8 bits, so only 1/255 precision survives.
    assert np.abs(img - rgb / 65535.0).max() <= 1 / 255 + 1e-6


def test_exif_orientation_is_applied(tmp_path):
    gray = (np.arange(6, dtype=np.uint8).reshape(2, 3) * 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(gray).save(tmp_path / "rot.png", exif=exif.tobytes())
    img = load_image_file(tmp_path / "rot.png")
    assert np.allclose(img[..., 0] * 255, np.rot90(gray, -1), atol=1e-4)


def test_truncated_png_raises_naming_file(tmp_path):
    rgb = np.random.default_rng(4).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    good = tmp_path / "good.png"
    Image.fromarray(rgb).save(good)
    bad = tmp_path / "broken_photo.png"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="broken_photo.png") as info:
        load_image_file(bad)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("content", [b"not an image at all", None])
def test_unreadable_files_raise_naming_file(tmp_path, content):
    path = tmp_path / "user_input.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match="user_input.jpg"):
        load_image_file(path)
