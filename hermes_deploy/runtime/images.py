"""Streaming image input and output (libvips through pyvips, tifffile).

Reading: :class:`ImageSource` opens a file with libvips in sequential mode and hands
out rows top to bottom, so a huge PNG/JPEG/TIFF/WebP never sits in memory whole.
8- and 16-bit samples, grey and RGB, with or without alpha. EXIF orientation is applied
(``autorot``); CMYK and other colour spaces are converted to sRGB; the ICC profile is
kept and written back. Alpha never goes through the network: it is upscaled on its own
(bicubic, by libvips) and joined back at the end.

Writing: :class:`ImageSink` streams finished rows into an uncompressed temporary TIFF
(tifffile writes strips from an iterator), then libvips converts that TIFF in
sequential mode into the final format beside the destination under a temporary name,
and renames it into place. Memory therefore stays flat in the image size, and a
destination is either complete or absent: a failure (full disk, corrupt input, an
interrupt) removes the temporaries and never leaves a partial file.

Guards: a pixel limit (default the same as Pillow's decompression-bomb limit) refuses
enormous images before any decoding, with the flag to raise it in the message.
Truncated and corrupt files fail (libvips ``fail_on="truncated"``) instead of yielding
grey rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import faults
from ..atomic import discard, publish, temp_file, write_error
from ..errors import InputError, OutputError
from ..formats import STREAMING_LOADERS, STREAMING_NAMES
from ..optional import require

# Pillow's Image.MAX_IMAGE_PIXELS: the same decompression-bomb guard, kept on by default.
DEFAULT_MAX_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)
FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "tif": ".tif",
           "tiff": ".tif"}
EIGHT_BIT_ONLY = (".jpg", ".webp")
MAX_SIDE = {".jpg": 65535, ".webp": 16383, ".png": 2**31 - 1, ".tif": 2**31 - 1}
CONVERTED_SPACES = ("cmyk", "lab", "labs", "labq", "lch", "cmc", "xyz", "yxy", "scrgb", "hsv")

_TUNED = False


def _vips():
    global _TUNED
    pyvips = require("pyvips", purpose="Reading and writing images")
    if not _TUNED:
        _TUNED = True
        # streaming reads each row once: libvips' operation cache would only hold on to
        # decoded pixels of images that are never asked for again
        pyvips.cache_set_max(0)
        _return_large_buffers()
    return pyvips


def _return_large_buffers() -> None:
    """Have glibc hand large freed buffers straight back to the OS.

    glibc raises its mmap threshold after large frees, after which multi-megabyte row
    buffers come from the heap and fragment it: peak memory then grows with the image
    width and length. A fixed threshold (mallopt M_MMAP_THRESHOLD) keeps it flat.
    Harmless elsewhere: on other C libraries this is skipped.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD = 1 MiB
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    channels: int  # colour channels without alpha: 1 (grey) or 3
    alpha: bool
    depth: int  # 8 or 16 bits per sample
    suffix: str  # of the source file (lower case)

    @property
    def pixels(self) -> int:
        return self.width * self.height


