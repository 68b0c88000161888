"""Real video clips, made with PyAV, for the video tests.

Guarantees:

* :func:`make_clip` reads every clip back before returning: ``ClipInfo.pts`` and
  ``ClipInfo.time_base`` are what the demuxer and decoder report, the frame count is the
  one asked for, the stream's codec context reports the colour tags that were set, and a
  VFR clip's pts are exactly the durations of :data:`VFR_DURATIONS`; otherwise it
  raises :class:`ClipError`.
* Frames are built plane by plane from RGB that :func:`yuv_planes` converts here, in
  float64 numpy, with the named matrix and range (after ITU-R BT.601, BT.709 and
  BT.2020, as FFmpeg's limited and full ranges scale them); swscale never touches them.
  A lossless clip therefore decodes back to exactly ``yuv_planes(info.rgb[i], ...)``.
* The content is natural photographs bundled in scikit-image (the offline set of
  ``hermes_deploy.quality.photos``), never synthetic patterns unless ``content="noise"``.

How PyAV 18.1.1 does each part (found by reading its sources and trying):

* Colour tags: ``VideoFrame`` and ``VideoCodecContext`` ``.colorspace``,
  ``.color_range``, ``.color_primaries``, ``.color_trc`` take and return plain ints of
  FFmpeg's ``AVColorSpace``, ``AVColorRange``, ``AVColorPrimaries`` and
  ``AVColorTransferCharacteristic``. The IntEnums of ``av.video.reformatter`` carry the
  same numbers but not every value (``Colorspace`` has no SMPTE170M = 6), so the tables
  below use FFmpeg's names and numbers.
* Encoder timing: the frame pts is rebased into the *codec context's* time base, which
  defaults to 1/rate; the clips set it to 1/90000 so VFR pts survive.
* Subtitles: ``add_mux_stream("subrip" | "mov_text")`` and packets made with
  ``av.Packet(bytes)`` with pts/dts/duration in a 1/1000 ``time_base``; mov_text
  payloads carry a 2-byte big-endian length. (``add_stream("mov_text")`` fails in
  ``avcodec_open2``.) The mp4 muxer inserts 2-byte empty cues in the gaps.
* Attachments: ``add_attachment(name, mimetype, data)``; they read back as streams of
  type ``"attachment"`` (``AttachmentStream.name``, ``.mimetype``, ``.data``).
* Chapters: ``set_chapters([{"id", "start", "end", "time_base", "metadata"}])``, read
  back with ``chapters()``; Matroska returns them in 1/1_000_000_000, mp4 in 1/1000 and
  adds a text track (a ``data`` stream) that holds the chapter titles.
* Rotation: ``VideoStream.set_display_rotation(degrees)`` writes a display matrix as
  coded side data (mp4, mov and mkv); decoded frames report it as
  ``VideoFrame.rotation``. Both are counter-clockwise degrees.
* Stream titles: mp4 reads a stream's title back as metadata ``"name"``, not ``"title"``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = [
    "ClipError",
    "ClipInfo",
    "COLORSPACES",
    "COLOR_PRIMARIES",
    "COLOR_RANGES",
    "COLOR_TRCS",
    "PHOTOS",
    "VFR_DURATIONS",
    "corrupt_copy",
    "frame_planes",
    "make_clip",
    "make_no_video",
    "read_streams",
    "yuv_planes",
]

# FFmpeg's names and numbers (libavutil/pixfmt.h). Matrices also carry (Kr, Kb).
COLORSPACES = {"bt709": 1, "bt470bg": 5, "smpte170m": 6, "bt2020nc": 9}
_MATRIX = {"bt709": (0.2126, 0.0722), "bt470bg": (0.299, 0.114),
           "smpte170m": (0.299, 0.114), "bt2020nc": (0.2627, 0.0593)}
COLOR_RANGES = {"tv": 1, "pc": 2}
COLOR_PRIMARIES = {"bt709": 1, "bt470m": 4, "bt470bg": 5, "smpte170m": 6,
                   "smpte240m": 7, "bt2020": 9}
COLOR_TRCS = {"bt709": 1, "gamma22": 4, "gamma28": 5, "smpte170m": 6, "linear": 8,
              "iec61966-2-1": 13, "bt2020-10": 14, "bt2020-12": 15, "smpte2084": 16,
              "arib-std-b67": 18}

# pix_fmt: (chroma halved in both directions, bits per sample)
_PIX_FMTS = {"yuv420p": (True, 8), "yuv420p10le": (True, 10),
             "yuv444p": (False, 8), "yuv444p10le": (False, 10)}
# Decoders report full-range 8-bit H.264 as the (deprecated) yuvj formats.
_DECODED_PIX_FMTS = {**_PIX_FMTS, "yuvj420p": (True, 8), "yuvj444p": (False, 8)}

#: Colour photographs bundled in scikit-image; a shot past the fifth reuses one, mirrored.
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left")

_TICK = Fraction(1, 90000)  # the encoder's time base: every duration below is whole ticks
_CFR_RATE = 24

#: Frame durations (seconds) a VFR clip cycles through, per container: about 1/24, 1/30
#: and 1/12 s, whole milliseconds in Matroska (its time base is 1/1000).
VFR_DURATIONS = {
    "matroska": (Fraction(42, 1000), Fraction(33, 1000), Fraction(83, 1000)),
    "mp4": (Fraction(1, 24), Fraction(1, 30), Fraction(1, 12)),
    "mov": (Fraction(1, 24), Fraction(1, 30), Fraction(1, 12)),
}

_LANGUAGES = ("eng", "fra", "deu", "spa", "ita", "jpn")


@dataclass(frozen=True)
class _Muxing:
    format: str
    audio_codec: str
    subtitle_codec: str


_MUXINGS = {".mkv": _Muxing("matroska", "libopus", "subrip"),
            ".mp4": _Muxing("mp4", "aac", "mov_text"),
            ".mov": _Muxing("mov", "aac", "mov_text")}

_LOSSLESS_OPTIONS = {"libx264": {"qp": "0"}, "ffv1": {},
                     "libx265": {"x265-params": "lossless=1:log-level=error"}}


class ClipError(RuntimeError):
    """A clip did not read back as it was written."""


@dataclass
class ClipInfo:
    """What was written, as read back from the file.

    ``pts`` are the decoded frames' pts in presentation order, in ``time_base`` (the
    video stream's, as the container stores it). ``rgb`` holds the float64 (H, W, 3)
    frames in [0, 1] that were converted and encoded, when ``keep_rgb=True``.
    ``shot_starts`` lists the frame indices where a shot starts, beginning with 0.
    """

    path: Path
    frames: int
    pts: list[int]
    time_base: Fraction
    width: int
    height: int
    pix_fmt: str
    rgb: list[np.ndarray] | None
    shot_starts: list[int]


# -- colour --------------------------------------------------------------------------

def _choice(table: dict, value: str, what: str):
    if value not in table:
        raise ValueError(f"{what}: expected one of {sorted(table)}, received {value!r}")
    return table[value]


def yuv_planes(rgb: np.ndarray, *, colorspace: str = "bt709", color_range: str = "tv",
               pix_fmt: str = "yuv420p") -> list[np.ndarray]:
    """The Y, U, V planes (uint8 or uint16 samples) of a float64 RGB frame in [0, 1].

    Chroma of 4:2:0 formats is the mean of each 2x2 block, taken before quantisation.
    Limited range puts Y in 16..235 and chroma in 16..240, times 2^(bits-8); full range
    uses 0..2^bits-1 with chroma centred on 2^(bits-1). Values are rounded to nearest.
    """
    kr, kb = _choice(_MATRIX, colorspace, "colorspace")
    subsampled, bits = _choice(_PIX_FMTS, pix_fmt, "pix_fmt")
    _choice(COLOR_RANGES, color_range, "color_range")
    rgb = np.asarray(rgb, dtype=np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = kr * r + (1.0 - kr - kb) * g + kb * b
    cb = (b - y) / (2.0 * (1.0 - kb))
    cr = (r - y) / (2.0 * (1.0 - kr))
    if subsampled:
        cb, cr = (c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2).mean(axis=(1, 3))
                  for c in (cb, cr))
    top = 2**bits - 1
    if color_range == "tv":
        scale = 2 ** (bits - 8)
        levels = [(16 + 219 * y) * scale, (128 + 224 * cb) * scale, (128 + 224 * cr) * scale]
    else:
        half = 2 ** (bits - 1)
        levels = [y * top, cb * top + half, cr * top + half]
    dtype = np.uint8 if bits == 8 else np.uint16
    return [np.clip(np.rint(v), 0, top).astype(dtype) for v in levels]


def _plane_view(plane, dtype) -> np.ndarray:
    """A (height, width) view into a frame plane, skipping its line padding."""
    itemsize = np.dtype(dtype).itemsize
    rows = np.frombuffer(memoryview(plane), dtype=dtype)
    rows = rows[: plane.height * (plane.line_size // itemsize)]
    return rows.reshape(plane.height, plane.line_size // itemsize)[:, : plane.width]


def frame_planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """Copies of a decoded frame's Y, U, V planes, without line padding."""
    _, bits = _choice(_DECODED_PIX_FMTS, frame.format.name, "frame pix_fmt")
    dtype = np.uint8 if bits == 8 else np.uint16
    return [_plane_view(p, dtype).copy() for p in frame.planes]


