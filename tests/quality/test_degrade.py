"""Degradations against brute-force references and analytic properties."""

import dataclasses

import numpy as np
import pytest

from hermes_deploy.quality import (
    Degradation,
    add_gaussian_noise,
    augment,
    bicubic_down,
    bicubic_up,
    blur,
    gaussian_kernel,
    mod_crop,
    motion_kernel,
    psnr,
    random_crop_pair,
)


def _smooth(h, w, c=3):
    yy, xx = np.mgrid[0:h, 0:w]
    wave_y = np.cos(2 * np.pi * yy / 53)
    img = [0.5 + 0.3 * np.sin(2 * np.pi * xx / 41 + k) * wave_y for k in range(c)]
    return np.stack(img, axis=2).astype(np.float32)


def _random(h, w, c=3, seed=0):
    return np.random.default_rng(seed).random((h, w, c)).astype(np.float32)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_constant_stays_constant(scale):
    img = np.full((37, 53, 3), 0.37, np.float32)
    down = bicubic_down(img, scale)
    assert np.allclose(down, 0.37, atol=1e-6)
    assert np.allclose(bicubic_up(down, scale), 0.37, atol=1e-6)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_shapes_odd_sizes(scale):
    img = _random(37, 53)
    cropped = mod_crop(img, scale)
    assert cropped.shape == (37 - 37 % scale, 53 - 53 % scale, 3)
    assert np.array_equal(cropped, img[: cropped.shape[0], : cropped.shape[1]])
    down = bicubic_down(img, scale)
    assert down.shape == (37 // scale, 53 // scale, 3) and down.dtype == np.float32
    up = bicubic_up(down, scale)
    assert up.shape == cropped.shape and up.dtype == np.float32
    assert down.flags.c_contiguous and up.flags.c_contiguous


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_down_then_up_of_smooth_image_is_close(scale):
    img = mod_crop(_smooth(96, 130), scale)
    restored = bicubic_up(bicubic_down(img, scale), scale)
    assert psnr(restored, img) > 35


def test_bicubic_down_antialiases():
    # A pixel-level checkerboard is above Nyquist after downscaling: an antialiased
    # filter averages it to grey instead of aliasing it into a pattern.
    yy, xx = np.mgrid[0:64, 0:64]
    board = np.repeat(((xx + yy) % 2).astype(np.float32)[..., None], 3, axis=2)
    assert np.abs(bicubic_down(board, 4)[2:-2, 2:-2] - 0.5).max() < 0.02


def test_bicubic_clips_to_unit_range():
    img = np.zeros((32, 32, 3), np.float32)
    img[:, 16:] = 1.0
    for out in (bicubic_down(img, 2), bicubic_up(img, 2)):
        assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("size,sigma", [(7, 1.0), (15, 1.6), (21, 3.0)])
def test_gaussian_kernel(size, sigma):
    k = gaussian_kernel(size, sigma)
    assert k.shape == (size, size) and abs(k.sum() - 1) < 1e-12
    assert np.allclose(k, k.T) and np.allclose(k, k[::-1, ::-1])
    r = np.arange(size) - size // 2
    var = np.sum(k * (r[None, :] ** 2))
    assert abs(var - sigma**2) < 0.05 * sigma**2  # truncation shrinks it slightly


@pytest.mark.parametrize("angle", [0, 30, 45, 90, 137])
def test_motion_kernel_is_a_centred_line(angle):
    size, length = 15, 10
    k = motion_kernel(size, angle, length)
    assert k.shape == (size, size) and abs(k.sum() - 1) < 1e-12 and k.min() >= 0
    rows, cols = np.mgrid[0:size, 0:size] - size // 2
    x, y = cols, -rows  # y up
    assert abs(np.sum(k * x)) < 1e-9 and abs(np.sum(k * y)) < 1e-9
    t = np.radians(angle)
    along = x * np.cos(t) + y * np.sin(t)
    across = -x * np.sin(t) + y * np.cos(t)
    # A uniform segment of length L has variance L^2/12 along it; bilinear splatting
    # adds at most 1/6 per axis.
    assert abs(np.sum(k * along**2) - length**2 / 12) < 0.4
    assert np.sum(k * across**2) < 0.35


def test_motion_kernel_zero_length_is_delta():
    k = motion_kernel(5, 33.0, 0)
    assert k[2, 2] == pytest.approx(1.0) and np.count_nonzero(k > 1e-12) == 1


def test_blur_delta_is_identity():
    img = _random(20, 17)
    delta = np.zeros((5, 5))
    delta[2, 2] = 1
    assert np.allclose(blur(img, delta), img, atol=1e-6)


@pytest.mark.parametrize("kernel", [gaussian_kernel(9, 2.0), motion_kernel(11, 20, 9)])
def test_blur_constant_stays_constant(kernel):
    img = np.full((24, 31, 2), 0.6, np.float32)
    assert np.allclose(blur(img, kernel), 0.6, atol=1e-6)


def _reflect_index(i, n):
    # numpy "reflect": ... 2 1 | 0 1 2 ... n-1 | n-2 n-3 ...
    period = 2 * (n - 1)
    i = abs(i) % period
    return period - i if i >= n else i


def _brute_convolve(img, k):
    h, w, c = img.shape
    kh, kw = k.shape
    out = np.zeros((h, w, c))
    for y in range(h):
        for x in range(w):
            acc = np.zeros(c)
            for a in range(kh):
                for b in range(kw):
                    yy = _reflect_index(y - (a - kh // 2), h)
                    xx = _reflect_index(x - (b - kw // 2), w)
                    acc += k[a, b] * img[yy, xx]
            out[y, x] = acc
    return out


def test_blur_matches_brute_force_convolution():
    img = _random(9, 11, 2, seed=3)
    k = np.random.default_rng(4).random((5, 3))  # asymmetric: checks the kernel flip
    got = blur(img, k)
    assert got.shape == img.shape and got.dtype == np.float32
    assert np.allclose(got, _brute_convolve(img.astype(np.float64), k), atol=1e-5)


def test_blur_handles_512_image_and_21x21_kernel():
    img = _random(512, 512)
    out = blur(img, gaussian_kernel(21, 3.0))
    assert out.shape == img.shape


def test_noise_reproducible_and_has_sigma():
    img = np.full((256, 256, 3), 0.5, np.float32)
    a = add_gaussian_noise(img, 0.05, np.random.default_rng(7))
    b = add_gaussian_noise(img, 0.05, np.random.default_rng(7))
    c = add_gaussian_noise(img, 0.05, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.dtype == np.float32
    assert abs(float(np.std(a - img)) - 0.05) < 0.001
    assert abs(float(np.mean(a)) - 0.5) < 0.001
    strong = add_gaussian_noise(img, 0.8, np.random.default_rng(0))
    assert strong.min() >= 0 and strong.max() <= 1
    assert np.array_equal(img, np.full_like(img, 0.5))  # input untouched


def test_noise_rejects_0_255_scale_sigma():
    with pytest.raises(ValueError, match="25/255"):
        add_gaussian_noise(np.zeros((4, 4, 3), np.float32), 25, np.random.default_rng())


def test_degradation_sr():
    deg = Degradation.sr(3)
    gt = _smooth(50, 64)
    lq = deg.apply(gt, np.random.default_rng(0))
    assert np.array_equal(lq, bicubic_down(gt, 3))
    base = deg.baseline(lq)
    assert base.shape == deg.target(gt).shape == (48, 63, 3)
    assert psnr(base, deg.target(gt)) > 35


def test_degradation_denoise_and_deblur():
    gt = _smooth(40, 40)
    den = Degradation.denoise(25 / 255)
    lq = den.apply(gt, np.random.default_rng(1))
    assert np.array_equal(lq, add_gaussian_noise(gt, 25 / 255, np.random.default_rng(1)))
    assert np.array_equal(den.baseline(lq), lq) and den.target(gt).shape == gt.shape
    gauss = Degradation.deblur("gaussian")
    expected = blur(gt, gaussian_kernel(gauss.GAUSSIAN_SIZE, gauss.GAUSSIAN_SIGMA))
    assert np.allclose(gauss.apply(gt, np.random.default_rng(0)), expected, atol=1e-6)
    motion = Degradation.deblur("motion", noise_sigma=0.01)
    m1 = motion.apply(gt, np.random.default_rng(5))
    m2 = motion.apply(gt, np.random.default_rng(5))
    assert np.array_equal(m1, m2) and m1.shape == gt.shape and m1.dtype == np.float32
    for d in (den, gauss, motion, Degradation.sr(2)):
        text = d.describe()
        assert text and "\n" not in text


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kind="sr", scale=1),
        dict(kind="sr", scale=2, noise_sigma=0.1),
        dict(kind="denoise", noise_sigma=0.0),
        dict(kind="denoise", noise_sigma=0.1, scale=2),
        dict(kind="deblur"),
        dict(kind="deblur", blur="box"),
        dict(kind="inpaint"),
        dict(kind="denoise", noise_sigma=25.0),
    ],
)
def test_degradation_rejects_inconsistent_settings(kwargs):
    with pytest.raises(ValueError):
        Degradation(**kwargs)


def test_degradation_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Degradation.sr(2).scale = 4


def test_random_crop_is_a_window_of_gt():
    h, w = 30, 41
    gt = (np.arange(h * w * 3, dtype=np.float32) / (h * w * 3)).reshape(h, w, 3)
    for seed in range(20):
        crop = random_crop_pair(gt, 12, np.random.default_rng(seed))
        assert crop.shape == (12, 12, 3) and crop.dtype == np.float32 and crop.flags.c_contiguous
        top, left = divmod(int(np.argmin(np.abs(gt[..., 0] - crop[0, 0, 0]))), w)
        assert np.array_equal(crop, gt[top : top + 12, left : left + 12])
    with pytest.raises(ValueError):
        random_crop_pair(gt, 31, np.random.default_rng(0))


def _dihedral(img):
    out = []
    for k in range(4):
        r = np.rot90(img, k)
        out += [r, r[:, ::-1]]
    return out


def test_augment_covers_all_dihedral_variants():
    img = np.arange(2 * 3 * 1, dtype=np.float32).reshape(2, 3, 1) / 6
    variants = {v.shape + (v.tobytes(),) for v in _dihedral(img)}
    assert len(variants) == 8
    seen = set()
    for seed in range(200):
        out = augment(img, np.random.default_rng(seed))
        assert out.dtype == np.float32 and out.flags.c_contiguous
        assert np.array_equal(np.sort(out, axis=None), np.sort(img, axis=None))
        key = out.shape + (out.tobytes(),)
        assert key in variants
        seen.add(key)
    assert seen == variants
