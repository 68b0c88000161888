"""YUV <-> RGB against an independent float64 reference: the matrix built from Kr, Kb
and inverted with numpy, the range from the code-value definitions of BT.601/709."""

from __future__ import annotations

import numpy as np
import pytest

from hermes_deploy.video import colour as C

KRKB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}
CODES = {"bt601": C.SMPTE170M, "bt709": C.BT709, "bt2020": C.BT2020_NCL}


def reference_yuv_to_rgb(y, u, v, bits, full, kr, kb):
    """float64 Y'CbCr (4:4:4 code values) -> R'G'B' by inverting the forward matrix."""
    kg = 1 - kr - kb
    forward = np.array([[kr, kg, kb],
                        [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
                        [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))]])
    if full:
        scale = 2 ** bits - 1
        e = np.stack([y / scale, (u - 2 ** (bits - 1)) / scale, (v - 2 ** (bits - 1)) / scale], -1)
    else:
        k = 2 ** (bits - 8)
        e = np.stack([(y - 16 * k) / (219 * k), (u - 128 * k) / (224 * k), (v - 128 * k) / (224 * k)], -1)
    return e.astype(np.float64) @ np.linalg.inv(forward).T


def psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2))


@pytest.mark.parametrize("matrix", list(KRKB))
@pytest.mark.parametrize("bits,full", [(8, True), (8, False), (10, False), (12, True)])
def test_444_conversion_matches_the_float64_reference(matrix, bits, full):
    rng = np.random.default_rng(bits)
    top = 2 ** bits - 1
    lo, hi = (0, top) if full else (16 << (bits - 8), 235 << (bits - 8))
    y = rng.integers(lo, hi + 1, (20, 30))
    u, v = (rng.integers(lo, hi + 1, (20, 30)) for _ in range(2))
    colour = C.Colour(CODES[matrix], full, 1, 1)
    fmt = C.PlaneFormat(bits, 1, 1)
    got = C.yuv_to_rgb(y.astype(fmt.dtype), u.astype(fmt.dtype), v.astype(fmt.dtype), fmt, colour)
    want = reference_yuv_to_rgb(y, u, v, bits, full, *KRKB[matrix])
    assert np.abs(got - want).max() < 1e-5
    # and back: quantized once, to within half a code value
    back = C.rgb_to_yuv(np.clip(want, 0, 1), fmt, colour)
    inside = np.all((want >= 0) & (want <= 1), axis=-1)
    for plane, orig in zip(back, (y, u, v)):
        assert np.abs(plane.astype(int) - orig)[inside].max() <= 1


def test_a_wrong_matrix_is_far_off():
    """What the round-trip tests of the video path would see with BT.601 decoded as 709."""
    rng = np.random.default_rng(0)
    rgb = rng.random((16, 16, 3))
    fmt = C.PlaneFormat(8, 1, 1)
    planes = C.rgb_to_yuv(rgb, fmt, C.Colour(C.SMPTE170M, True, 1, 1))
    right = C.yuv_to_rgb(*planes, fmt, C.Colour(C.SMPTE170M, True, 1, 1))
    wrong = C.yuv_to_rgb(*planes, fmt, C.Colour(C.BT709, True, 1, 1))
    assert psnr(right, rgb) > 45 > 30 > psnr(wrong, rgb)


@pytest.mark.parametrize("siting", ["left", "center", "topleft"])
def test_420_chroma_round_trip_on_a_smooth_image(siting):
    """Smooth colour survives 4:2:0 at every siting: the upsampler interpolates at the
    positions the downsampler put the samples (a siting mismatch shifts chroma)."""
    yy, xx = np.mgrid[0:48, 0:64] / 64.0
    rgb = np.stack([0.5 + 0.4 * np.sin(3 * xx), 0.5 + 0.4 * np.cos(2 * yy), 0.5 + 0.3 * np.sin(2 * xx + yy)], -1)
    fmt = C.PlaneFormat(10, 2, 2)
    colour = C.Colour(C.BT709, False, 1, 1, C.SITINGS[siting])
    back = C.yuv_to_rgb(*C.rgb_to_yuv(rgb, fmt, colour), fmt, colour)
    assert psnr(back[2:-2, 2:-2], rgb[2:-2, 2:-2]) > 50
    other = C.SITINGS["center" if siting != "center" else "left"]
    shifted = C.yuv_to_rgb(*C.rgb_to_yuv(rgb, fmt, colour), fmt, C.Colour(C.BT709, False, 1, 1, other))
    assert psnr(shifted[2:-2, 2:-2], rgb[2:-2, 2:-2]) < psnr(back[2:-2, 2:-2], rgb[2:-2, 2:-2])


@pytest.mark.parametrize("size,matrix", [((1920, 1080), C.BT709), ((1280, 720), C.BT709),
                                         ((720, 576), C.BT470BG), ((720, 480), C.SMPTE170M),
                                         ((640, 360), C.SMPTE170M)])
def test_untagged_streams_are_guessed_by_size(size, matrix):
    c = C.guess_colour(*size, 2, 0, 2, 2)
    assert c.matrix == matrix and not c.full_range
    assert set(c.guessed) == {"matrix", "range", "primaries", "transfer"}
    tagged = C.guess_colour(*size, C.BT2020_NCL, C.RANGE_FULL, 9, 16)
    assert tagged.guessed == () and tagged.full_range and tagged.hdr == "PQ"
