"""Open a video file and say what it holds, or why it cannot be restored, in one line.

PyAV (FFmpeg's libraries, in its wheel) does the demuxing and decoding. The video
stream restored is the first one that is not a cover picture; every other stream is
copied as it is (:mod:`.mux`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..errors import InputError
from ..optional import require
from .colour import Colour, guess_colour
from .frames import check_readable, is_full_range_format

#: container suffixes taken as video (anything else is an image or ignored)
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi", ".ts", ".m2ts", ".mts",
                  ".nut", ".mxf", ".y4m")
_INTERLACED_FIELD_ORDERS = (2, 3, 4, 5)  # AVFieldOrder: TT, BB, TB, BT


def is_video(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def open_input(path):
    """``av.open`` with every failure as one line."""
    av = require("av", purpose="Video input and output")
    try:
        return av.open(str(path), "r")
    except FileNotFoundError:
        raise InputError(f"{Path(path).name}: no such file") from None
    except av.error.FFmpegError as exc:
        raise InputError(f"{Path(path).name}: not a readable video file "
                         f"({_ffmpeg_reason(exc)}); check that it is complete") from None


def _ffmpeg_reason(exc) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip() if text else type(exc).__name__


def video_stream(container, name: str):
    streams = [s for s in container.streams.video if not (s.disposition & 1024)]  # not attached_pic
    if not streams:
        raise InputError(f"{name}: no video stream (only "
                         f"{', '.join(sorted({s.type for s in container.streams})) or 'nothing'});"
                         " pass a file with video")
    return streams[0]


@dataclass
class VideoInfo:
    name: str
    width: int
    height: int
    pix_fmt: str
    codec: str
    time_base: Fraction
    rate: Fraction | None  # average frame rate, when the container knows it
    frames: int | None  # from the container's index; None where it does not say (MKV)
    duration: float | None  # seconds
    colour: Colour
    rotation: int
    index: int  # the video stream's index in the container

    def describe(self) -> str:
        rate = f"{float(self.rate):.3f} fps" if self.rate else "unknown rate"
        return (f"{self.width}x{self.height} {self.codec} {self.pix_fmt}, {rate}, "
                f"{self.colour.describe()}")


def probe(path) -> VideoInfo:
    """What the video stream of ``path`` is; refuses what cannot be restored."""
    name = Path(path).name
    with open_input(path) as container:
        stream = video_stream(container, name)
        ctx = stream.codec_context
        if ctx.width <= 0 or ctx.height <= 0:
            raise InputError(f"{name}: the video stream has no size (corrupt header?)")
        first = _first_frame(container, stream, name)
        pix_fmt = first.format.name
        check_readable(pix_fmt)
        if ctx.field_order in _INTERLACED_FIELD_ORDERS or first.interlaced_frame:
            raise InputError(f"{name}: interlaced video is not restored (the model sees whole "
                             "frames); deinterlace it first, e.g. ffmpeg -i in -vf bwdif out.mkv")
        colour = guess_colour(first.width, first.height, first.colorspace or ctx.colorspace,
                              first.color_range or ctx.color_range,
                              first.color_primaries or ctx.color_primaries,
                              first.color_trc or ctx.color_trc, is_full_range_format(pix_fmt),
                              codec=ctx.name)
        frames = stream.frames or None
        duration = (float(stream.duration * stream.time_base) if stream.duration
                    else _tagged_duration(stream.metadata.get("DURATION")))
        return VideoInfo(name=name, width=first.width, height=first.height, pix_fmt=pix_fmt,
                         codec=ctx.name, time_base=Fraction(stream.time_base),
                         rate=Fraction(stream.average_rate) if stream.average_rate else None,
                         frames=frames, duration=duration, colour=colour,
                         rotation=int(first.rotation or 0), index=stream.index)


def _tagged_duration(text: str | None) -> float | None:
    """Seconds of a Matroska ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``), which FFmpeg's and
    mkvmerge's muxers write per stream; None when absent or unreadable."""
    try:
        h, m, sec = (text or "").split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None


def _first_frame(container, stream, name: str):
    av = require("av", purpose="Video input and output")
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as exc:
        raise InputError(f"{name}: the video stream cannot be decoded ({_ffmpeg_reason(exc)})"
                         ) from None
    raise InputError(f"{name}: the video stream holds no frames")