def _frame_from_planes(planes: list[np.ndarray], pix_fmt: str) -> av.VideoFrame:
    height, width = planes[0].shape
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane, values in zip(frame.planes, planes):
        _plane_view(plane, values.dtype)[...] = values
    return frame


# -- content -------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _source(name: str) -> np.ndarray:
    from hermes_deploy.quality import load_photo

    img = load_photo(name).astype(np.float64)
    img.flags.writeable = False
    return img


@functools.lru_cache(maxsize=32)
def _photo(name: str, height: int, width: int) -> np.ndarray:
    """A bundled photograph resized (anti-aliased) to (height, width), float64."""
    from skimage.transform import resize

    img = np.clip(resize(_source(name), (height, width), anti_aliasing=True), 0.0, 1.0)
    img.flags.writeable = False
    return img


def _pan_shot(photo_index: int, n: int, height: int, width: int, moving: bool,
              rng: np.random.Generator) -> list[np.ndarray]:
    # x steps alternate 1 and 2 px, y steps 1 px: after j frames, (j + j // 2, j).
    span_x, span_y = (n - 1 + (n - 1) // 2, n - 1) if moving else (0, 0)
    name = PHOTOS[photo_index % len(PHOTOS)]
    ph, pw = _source(name).shape[:2]
    scale = 1.5 * max((height + span_y) / ph, (width + span_x) / pw)
    img = _photo(name, math.ceil(ph * scale), math.ceil(pw * scale))
    if photo_index >= len(PHOTOS):
        img = img[:, ::-1]
    y0 = int(rng.integers(0, img.shape[0] - height - span_y + 1))
    x0 = int(rng.integers(0, img.shape[1] - width - span_x + 1))
    out = []
    for j in range(n):
        dy, dx = (j, j + j // 2) if moving else (0, 0)
        out.append(np.array(img[y0 + dy : y0 + dy + height, x0 + dx : x0 + dx + width]))
    return out


def _content(content: str, frames: int, shots: int, height: int, width: int,
             seed: int) -> tuple[list[np.ndarray], list[int]]:
    rng = np.random.default_rng(seed)
    starts = [k * frames // shots for k in range(shots)]
    rgb: list[np.ndarray] = []
    for k, start in enumerate(starts):
        n = (starts[k + 1] if k + 1 < shots else frames) - start
        if content == "noise":
            rgb += [rng.random((height, width, 3)) for _ in range(n)]
        else:
            rgb += _pan_shot(k, n, height, width, content == "pan", rng)
    return rgb, starts


# -- writing -------------------------------------------------------------------------

def _muxing_for(path: Path) -> _Muxing:
    suffix = path.suffix.lower()
    if suffix not in _MUXINGS:
        raise ValueError(f"clip path: expected a name ending in one of {sorted(_MUXINGS)}, "
                         f"received {path.name!r}")
    return _MUXINGS[suffix]


def _durations(frames: int, vfr: bool, muxing: _Muxing) -> list[Fraction]:
    if not vfr:
        return [Fraction(1, _CFR_RATE)] * frames
    cycle = VFR_DURATIONS[muxing.format]
    return [cycle[i % len(cycle)] for i in range(frames)]


def _add_video(out, codec: str, width: int, height: int, pix_fmt: str, options: dict,
               tags: tuple[int, int, int, int], rotation: int | None):
    stream = out.add_stream(codec, rate=_CFR_RATE, options=options)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    stream.time_base = _TICK  # mp4 keeps it; Matroska replaces it with 1/1000
    ctx = stream.codec_context
    ctx.time_base = _TICK  # frame pts are rebased into this, not the stream's
    ctx.thread_count = 1  # a bit-identical file on every run
    ctx.colorspace, ctx.color_range, ctx.color_primaries, ctx.color_trc = tags
    if rotation is not None:
        stream.set_display_rotation(rotation)
    return stream


def _write_video(out, stream, planes: list[list[np.ndarray]], pix_fmt: str,
                 durations: list[Fraction], tags: tuple[int, int, int, int]) -> None:
    t = Fraction(0)
    for frame_planes_, duration in zip(planes, durations):
        frame = _frame_from_planes(frame_planes_, pix_fmt)
        frame.colorspace, frame.color_range, frame.color_primaries, frame.color_trc = tags
        frame.time_base = _TICK
        frame.pts, frame.duration = int(t / _TICK), int(duration / _TICK)
        out.mux(stream.encode(frame))
        t += duration
    out.mux(stream.encode(None))


def _add_tracks(out, codec: str, n: int, kind: str) -> list:
    streams = []
    for k in range(n):
        if kind == "Audio":
            stream = out.add_stream(codec, rate=48000)
            stream.layout = "mono"
        else:
            stream = out.add_mux_stream(codec)
        stream.metadata["language"] = _LANGUAGES[k]
        stream.metadata["title"] = f"{kind} {k + 1} ({_LANGUAGES[k]})"
        streams.append(stream)
    return streams


_SAMPLE_DTYPES = {"s16": np.int16, "s32": np.int32, "flt": np.float32, "dbl": np.float64}


def _write_sine(out, stream, hz: float, seconds: Fraction) -> None:
    fmt = stream.codec_context.format.name
    dtype = _SAMPLE_DTYPES[fmt.rstrip("p")]
    rate, size = stream.codec_context.sample_rate, stream.codec_context.frame_size or 1024
    for start in range(0, math.ceil(seconds * rate), size):
        wave = 0.25 * np.sin(2 * np.pi * hz * np.arange(start, start + size) / rate)
        if np.issubdtype(dtype, np.integer):
            wave = np.rint(wave * np.iinfo(dtype).max)
        frame = av.AudioFrame.from_ndarray(wave.astype(dtype)[None, :], format=fmt,
                                           layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def _write_cues(out, stream, codec: str, track: int, seconds: Fraction) -> None:
    """Three cues spread over the clip, each on screen for a quarter of it (ms)."""
    total_ms = int(seconds * 1000)
    for j in range(3):
        text = f"{_LANGUAGES[track]} cue {j + 1}".encode()
        if codec == "mov_text":
            text = len(text).to_bytes(2, "big") + text
        packet = av.Packet(text)
        packet.stream = stream
        packet.time_base = Fraction(1, 1000)
        packet.pts = packet.dts = j * total_ms // 3
        packet.duration = total_ms // 4
        out.mux(packet)


def _chapters(n: int, seconds: Fraction) -> list[dict]:
    total_ms = int(seconds * 1000)
    return [{"id": k + 1, "start": k * total_ms // n, "end": (k + 1) * total_ms // n,
             "time_base": Fraction(1, 1000), "metadata": {"title": f"Chapter {k + 1}"}}
            for k in range(n)]


#: The attachment a Matroska clip carries: a stand-in for a font an ASS track would use.
ATTACHMENT = ("font.ttf", "application/x-truetype-font",
              b"\x00\x01\x00\x00" + bytes(range(256)) * 2)


def _check_args(muxing: _Muxing, *, width, height, frames, codec, pix_fmt, content, shots,
                lossless, attachment, audio_tracks, subtitle_tracks) -> None:
    def bad(what, expected, received, fix):
        raise ValueError(f"{what}: expected {expected}, received {received!r}; {fix}")

    subsampled, _ = _choice(_PIX_FMTS, pix_fmt, "pix_fmt")
    if subsampled and (width % 2 or height % 2):
        bad("size", f"even width and height for {pix_fmt}", (width, height),
            "use an even size or a yuv444p format")
    if content not in ("pan", "static", "noise"):
        bad("content", "'pan', 'static' or 'noise'", content, "pick one of those")
    if frames < 1:
        bad("frames", "at least 1", frames, "ask for one frame or more")
    if not 1 <= shots <= frames:
        bad("shots", f"1..frames ({frames})", shots, "ask for fewer shots or more frames")
    if lossless and codec not in _LOSSLESS_OPTIONS:
        bad("codec", f"one of {sorted(_LOSSLESS_OPTIONS)} for lossless=True", codec,
            "pick a codec with a lossless mode")
    if attachment and muxing.format != "matroska":
        bad("attachment", "a .mkv path", muxing.format, "write the clip as .mkv")
    for what, n in (("audio_tracks", audio_tracks), ("subtitle_tracks", subtitle_tracks)):
        if not 0 <= n <= len(_LANGUAGES):
            bad(what, f"0..{len(_LANGUAGES)}", n, "each track needs its own language")


def make_clip(path, *, width=64, height=48, frames=12, codec="libx264", pix_fmt="yuv420p",
              colorspace="bt709", color_range="tv", primaries="bt709", trc="bt709",
              vfr=False, audio_tracks=0, subtitle_tracks=0, chapters=0, attachment=False,
              content="pan", shots=1, lossless=False, keep_rgb=False, rotation=None,
              seed=0) -> ClipInfo:
    """Write a clip to ``path`` (.mkv, .mp4 or .mov) and return it as read back.

    Video: ``frames`` frames at 24 fps, or with ``vfr=True`` durations cycling through
    ``VFR_DURATIONS[format]``. ``content`` is ``"pan"`` (a window moving 1-2 px a frame
    across a photograph), ``"static"`` or ``"noise"``; ``shots`` cuts the clip into equal
    runs, each from a different photograph. ``lossless`` uses libx264 ``qp=0``, libx265
    ``lossless=1`` or ffv1. ``rotation`` (counter-clockwise degrees) is written as the
    stream's display matrix.

    Other streams: ``audio_tracks`` mono sines (Opus in .mkv, AAC otherwise) at 440, 660,
    880 ... Hz, ``subtitle_tracks`` tracks of three cues (SubRip in .mkv, mov_text
    otherwise), each track with its own ``language`` (eng, fra, deu ...) and a ``title``;
    ``chapters`` equal chapters titled "Chapter k"; ``attachment`` adds
    :data:`ATTACHMENT` (.mkv only).
    """
    path = Path(path)
    muxing = _muxing_for(path)
    _check_args(muxing, width=width, height=height, frames=frames, codec=codec,
                pix_fmt=pix_fmt, content=content, shots=shots, lossless=lossless,
                attachment=attachment, audio_tracks=audio_tracks,
                subtitle_tracks=subtitle_tracks)
    tags = (_choice(COLORSPACES, colorspace, "colorspace"),
            _choice(COLOR_RANGES, color_range, "color_range"),
            _choice(COLOR_PRIMARIES, primaries, "primaries"),
            _choice(COLOR_TRCS, trc, "trc"))
    rgb, shot_starts = _content(content, frames, shots, height, width, seed)
    planes = [yuv_planes(f, colorspace=colorspace, color_range=color_range, pix_fmt=pix_fmt)
              for f in rgb]
    durations = _durations(frames, vfr, muxing)
    seconds = sum(durations, Fraction(0))
    options = dict(_LOSSLESS_OPTIONS[codec]) if lossless else {}

    with av.open(str(path), "w", format=muxing.format) as out:
        video = _add_video(out, codec, width, height, pix_fmt, options, tags, rotation)
        audio = _add_tracks(out, muxing.audio_codec, audio_tracks, "Audio")
        subtitles = _add_tracks(out, muxing.subtitle_codec, subtitle_tracks, "Subtitles")
        if chapters:
            out.set_chapters(_chapters(chapters, seconds))
        if attachment:
            out.add_attachment(*ATTACHMENT)
        out.start_encoding()  # opens the encoders, so audio frame sizes are known
        _write_video(out, video, planes, pix_fmt, durations, tags)
        for k, stream in enumerate(audio):
            _write_sine(out, stream, 440.0 * (2 + k) / 2, seconds)
        for k, stream in enumerate(subtitles):
            _write_cues(out, stream, muxing.subtitle_codec, k, seconds)

    info = ClipInfo(path=path, frames=frames, pts=[], time_base=Fraction(0), width=width,
                    height=height, pix_fmt=pix_fmt, rgb=rgb if keep_rgb else None,
                    shot_starts=shot_starts)
    _read_back(info, tags, durations if vfr else None)
    return info


def _read_back(info: ClipInfo, tags: tuple[int, int, int, int],
               vfr_durations: list[Fraction] | None) -> None:
    with av.open(str(info.path)) as inp:
        stream = inp.streams.video[0]
        info.time_base = Fraction(stream.time_base)
        info.pts = [frame.pts for frame in inp.decode(stream)]
        ctx = stream.codec_context
        read = (ctx.colorspace, ctx.color_range, ctx.color_primaries, ctx.color_trc)
    where = f"{info.path.name}"
    if len(info.pts) != info.frames:
        raise ClipError(f"{where}: expected {info.frames} frames, decoded {len(info.pts)}")
    if read != tags:
        raise ClipError(f"{where}: expected colour tags (colorspace, range, primaries, trc) "
                        f"{tags}, the stream reports {read}")
    if vfr_durations is not None:
        starts = np.cumsum([Fraction(0)] + vfr_durations[:-1])
        expected = [t / info.time_base for t in starts]
        if expected != info.pts:
            raise ClipError(f"{where}: expected VFR pts {[str(t) for t in expected]} in "
                            f"{info.time_base}, read back {info.pts}; pick durations "
                            "that are whole ticks of the container's time base")


# -- other files ---------------------------------------------------------------------

def make_no_video(path, *, seconds: float = 0.5) -> Path:
    """An audio-only file (one mono 440 Hz track: Opus in .mkv, AAC in .mp4/.mov)."""
    path = Path(path)
    muxing = _muxing_for(path)
    with av.open(str(path), "w", format=muxing.format) as out:
        (stream,) = _add_tracks(out, muxing.audio_codec, 1, "Audio")
        out.start_encoding()
        _write_sine(out, stream, 440.0, Fraction(seconds))
    return path


def corrupt_copy(src, dst, how: str = "truncate") -> Path:
    """Copy ``src`` to ``dst`` damaged: ``"truncate"`` keeps the first 60% of the bytes,
    ``"garbage"`` overwrites the middle tenth (at least 256 bytes) with seeded random
    bytes, leaving the header and the end intact.

    An mp4 written here keeps its index (``moov``) at the end, so a truncated mp4 does
    not open at all; a truncated mkv opens and decodes its first frames - if there are
    any: in a tiny "pan" clip the first key frame (with x264's settings SEI) is most of
    the file, so truncate a ``content="noise"`` clip (12 frames: 6 decode).
    """
    data = bytearray(Path(src).read_bytes())
    if how == "truncate":
        data = data[: len(data) * 6 // 10]
    elif how == "garbage":
        size = min(len(data), max(256, len(data) // 10))
        start = (len(data) - size) // 2
        data[start : start + size] = np.random.default_rng(0).bytes(size)
    else:
        raise ValueError(f"how: expected 'truncate' or 'garbage', received {how!r}")
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def read_streams(path) -> dict:
    """What a test compares between an input and an output file.

    Returns ``{"format", "streams", "chapters", "attachments", "video"}``:

    * ``streams``: per stream index, ``type``, ``codec`` (the decoder's name: ``"srt"``
      for SubRip), ``language``
      and ``title`` (mp4's ``"name"`` when there is no ``"title"``), ``time_base``, and
      for every stream that is not video or an attachment, ``packets``: a list of
      ``(pts, dts, duration, bytes)`` in demux order, the demuxer's empty end-of-stream
      packets left out.
    * ``chapters``: ``(start, end, time_base, title)``; ``attachments``:
      ``(name, mimetype, data)``.
    * ``video`` (the first video stream, or None): ``index``, ``codec``, ``width``,
      ``height``, ``pix_fmt``, ``time_base``, the decoded frames' ``pts`` and ``frames``,
      the stream's colour tags ``colorspace``, ``color_range``, ``color_primaries``,
      ``color_trc`` (FFmpeg's ints), ``frame_colour`` (the same four of the first decoded
      frame) and ``rotation`` (counter-clockwise degrees of the first frame, 0 if none).
    """
    with av.open(str(path)) as inp:
        streams: dict[int, dict] = {}
        for stream in inp.streams:
            md = stream.metadata
            ctx = stream.codec_context
            entry = {"type": stream.type, "codec": ctx.name if ctx is not None else None,
                     "language": md.get("language"), "title": md.get("title", md.get("name")),
                     "time_base": stream.time_base}
            if stream.type not in ("video", "attachment"):
                entry["packets"] = []
            streams[stream.index] = entry
        chapters = [(c["start"], c["end"], c["time_base"], c["metadata"].get("title"))
                    for c in inp.chapters()]
        attachments = [(s.name, s.mimetype, s.data)
                       for s in inp.streams if s.type == "attachment"]
        video = inp.streams.video[0] if inp.streams.video else None
        decoded = []
        for packet in inp.demux():
            index = packet.stream.index
            if video is not None and index == video.index:
                decoded += packet.decode()
            elif "packets" in streams[index] and not (packet.size == 0 and packet.pts is None):
                streams[index]["packets"].append(
                    (packet.pts, packet.dts, packet.duration, bytes(packet)))
        video_info = None
        if video is not None:
            ctx = video.codec_context
            first = decoded[0] if decoded else None
            video_info = {
                "index": video.index, "codec": ctx.name, "width": ctx.width,
                "height": ctx.height, "pix_fmt": ctx.pix_fmt, "time_base": video.time_base,
                "pts": [f.pts for f in decoded], "frames": len(decoded),
                "colorspace": ctx.colorspace, "color_range": ctx.color_range,
                "color_primaries": ctx.color_primaries, "color_trc": ctx.color_trc,
                "frame_colour": None if first is None else (
                    first.colorspace, first.color_range, first.color_primaries,
                    first.color_trc),
                "rotation": 0 if first is None else first.rotation,
            }
        return {"format": inp.format.name, "streams": streams, "chapters": chapters,
                "attachments": attachments, "video": video_info}
