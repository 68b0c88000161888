"""Real photographs for training and evaluation, and a loader for user image files.

Guarantees:

* Every name in ``TRAIN_PHOTOS`` and ``HELDOUT_PHOTOS`` is a photograph bundled inside
  the scikit-image wheel; loading never touches the network (images that
  ``skimage.data`` would fetch with pooch are not listed).
* The two tuples are disjoint, also in content: ``cat`` (an alias of ``chelsea``) and
  ``motorcycle_right`` (the same scene as ``motorcycle_left``) are deliberately absent.
* ``load_photo`` and ``load_image_file`` return C-contiguous float32 HxWx3 in [0, 1]:
  gray is replicated to 3 channels, alpha is dropped, 8-bit values are divided by 255
  and 16-bit values by 65535.
* Failures raise :class:`~hermes_deploy.quality.metrics.InvalidImageError`, a
  ``ValueError``, with a one-line message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import InputError, InvalidImageError
from ..formats import IMAGE_SUFFIXES

__all__ = ["TRAIN_PHOTOS", "HELDOUT_PHOTOS", "load_images", "load_photo", "load_image_file"]

# Held out: the three bundled colour photographs of everyday natural scenes (a person,
# an animal, an object on a table), the content users will actually feed the model.
# Keeping them out of training makes their scores an honest estimate on unseen photos.
HELDOUT_PHOTOS = ("astronaut", "coffee", "chelsea")

# Training: the remaining colour photographs, plus grayscale photographs (replicated to
# RGB) because only two colour natural scenes are left. Left out on purpose:
# hubble_deep_field and retina (mostly black/featureless, JPEG artefacts in the "clean"
# target), clock (already motion-blurred), page and text-like scans, cell and
# microaneurysms (small, out-of-focus microscopy), and synthetic images.
TRAIN_PHOTOS = (
    "rocket",
    "motorcycle_left",
    "immunohistochemistry",
    "camera",
    "coins",
    "moon",
    "grass",
    "gravel",
    "brick",
)


def _skimage_loader(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data  # deferred: skimage is only needed when photos are loaded

        if name == "motorcycle_left":
            return skimage.data.stereo_motorcycle()[0]
        return getattr(skimage.data, name)()

    return load


_LOADERS = {name: _skimage_loader(name) for name in HELDOUT_PHOTOS + TRAIN_PHOTOS}


def _to_float_rgb(arr: np.ndarray, source: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / np.float32(255)
    elif arr.dtype == np.uint16:
        out = arr.astype(np.float32) / np.float32(65535)
    elif arr.dtype == np.bool_:
        out = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.floating):
        out = np.clip(arr.astype(np.float32), 0.0, 1.0)
    else:
        raise InvalidImageError(f"{source}: unsupported pixel type {arr.dtype}")
    if out.ndim == 3 and out.shape[2] in (2, 4):
        out = out[:, :, :-1]  # drop alpha
    if out.ndim == 3 and out.shape[2] == 1:
        out = out[:, :, 0]
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    if out.ndim != 3 or out.shape[2] != 3:
        raise InvalidImageError(
            f"{source}: expected a gray or RGB image, received shape {arr.shape}"
        )
    return np.ascontiguousarray(out)


def load_photo(name: str) -> np.ndarray:
    """A bundled photograph as float32 HxWx3 in [0, 1]."""
    loader = _LOADERS.get(name)
    if loader is None:
        known = ", ".join(sorted(_LOADERS))
        raise InvalidImageError(f"unknown photo {name!r}; known photos: {known}")
    return _to_float_rgb(np.asarray(loader()), f"photo {name!r}")


def load_image_file(path: str | os.PathLike) -> np.ndarray:
    """Read an image file with Pillow as float32 HxWx3 in [0, 1], EXIF orientation applied.

    Reads the first frame. Gray, palette, alpha and CMYK images are converted; 16-bit
    grayscale keeps full precision, but Pillow decodes 16-bit colour PNGs to 8 bits.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
            if im.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
                arr = np.asarray(im).astype(np.uint16)
            elif im.mode == "I":
                arr = _int32_as_uint16(np.asarray(im), path)
            elif im.mode in ("F", "L", "RGB"):
                arr = np.asarray(im)
            else:
                arr = np.asarray(im.convert("RGB"))
    except InvalidImageError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise InvalidImageError(f"cannot read image file '{os.fspath(path)}': {detail}") from exc
    return _to_float_rgb(arr, f"image file '{os.fspath(path)}'")


def _int32_as_uint16(arr: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    # Pillow's 32-bit integer mode holds 16-bit files on some formats/versions; wider
    # data has no agreed white level, so refuse it rather than guess a scale.
    if arr.size and (arr.min() < 0 or arr.max() > 65535):
        raise InvalidImageError(
            f"image file '{os.fspath(path)}': 32-bit integer pixels outside 0..65535 "
            "are not supported; save it as 8- or 16-bit"
        )
    return arr.astype(np.uint16)


def load_images(items: str | os.PathLike | Sequence[str | os.PathLike] | None,
                default: Sequence[str] = HELDOUT_PHOTOS) -> list[tuple[str, np.ndarray]]:
    """(name, HxWx3 float32) pairs from folders, image files and bundled photo names.

    ``items`` is one folder, file or name, or a list of them; ``None`` or an empty list
    means the bundled photos ``default`` (the held-out ones unless told otherwise). A
    folder contributes its files with an :data:`~hermes_deploy.formats.IMAGE_SUFFIXES`
    suffix, sorted by name.
    """
    if items is None or (not isinstance(items, (str, os.PathLike)) and not list(items)):
        return [(name, load_photo(name)) for name in default]
    listed = [items] if isinstance(items, (str, os.PathLike)) else list(items)
    out: list[tuple[str, np.ndarray]] = []
    for item in listed:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise InputError(f"folder '{path}' holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                                 "point it at a folder of photographs")
            out += [(p.name, load_image_file(p)) for p in files]
        elif path.is_file():
            out.append((path.name, load_image_file(path)))
        else:
            try:
                out.append((str(item), load_photo(str(item))))
            except ValueError as exc:
                raise InputError(f"'{item}' is neither an image folder, an image file nor a bundled "
                                 f"photo ({exc})") from None
    return out

