"""The last step of a video: encode its segments, copy every other stream, publish.

The finished segments are encoded into the output container with every other stream of
the source copied as it is, and the file is published atomically.

* Video: each restored frame gets its source frame's timestamp and duration (variable
  frame rate stays variable), the source's colour tags (:mod:`.colour`), and the
  source video stream's language, title and disposition.
* Audio, subtitle (every track), cover-picture and data streams: their packets are
  copied byte for byte with their timestamps (no re-encoding); attachments (MKV fonts),
  chapters and the container's metadata are copied too. A stream the output container
  cannot hold is named and left out, never silently.
* Packets are written in time order, merging the source's packets with the encoder's
  as both come, so memory does not grow with the video's length.
"""

from __future__ import annotations

import heapq
from fractions import Fraction
from pathlib import Path
from typing import Iterator

from ..atomic import atomic_path, write_error
from ..errors import InputError, OutputError
from .encode import Encoder
from .frames import tag
from .probe import VideoInfo, open_input
from .segments import Segment

FORMATS = {".mkv": "matroska", ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".webm": "webm"}
#: stream metadata that describes the coded stream itself (mkvmerge's statistics): not
#: true of a re-encoded video stream, so not copied to it
_STATISTICS = ("DURATION", "NUMBER_OF_FRAMES", "NUMBER_OF_BYTES", "BPS", "ENCODER",
               "_STATISTICS_", "encoder", "handler_name", "vendor_id")


def _video_metadata(metadata: dict) -> dict:
    return {k: v for k, v in metadata.items()
            if not any(k.upper().startswith(p.upper()) for p in _STATISTICS)}


def _stream_metadata(metadata: dict) -> dict:
    """A stream's metadata to write: MP4/MOV read a track's title back as ``name`` but
    write it from ``title``."""
    out = dict(metadata)
    if "name" in out and "title" not in out:
        out["title"] = out["name"]
    return out


def _time(packet, last: list) -> Fraction:
    ts = packet.dts if packet.dts is not None else packet.pts
    if ts is None or packet.time_base is None:
        return last[0]
    last[0] = Fraction(ts) * Fraction(packet.time_base)
    return last[0]


def join(source: Path, output: Path, info: VideoInfo, encoder: Encoder, scale: int,
         folder: Path, segments: list[Segment], say, progress=None) -> int:
    """Write ``output`` (see module doc); returns the number of video frames written."""
    import av

    fmt = FORMATS.get(output.suffix.lower(), "matroska")
    written = 0
    try:
        with atomic_path(output) as tmp, open_input(source) as inp:
            out = av.open(str(tmp), "w", format=fmt)
            try:
                written = _mux(av, inp, out, info, encoder, scale, folder, segments, say,
                               progress)
            finally:
                out.close()
            if written != sum(len(s.pts) for s in segments):
                raise InputError(f"{info.name}: {written} frames encoded of "
                                 f"{sum(len(s.pts) for s in segments)} restored")
    except OSError as exc:
        raise write_error(output, exc) from None
    except av.error.FFmpegError as exc:
        if getattr(exc, "errno", None) == 28:
            raise OutputError(f"{output.name}: disk full while writing; free space or choose "
                              "another output folder") from None
        raise OutputError(f"{output.name}: writing failed ({exc}); check --codec and "
                          "--pix-fmt against the output container") from None
    return written


def _mux(av, inp, out, info, encoder: Encoder, scale: int, folder: Path,
         segments: list[Segment], say, progress) -> int:
    out.metadata.update(inp.metadata)
    src_video = inp.streams[info.index]
    video = out.add_stream(encoder.codec, rate=info.rate, options=encoder.options)
    video.width, video.height = scale * info.width, scale * info.height
    video.pix_fmt = encoder.pix_fmt
    video.time_base = info.time_base
    video.codec_context.time_base = info.time_base
    tag(video.codec_context, encoder.colour)
    video.metadata.update(_stream_metadata(_video_metadata(src_video.metadata)))
    video.disposition = src_video.disposition
    if info.rotation:
        video.set_display_rotation(info.rotation)
    copies = {}
    chapters = inp.chapters()
    for stream in inp.streams:
        if stream.index == info.index:
            continue
        if stream.type == "data" and stream.codec_context is None:
            # no codec to copy: in MP4/MOV this is the chapter text track, which the
            # muxer writes anew from the chapters
            if not chapters:
                say(f"{info.name}: data stream {stream.index} has no codec; left out")
            continue
        if stream.type == "attachment":
            _copy_attachment(out, stream, say)
            continue
        try:
            copied = out.add_stream_from_template(stream)
        except (ValueError, av.error.FFmpegError) as exc:
            say(f"{info.name}: stream {stream.index} ({stream.type}, "
                f"{getattr(stream.codec_context, 'name', '?')}) cannot go into "
                f"{out.format.name}; left out ({exc})")
            continue
        copied.metadata.update(_stream_metadata(stream.metadata))
        copied.disposition = stream.disposition
        copies[stream.index] = copied
    if chapters:
        out.set_chapters(chapters)

    def copied_packets() -> Iterator:
        last = [Fraction(-10**9)]
        streams = [inp.streams[i] for i in copies]
        if not streams:
            return
        for packet in inp.demux(streams):
            if packet.size == 0 and packet.pts is None and packet.dts is None:
                continue  # the demuxer's end-of-stream marker
            yield _time(packet, last), 0, packet

    written = 0

    def video_packets() -> Iterator:
        nonlocal written
        last = [Fraction(-10**9)]
        for seg in segments:
            with av.open(str(folder / seg.file)) as part:
                for k, frame in enumerate(part.decode(video=0)):
                    if k >= len(seg.pts):
                        raise InputError(f"segment {seg.file} holds more frames than recorded")
                    frame.pts, frame.duration = seg.pts[k], seg.durations[k]
                    frame.time_base = info.time_base
                    frame.pict_type = av.video.frame.PictureType.NONE
                    tag(frame, encoder.colour)
                    written += 1
                    for packet in video.encode(frame):
                        yield _time(packet, last), 1, packet
                    if progress is not None:
                        progress(1)
        for packet in video.encode(None):
            yield _time(packet, last), 1, packet

    for _, which, packet in heapq.merge(copied_packets(), video_packets(),
                                        key=lambda t: (t[0], t[1])):
        if which == 0:
            packet.stream = copies[packet.stream.index]
        out.mux(packet)
    return written


def _copy_attachment(out, stream, say) -> None:
    try:
        out.add_attachment(stream.name, stream.mimetype, stream.data)
    except (AttributeError, ValueError, TypeError) as exc:
        say(f"attachment stream {stream.index} not copied ({exc})")