class ImageSource:
    """A decoded-on-demand image; rows must be read top to bottom (see module doc)."""

    def __init__(self, path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS):
        pyvips = _vips()
        self.path = Path(path)
        name = self.path.name
        if not self.path.is_file():
            raise InputError(f"{name}: no such file")
        if self.path.stat().st_size == 0:
            raise InputError(f"{name}: empty file (0 bytes); re-export or re-download it")
        try:
            header = pyvips.Image.new_from_file(str(self.path), access="sequential",
                                                fail_on="truncated")
        except pyvips.Error as exc:
            raise InputError(f"{name}: not a readable image ({_first(exc)}); supported: "
                             f"{STREAMING_NAMES}") from None
        fields = header.get_fields()
        loader = header.get("vips-loader") if "vips-loader" in fields else ""
        if not loader.startswith(STREAMING_LOADERS):
            kind = loader.replace("load", "").split("_")[0].upper() or "this format"
            raise InputError(f"{name}: {kind} files are not read; supported: {STREAMING_NAMES}; "
                             "convert it first")
        pages = header.get("n-pages") if "n-pages" in fields else 1
        if pages > 1:
            # libvips would quietly read the first frame only: never drop data silently
            raise InputError(f"{name}: holds {pages} frames or pages (an animation or a "
                             "multi-page file); only single images are restored; split it into "
                             "one file per frame or page first")
        if max_pixels and header.width * header.height > max_pixels:
            raise InputError(f"{name}: {header.width}x{header.height} is "
                             f"{header.width * header.height / 1e6:.0f} MP, over the pixel limit "
                             f"of {max_pixels / 1e6:.0f} MP; raise it with --max-pixels if the "
                             "file is trusted")
        self.icc = header.get("icc-profile-data") if "icc-profile-data" in fields else None
        if str(header.interpretation) in CONVERTED_SPACES:
            self.icc = None  # converted to sRGB: the source profile no longer applies
        self._rotate = (header.get("orientation") if "orientation" in fields else 1) not in (0, 1)
        image, alpha = self._open()
        self._image = image
        depth = 16 if image.format == "ushort" else 8
        self.info = ImageInfo(width=image.width, height=image.height,
                              channels=1 if image.bands == 1 else 3, alpha=alpha is not None,
                              depth=depth, suffix=self.path.suffix.lower())
        self._next_row = 0
        self._region = None

    def _open(self):
        """A fresh sequential pipeline: (colour image, alpha image or None)."""
        pyvips = _vips()
        if self._rotate:
            # rotating by 90 degrees needs random access; libvips decodes to a temp file
            image = pyvips.Image.new_from_file(str(self.path), access="random",
                                               fail_on="truncated").autorot()
        else:
            image = pyvips.Image.new_from_file(str(self.path), access="sequential",
                                               fail_on="truncated")
        return self._normalize(image, self.path.name)

    @staticmethod
    def _normalize(image, name):
        if str(image.interpretation) in CONVERTED_SPACES:
            image = image.colourspace("srgb")
        if image.format not in ("uchar", "ushort"):
            if image.format in ("char", "short"):
                image = image.cast("uchar" if image.format == "char" else "ushort")
            else:
                raise InputError(f"{name}: {image.format} samples are not supported; save it "
                                 "as an 8- or 16-bit image")
        alpha = None
        if image.bands in (2, 4):
            alpha = image.extract_band(image.bands - 1)
            image = image.extract_band(0, n=image.bands - 1)
        if image.bands not in (1, 3):
            raise InputError(f"{name}: {image.bands} channels are not supported; save it as "
                             "grey, RGB or RGBA")
        return image, alpha

    def read_rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows [y0, y1) as stored: (rows, W, 1 or 3) uint8/uint16; y0 continues the last read."""
        if y0 != self._next_row:
            raise RuntimeError(f"rows must be read in order (expected {self._next_row}, got {y0})")
        pyvips = _vips()
        try:
            if self._region is None:
                # one region, fetched top to bottom: separate crops would each start a
                # pipeline and a sequential loader cannot go back for their first rows
                self._region = pyvips.Region.new(self._image)
            buf = self._region.fetch(0, y0, self.info.width, y1 - y0)
            dtype = np.uint16 if self.info.depth == 16 else np.uint8
            raw = np.frombuffer(buf, dtype=dtype).reshape(y1 - y0, self.info.width, self._image.bands)
        except pyvips.Error as exc:
            raise InputError(f"{self.path.name}: decoding failed at row {y0} ({_first(exc)}); "
                             "the file is truncated or corrupt") from None
        self._next_row = y1
        return raw

    def whole(self, max_side: int | None = None) -> np.ndarray:
        """The whole image (rgb float32), downscaled so its long side <= max_side."""
        pyvips = _vips()
        try:
            image, _ = self._open()
            long_side = max(image.width, image.height)
            if max_side and long_side > max_side:
                image = image.resize(max_side / long_side, kernel="cubic")
            raw = image.numpy()
        except pyvips.Error as exc:
            raise InputError(f"{self.path.name}: decoding failed ({_first(exc)}); the file is "
                             "truncated or corrupt") from None
        return to_float_rgb(raw)

    def alpha_upscaled(self, scale: int):
        """A lazy libvips image of the alpha channel resized by ``scale`` (or None)."""
        if not self.info.alpha:
            return None
        _, alpha = self._open()  # its own pipeline: the colour rows are read separately
        return alpha if scale == 1 else alpha.resize(scale, kernel="cubic")


def _first(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # pyvips puts the generic message first and libvips' reason after it
    detail = [ln for ln in lines[1:] if not ln.startswith("unable to")]
    return " ".join((detail or lines or [type(exc).__name__])[:2])[:200]


def to_float_rgb(raw: np.ndarray) -> np.ndarray:
    """(H, W[, 1 or 3]) uint8 / uint16 / float samples -> (H, W, 3) float32 in [0, 1]
    (grey is repeated into three channels; floats are taken as they are)."""
    if raw.ndim == 2:
        raw = raw[:, :, None]
    if raw.dtype == np.uint8:
        x = raw.astype(np.float32) * np.float32(1 / 255.0)
    elif raw.dtype == np.uint16:
        x = raw.astype(np.float32) * np.float32(1 / 65535.0)
    else:
        x = raw.astype(np.float32, copy=False)
    if x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    return x


def from_float(rows: np.ndarray, depth: int, channels: int) -> np.ndarray:
    """(rows, W, 3) float [0, 1] -> (rows, W, channels) uint8/uint16, rounded."""
    rows = rows.mean(axis=2, keepdims=True) if channels == 1 else np.array(rows, np.float32)
    peak = np.float32(65535.0 if depth == 16 else 255.0)
    np.clip(rows, 0.0, 1.0, out=rows)  # in place: these are strips of a wide image
    rows *= peak
    rows += np.float32(0.5)
    return rows.astype(np.uint16 if depth == 16 else np.uint8)


class Samples:
    """Finished output rows as stored: ``depth``-bit unsigned, grey or RGB (the
    stitcher's :class:`~hermes_deploy.runtime.stitch.SampleFormat`)."""

    def __init__(self, depth: int, channels: int) -> None:
        self.depth, self.channels = depth, channels
        self.dtype = np.dtype(np.uint16 if depth == 16 else np.uint8)

    def convert(self, rows: np.ndarray) -> np.ndarray:
        return from_float(rows, self.depth, self.channels)


def output_suffix(fmt: str, source_suffix: str) -> str:
    """The output file suffix for ``--format`` (``auto``: the source's own format)."""
    if fmt == "auto":
        s = source_suffix.lower()
        return ".jpg" if s == ".jpeg" else (".tif" if s == ".tiff" else s)
    try:
        return FORMATS[fmt.lower()]
    except KeyError:
        raise InputError(f"unknown output format '{fmt}'; use auto, png, jpg, webp or tif") from None


class ImageSink:
    """Streams rows of the output image to ``path`` (see module doc)."""

    STRIP = 64

    def __init__(self, path: Path, width: int, height: int, channels: int, depth: int,
                 icc: bytes | None = None, alpha=None, quality: int = 95):
        self.path = Path(path)
        self.width, self.height, self.channels = width, height, channels
        self.depth = 8 if self.path.suffix in EIGHT_BIT_ONLY else depth
        self.icc, self.alpha, self.quality = icc, alpha, quality
        limit = MAX_SIDE.get(self.path.suffix, 2**31 - 1)
        if max(width, height) > limit:
            raise OutputError(f"{self.path.name}: {width}x{height} is too large for "
                              f"{self.path.suffix[1:].upper()} (at most {limit} pixels a side); "
                              "use --format png or tif")
        self.samples = Samples(self.depth, channels)
        self.rows_written = 0
        self._tmp_tif: Path | None = None
        self._tmp_out: Path | None = None

    def write(self, strips) -> None:
        """Consume an iterator of (rows, W, channels) arrays in :attr:`samples`' format
        and produce the file."""
        import tifffile

        pyvips = _vips()
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._tmp_tif = temp_file(self.path, ".rows.tif")
            self._tmp_out = temp_file(self.path, f".partial{self.path.suffix}")
        except OSError as exc:
            self._cleanup()
            raise write_error(self.path, exc) from None
        try:
            dtype = np.uint16 if self.depth == 16 else np.uint8
            tifffile.imwrite(self._tmp_tif, self._segments(strips), shape=self._shape(),
                             dtype=dtype, rowsperstrip=self.STRIP,
                             photometric="minisblack" if self.channels == 1 else "rgb")
            if self.rows_written != self.height:
                raise RuntimeError(f"wrote {self.rows_written} of {self.height} rows")
            image = pyvips.Image.new_from_file(str(self._tmp_tif), access="sequential")
            if self.alpha is not None:
                alpha = self.alpha
                if alpha.width != self.width or alpha.height != self.height:
                    alpha = alpha.crop(0, 0, min(alpha.width, self.width),
                                       min(alpha.height, self.height)).embed(
                        0, 0, self.width, self.height, extend="copy")
                target = "ushort" if self.depth == 16 else "uchar"
                if alpha.format != target:
                    factor = 257.0 if target == "ushort" else 1.0 / 257.0
                    alpha = (alpha * factor).cast(target)
                image = image.bandjoin(alpha)
            image = image.copy(interpretation=self._interpretation())
            if self.icc is not None:
                image.set_type(pyvips.GValue.blob_type, "icc-profile-data", self.icc)
            image.write_to_file(str(self._tmp_out), **self._save_options())
            faults.point("publish")
            publish(self._tmp_out, self.path)
            self._tmp_out = None
        except OSError as exc:
            raise write_error(self.path, exc) from None
        except pyvips.Error as exc:
            if "space" in str(exc).lower():
                raise OutputError(f"{self.path.name}: disk full while writing; free space or "
                                  "choose another output folder") from None
            raise OutputError(f"{self.path.name}: writing failed ({_first(exc)})") from None
        finally:
            self._cleanup()

    def _shape(self):
        return (self.height, self.width) if self.channels == 1 else (self.height, self.width, 3)

    def _interpretation(self) -> str:
        grey = self.channels == 1
        if self.depth == 16:
            return "grey16" if grey else "rgb16"
        return "b-w" if grey else "srgb"

    def _save_options(self) -> dict:
        s = self.path.suffix
        if s == ".jpg":
            return {"Q": self.quality}
        if s == ".webp":
            return {"Q": self.quality}
        if s == ".tif":
            return {"compression": "deflate"}
        return {}

    def _segments(self, strips):
        """Strips of exactly STRIP rows (the TIFF's rows per strip), the last shorter.
        What is held over is copied: the incoming rows are views of a reused buffer."""
        buf: list[np.ndarray] = []
        held = 0
        for rows in strips:
            if rows.dtype != self.samples.dtype or rows.shape[1:] != (self.width, self.channels):
                raise RuntimeError(f"rows of {rows.dtype} {rows.shape[1:]} for a "
                                   f"{self.samples.dtype} sink of {self.width}x{self.channels}")
            if self.channels == 1:
                rows = rows[:, :, 0]
            if not buf and rows.shape[0] == self.STRIP:
                self.rows_written += self.STRIP
                yield rows
                continue
            buf.append(rows)
            held += rows.shape[0]
            while held >= self.STRIP:
                block = np.concatenate(buf) if len(buf) > 1 else buf[0]
                yield block[: self.STRIP]
                self.rows_written += self.STRIP
                rest = block[self.STRIP:].copy()
                buf, held = ([rest], rest.shape[0]) if rest.shape[0] else ([], 0)
            if buf and buf[-1] is rows:
                buf[-1] = rows.copy()
        if held:
            block = np.concatenate(buf) if len(buf) > 1 else buf[0]
            self.rows_written += block.shape[0]
            yield block

    def _cleanup(self) -> None:
        for tmp in (self._tmp_tif, self._tmp_out):
            if tmp is not None:
                discard(tmp)
        self._tmp_tif = self._tmp_out = None
