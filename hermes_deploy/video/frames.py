"""Decoded frames <-> float RGB, through :mod:`.colour` (never through swscale).

A frame's planes are read as stored (8 to 16 bits, any of 4:2:0, 4:2:2, 4:4:4) and
written the same way; RGB-coded video (``gbrp``, ``rgb24``, ...) and grey are read
directly. Other pixel formats are refused by name.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import InputError
from .colour import Colour, PlaneFormat, rgb_to_yuv, yuv_to_rgb

_YUV = re.compile(r"^yuvj?(420|422|444)p(\d+)?(le)?$")
_SUB = {"420": (2, 2), "422": (2, 1), "444": (1, 1)}
_RGB_PACKED = {"rgb24": (np.uint8, 8), "bgr24": (np.uint8, 8), "rgba": (np.uint8, 8),
               "bgra": (np.uint8, 8), "rgb48le": (np.uint16, 16)}
_GBR = re.compile(r"^gbrap?(\d+)?(le)?$")
_GRAY = re.compile(r"^gray(\d+)?(le)?$")


def plane_format(pix_fmt: str) -> PlaneFormat | None:
    """The planar Y'CbCr layout of ``pix_fmt``, or None if it is not planar Y'CbCr."""
    m = _YUV.match(pix_fmt)
    if not m:
        return None
    bits = int(m.group(2) or 8)
    return PlaneFormat(bits, *_SUB[m.group(1)])


def is_full_range_format(pix_fmt: str) -> bool:
    return pix_fmt.startswith("yuvj")


def readable(pix_fmt: str) -> bool:
    return bool(plane_format(pix_fmt) or pix_fmt in _RGB_PACKED or _GBR.match(pix_fmt)
                or _GRAY.match(pix_fmt))


def check_readable(pix_fmt: str) -> None:
    if not readable(pix_fmt):
        raise InputError(f"pixel format {pix_fmt} is not supported (planar YUV 4:2:0/4:2:2/4:4:4 "
                         "at 8-16 bits, RGB or grey are); convert the video first, e.g. "
                         "ffmpeg -i in -pix_fmt yuv420p10le out.mkv")


def _plane(plane, dtype) -> np.ndarray:
    per_row = plane.line_size // np.dtype(dtype).itemsize
    return np.frombuffer(plane, dtype).reshape(plane.height, per_row)[:, :plane.width]


def frame_to_rgb(frame, colour: Colour) -> np.ndarray:
    """(H, W, 3) float32 R'G'B' of a decoded frame, clipped to [0, 1]."""
    name = frame.format.name
    fmt = plane_format(name)
    if fmt is not None:
        y, u, v = (_plane(frame.planes[i], fmt.dtype) for i in range(3))
        rgb = yuv_to_rgb(y, u, v, fmt, colour)
    elif name in _RGB_PACKED:
        dtype, bits = _RGB_PACKED[name]
        a = frame.to_ndarray()[..., :3].astype(np.float32) * np.float32(1.0 / ((1 << bits) - 1))
        rgb = a[..., ::-1] if name.startswith("bgr") else a
    elif m := _GBR.match(name):
        bits = int(m.group(1) or 8)
        dtype = np.uint8 if bits <= 8 else np.uint16
        g, b, r = (_plane(frame.planes[i], dtype) for i in range(3))
        rgb = np.stack([r, g, b], axis=-1).astype(np.float32) * np.float32(1.0 / ((1 << bits) - 1))
    elif m := _GRAY.match(name):
        bits = int(m.group(1) or 8)
        y = _plane(frame.planes[0], np.uint8 if bits <= 8 else np.uint16)
        grey = PlaneFormat(bits, 1, 1)
        mid = np.full_like(y, 1 << (bits - 1))
        rgb = yuv_to_rgb(y, mid, mid, grey, colour)
    else:
        check_readable(name)
        raise AssertionError(name)
    return np.clip(rgb, 0.0, 1.0, out=rgb if rgb.flags.writeable else None)


def rgb_to_frame(rgb: np.ndarray, pix_fmt: str, colour: Colour):
    """An ``av.VideoFrame`` in ``pix_fmt`` (planar Y'CbCr) from float R'G'B' in [0, 1],
    tagged with ``colour``."""
    import av

    fmt = plane_format(pix_fmt)
    if fmt is None:
        raise InputError(f"output pixel format {pix_fmt} is not planar YUV; pick one such as "
                         "yuv420p, yuv420p10le or yuv444p10le")
    h, w = rgb.shape[:2]
    frame = av.VideoFrame(w, h, pix_fmt)
    for plane, data in zip(frame.planes, rgb_to_yuv(rgb, fmt, colour)):
        _plane(plane, fmt.dtype)[...] = data
    tag(frame, colour)
    return frame


def tag(target, colour: Colour) -> None:
    """Set the colour tags of a frame or an encoder context."""
    target.colorspace = colour.matrix
    target.color_range = colour.range_code
    target.color_primaries = colour.primaries
    target.color_trc = colour.transfer

