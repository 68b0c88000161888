"""YUV <-> RGB in float, with a stream's own matrix, range and chroma siting (numpy only).

FFmpeg's swscale, which most video tools let convert for them, assumes BT.601 when a
stream is untagged, mixes limited and full range and rounds 10-bit video through 8-bit
RGB. Here the planes are read as stored (8 to 16 bits), converted in float32 with the
matrix and range the stream is tagged with, chroma is interpolated at the positions its
siting says, and the way back quantizes once, to the output's own bit depth.

Tags are FFmpeg's integer codes (``AVColorSpace``, ``AVColorRange``,
``AVColorPrimaries``, ``AVColorTransferCharacteristic``), as PyAV reports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

# AVColorSpace codes -> (Kr, Kb) of the Y'CbCr matrix (ITU-T H.273 table 4)
BT709, UNSPECIFIED, FCC, BT470BG, SMPTE170M, SMPTE240M, BT2020_NCL = 1, 2, 4, 5, 6, 7, 9
MATRICES: dict[int, tuple[float, float]] = {
    BT709: (0.2126, 0.0722),
    FCC: (0.30, 0.11),
    BT470BG: (0.299, 0.114),
    SMPTE170M: (0.299, 0.114),
    SMPTE240M: (0.212, 0.087),
    BT2020_NCL: (0.2627, 0.0593),
}
MATRIX_NAMES = {BT709: "bt709", FCC: "fcc", BT470BG: "bt470bg", SMPTE170M: "smpte170m",
                SMPTE240M: "smpte240m", BT2020_NCL: "bt2020nc"}
RANGE_LIMITED, RANGE_FULL = 1, 2  # AVColorRange: MPEG (tv), JPEG (pc)
# AVColorTransferCharacteristic codes of high dynamic range video
TRC_PQ, TRC_HLG = 16, 18
TRC_NAMES = {1: "bt709", 6: "smpte170m", 13: "srgb", 14: "bt2020-10", 15: "bt2020-12",
             TRC_PQ: "smpte2084 (PQ)", TRC_HLG: "arib-std-b67 (HLG)"}


@dataclass(frozen=True)
class Siting:
    """Where a chroma sample sits, in luma samples from the luma sample of the same
    index times the subsampling factor: 0 co-sited, 0.5 between two luma samples."""
    name: str
    x: float
    y: float


SITINGS = {"left": Siting("left", 0.0, 0.5),  # MPEG-2, H.264, HEVC: the default for 4:2:0
           "center": Siting("center", 0.5, 0.5),  # MPEG-1, JPEG
           "topleft": Siting("topleft", 0.0, 0.0)}  # BT.2020 / UHD
# AVChromaLocation code -> siting
CHROMA_LOCATIONS = {1: "left", 2: "center", 3: "topleft"}


@dataclass(frozen=True)
class Colour:
    """How a stream's samples map to RGB, and the tags its output carries."""
    matrix: int
    full_range: bool
    primaries: int
    transfer: int
    siting: Siting = SITINGS["left"]
    guessed: tuple[str, ...] = field(default=(), compare=False)  # tags that were not in the stream

    @property
    def range_code(self) -> int:
        return RANGE_FULL if self.full_range else RANGE_LIMITED

    @property
    def hdr(self) -> str | None:
        return {TRC_PQ: "PQ", TRC_HLG: "HLG"}.get(self.transfer)

    def describe(self) -> str:
        return (f"{MATRIX_NAMES.get(self.matrix, self.matrix)} matrix, "
                f"{'full' if self.full_range else 'limited'} range, "
                f"transfer {TRC_NAMES.get(self.transfer, self.transfer)}, "
                f"chroma sited {self.siting.name}")


def guess_colour(width: int, height: int, matrix: int, range_code: int, primaries: int,
                 transfer: int, full_range_format: bool = False,
                 chroma_location: int = 0, codec: str = "") -> Colour:
    """A stream's colour from its tags, untagged ones guessed by resolution as players do
    (mpv, VLC): HD and larger is BT.709; SD is BT.601 (625 lines: BT.470BG primaries,
    else SMPTE 170M); YUV is limited range unless the pixel format is a JPEG one. Chroma
    is sited left (MPEG-2, H.264, HEVC, VP9, AV1) except in (Motion) JPEG: center."""
    guessed = []
    hd = width >= 1280 or height > 576
    sd_625 = height in (576, 288)
    if matrix not in MATRICES:
        if matrix not in (0, UNSPECIFIED, 3):
            raise InputError(f"unsupported colour matrix code {matrix} (hermes-deploy converts "
                             f"{', '.join(sorted(set(MATRIX_NAMES.values())))}); convert the "
                             "video to one of them first")
        matrix = BT709 if hd else (BT470BG if sd_625 else SMPTE170M)
        guessed.append("matrix")
    if range_code not in (RANGE_LIMITED, RANGE_FULL):
        range_code = RANGE_FULL if full_range_format else RANGE_LIMITED
        guessed.append("range")
    if primaries in (0, 2, 3):
        primaries = {BT709: 1, BT470BG: 5, SMPTE170M: 6, BT2020_NCL: 9}.get(matrix, 1)
        guessed.append("primaries")
    if transfer in (0, 2, 3):
        transfer = 1 if matrix != BT2020_NCL else 14
        guessed.append("transfer")
    siting = SITINGS[CHROMA_LOCATIONS.get(chroma_location,
                                         "center" if codec == "mjpeg" else "left")]
    return Colour(matrix, range_code == RANGE_FULL, primaries, transfer, siting, tuple(guessed))


