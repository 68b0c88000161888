"""Encoder settings for restored video: codec, quality, preset and pixel format.

Defaults a person would pick: H.264 (libx264) at CRF 18, preset ``medium``, in the
source's own pixel format (10-bit sources stay 10-bit); VP9 for WebM. ``ffv1`` is
lossless, for archives; ProRes (``prores_ks``, profile HQ) for editing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import InputError
from .colour import Colour, SITINGS
from .frames import plane_format

#: codec -> (default quality, quality's meaning, default preset or None)
CODECS = {
    "libx264": (18, "CRF 0-51, lower is better", "medium"),
    "libx265": (20, "CRF 0-51, lower is better", "medium"),
    "libsvtav1": (28, "CRF 1-63, lower is better", "8"),
    "libvpx-vp9": (28, "CRF 0-63, lower is better", None),
    "ffv1": (None, "lossless", None),
    "prores_ks": (None, "profile HQ", None),
}
ALIASES = {"x264": "libx264", "h264": "libx264", "avc": "libx264", "x265": "libx265",
           "h265": "libx265", "hevc": "libx265", "av1": "libsvtav1", "svtav1": "libsvtav1",
           "vp9": "libvpx-vp9", "prores": "prores_ks"}
#: output containers and the codecs each takes
CONTAINERS = {
    ".mkv": tuple(CODECS),
    ".mp4": ("libx264", "libx265", "libsvtav1", "libvpx-vp9"),
    ".m4v": ("libx264", "libx265"),
    ".mov": ("libx264", "libx265", "prores_ks", "ffv1"),
    ".webm": ("libvpx-vp9", "libsvtav1"),
}
#: the container a source of another kind (.avi, .ts, .y4m, ...) is written to
FALLBACK_CONTAINER = ".mkv"


@dataclass(frozen=True)
class EncodeOptions:
    codec: str = "auto"  # auto: libx264, or libvpx-vp9 into WebM
    quality: int | None = None  # CRF; None: the codec's default
    preset: str | None = None
    pix_fmt: str = "auto"  # auto: the source's (planar YUV), else yuv444p at its depth


@dataclass(frozen=True)
class Encoder:
    """Resolved settings for one output."""
    codec: str
    pix_fmt: str
    options: dict[str, str]
    colour: Colour
    suffix: str

    def describe(self) -> str:
        q = ", ".join(f"{k} {v}" for k, v in self.options.items() if k in ("crf", "preset", "profile"))
        return f"{self.codec} {self.pix_fmt}" + (f" ({q})" if q else "")


def output_suffix(source_suffix: str) -> str:
    s = source_suffix.lower()
    return s if s in CONTAINERS else FALLBACK_CONTAINER


def resolve(opts: EncodeOptions, source_pix_fmt: str, colour: Colour, suffix: str) -> Encoder:
    """The encoder for one output; bad settings fail here in one line, before any work."""
    import av

    codec = ALIASES.get(opts.codec.lower(), opts.codec.lower())
    if codec == "auto":
        codec = "libvpx-vp9" if suffix == ".webm" else "libx264"
    if codec not in CODECS:
        raise InputError(f"--codec {opts.codec} is not one of {', '.join(CODECS)}")
    if codec not in CONTAINERS[suffix]:
        raise InputError(f"{suffix} files cannot hold {codec}; pick one of "
                         f"{', '.join(CONTAINERS[suffix])}")
    if codec not in av.codecs_available:
        raise InputError(f"this FFmpeg build has no {codec} encoder; pick another --codec")
    supported = {f.name for f in av.codec.Codec(codec, "w").video_formats or ()}
    src = plane_format(source_pix_fmt)
    if opts.pix_fmt != "auto":
        pix_fmt = opts.pix_fmt
        if plane_format(pix_fmt) is None:
            raise InputError(f"--pix-fmt {pix_fmt} is not planar YUV; pick e.g. yuv420p, "
                             "yuv420p10le, yuv444p10le")
    elif src is not None:
        pix_fmt = source_pix_fmt.replace("yuvj", "yuv")
    else:  # RGB or grey source: 4:4:4 at its depth
        bits = 10 if any(t in source_pix_fmt for t in ("10", "12", "16", "48")) else 8
        pix_fmt = "yuv444p" if bits == 8 else "yuv444p10le"
    if codec == "prores_ks" and opts.pix_fmt == "auto":
        pix_fmt = "yuv422p10le" if "444" not in pix_fmt else "yuv444p10le"
    if supported and pix_fmt not in supported:
        fmt = plane_format(pix_fmt)
        fallback = [f for f in (pix_fmt.replace("444", "420").replace("422", "420"),
                                "yuv420p10le" if fmt and fmt.bits > 8 else "yuv420p")
                    if f in supported]
        if opts.pix_fmt != "auto" or not fallback:
            raise InputError(f"{codec} cannot encode {pix_fmt}; pick --pix-fmt from "
                             f"{', '.join(sorted(f for f in supported if plane_format(f)))}")
        pix_fmt = fallback[0]
    default_q, _, default_preset = CODECS[codec]
    quality = default_q if opts.quality is None else opts.quality
    preset = opts.preset or default_preset
    options: dict[str, str] = {}
    if codec in ("libx264", "libx265"):
        options.update(crf=str(quality), preset=preset)
        if codec == "libx265":
            options["x265-params"] = "log-level=error"
    elif codec == "libsvtav1":
        options.update(crf=str(quality), preset=preset)
    elif codec == "libvpx-vp9":
        options.update(crf=str(quality), b="0", row_mt="1")
    elif codec == "ffv1":
        options.update(level="3", slicecrc="1")
    elif codec == "prores_ks":
        options.update(profile="3")
    # PyAV cannot tag chroma siting: the output is sited where decoders assume it
    # untagged (left, the MPEG-2 / H.264 / HEVC default), whatever the source's was
    out_colour = replace(colour, siting=SITINGS["left"], guessed=())
    return Encoder(codec=codec, pix_fmt=pix_fmt, options=options, colour=out_colour, suffix=suffix)