def _scales(bits: int, full_range: bool) -> tuple[float, float, float, float]:
    """(luma offset, luma scale, chroma offset, chroma scale) in code values."""
    if full_range:
        top = float((1 << bits) - 1)
        return 0.0, top, float(1 << (bits - 1)), top
    k = float(1 << (bits - 8))
    return 16.0 * k, 219.0 * k, 128.0 * k, 224.0 * k


def _coefficients(matrix: int) -> tuple[float, float, float]:
    kr, kb = MATRICES[matrix]
    return kr, 1.0 - kr - kb, kb


# ----------------------------------------------------------------------------- chroma


def _upsample(c: np.ndarray, factor: int, n: int, offset: float, axis: int) -> np.ndarray:
    """Linear interpolation of chroma samples sitting at luma positions
    ``factor*k + offset`` to the ``n`` luma positions of ``axis`` (edges held)."""
    if factor == 1:
        return c
    pos = (np.arange(n, dtype=np.float64) - offset) / factor
    i0 = np.floor(pos).astype(np.intp)
    frac = (pos - i0).astype(np.float32)
    m = c.shape[axis]
    lo = np.take(c, np.clip(i0, 0, m - 1), axis=axis)
    hi = np.take(c, np.clip(i0 + 1, 0, m - 1), axis=axis)
    shape = [1, 1]
    shape[axis] = n
    frac = frac.reshape(shape)
    return lo + (hi - lo) * frac


def _downsample(c: np.ndarray, factor: int, m: int, offset: float, axis: int) -> np.ndarray:
    """``m`` chroma samples at luma positions ``factor*k + offset`` from full-resolution
    ``c``: a box of two for samples between two luma samples, [1 2 1]/4 for co-sited ones
    (the filters that the upsampling above inverts best)."""
    if factor == 1:
        return c
    n = c.shape[axis]
    k = np.arange(m)
    if offset >= 0.5:
        a = np.take(c, np.clip(2 * k, 0, n - 1), axis=axis)
        b = np.take(c, np.clip(2 * k + 1, 0, n - 1), axis=axis)
        return (a + b) * 0.5
    left = np.take(c, np.clip(2 * k - 1, 0, n - 1), axis=axis)
    mid = np.take(c, np.clip(2 * k, 0, n - 1), axis=axis)
    right = np.take(c, np.clip(2 * k + 1, 0, n - 1), axis=axis)
    return (left + 2.0 * mid + right) * 0.25


# ----------------------------------------------------------------------------- planes


@dataclass(frozen=True)
class PlaneFormat:
    """A planar Y'CbCr layout: bit depth and chroma subsampling (x, y factors)."""
    bits: int
    sub_x: int
    sub_y: int

    @property
    def dtype(self):
        return np.uint8 if self.bits <= 8 else np.uint16


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, fmt: PlaneFormat,
               colour: Colour) -> np.ndarray:
    """Y'CbCr planes (as stored, any bit depth) -> (H, W, 3) float32 R'G'B' (not clipped:
    out-of-gamut values are kept for the caller to decide)."""
    h, w = y.shape
    y0, ys, c0, cs = _scales(fmt.bits, colour.full_range)
    yf = (y.astype(np.float32) - y0) * np.float32(1.0 / ys)
    cb = (u.astype(np.float32) - c0) * np.float32(1.0 / cs)
    cr = (v.astype(np.float32) - c0) * np.float32(1.0 / cs)
    s = colour.siting
    cb = _upsample(_upsample(cb, fmt.sub_y, h, s.y, 0), fmt.sub_x, w, s.x, 1)
    cr = _upsample(_upsample(cr, fmt.sub_y, h, s.y, 0), fmt.sub_x, w, s.x, 1)
    kr, kg, kb = _coefficients(colour.matrix)
    out = np.empty((h, w, 3), np.float32)
    out[..., 0] = yf + np.float32(2.0 * (1.0 - kr)) * cr
    out[..., 2] = yf + np.float32(2.0 * (1.0 - kb)) * cb
    out[..., 1] = (yf - np.float32(kr) * out[..., 0] - np.float32(kb) * out[..., 2]) * np.float32(1.0 / kg)
    return out


def rgb_to_yuv(rgb: np.ndarray, fmt: PlaneFormat, colour: Colour
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W, 3) float R'G'B' in [0, 1] -> Y'CbCr planes quantized once, to ``fmt``."""
    h, w = rgb.shape[:2]
    kr, kg, kb = _coefficients(colour.matrix)
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    yf = np.float32(kr) * r + np.float32(kg) * g + np.float32(kb) * b
    cb = (b - yf) * np.float32(0.5 / (1.0 - kb))
    cr = (r - yf) * np.float32(0.5 / (1.0 - kr))
    s = colour.siting
    ch, cw = -(-h // fmt.sub_y), -(-w // fmt.sub_x)
    cb = _downsample(_downsample(cb, fmt.sub_y, ch, s.y, 0), fmt.sub_x, cw, s.x, 1)
    cr = _downsample(_downsample(cr, fmt.sub_y, ch, s.y, 0), fmt.sub_x, cw, s.x, 1)
    y0, ys, c0, cs = _scales(fmt.bits, colour.full_range)
    top = (1 << fmt.bits) - 1

    def code(x, offset, scale):
        return np.clip(np.rint(x * np.float32(scale) + np.float32(offset)), 0, top).astype(fmt.dtype)

    return code(yf, y0, ys), code(cb, c0, cs), code(cr, c0, cs)

