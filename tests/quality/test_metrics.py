"""Metrics against independent float64 references written here, and scikit-image."""

import math

import numpy as np
import pytest

from hermes_deploy.quality import InvalidImageError, psnr, psnr_y, rgb_to_y, ssim_y


def _pair(shape=(40, 52, 3), noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 0.5 + 0.25 * np.sin(xx / 5.0)[..., None] * np.cos(yy[..., None] / 7.0 + np.arange(3))
    gt = np.clip(base + 0.1 * rng.random(shape), 0, 1)
    pred = np.clip(gt + noise * rng.standard_normal(shape), 0, 1)
    return pred.astype(np.float32), gt.astype(np.float32)


def _ref_y(img):
    img = img.astype(np.float64)
    return 16.0 + 65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]


def _ref_psnr_y(pred, gt, crop):
    d = _ref_y(pred) - _ref_y(gt)
    if crop:
        d = d[crop:-crop, crop:-crop]
    mse = np.sum(d * d) / d.size
    return 20.0 * math.log10(255.0) - 10.0 * math.log10(mse)


def test_rgb_to_y_range_and_gray():
    black, white = np.zeros((2, 2, 3)), np.ones((2, 2, 3))
    assert np.allclose(rgb_to_y(black), 16.0) and np.allclose(rgb_to_y(white), 235.0)
    gray = np.linspace(0, 1, 12).reshape(3, 4)
    assert np.array_equal(rgb_to_y(gray), gray * 255.0)
    assert rgb_to_y(np.zeros((2, 2, 3), np.float32)).dtype == np.float64


@pytest.mark.parametrize("crop", [0, 1, 4])
def test_psnr_y_matches_reference(crop):
    pred, gt = _pair()
    assert abs(psnr_y(pred, gt, crop=crop) - _ref_psnr_y(pred, gt, crop)) < 1e-9


def test_psnr_y_crop_ignores_border():
    pred, gt = _pair(noise=0.0)
    pred = pred.copy()
    pred[:3] = 1 - pred[:3]
    assert psnr_y(pred, gt, crop=3) == math.inf
    assert psnr_y(pred, gt, crop=2) < 40


def test_psnr_identical_is_inf():
    _, gt = _pair()
    assert psnr_y(gt, gt.copy()) == math.inf
    assert psnr(gt, gt.copy()) == math.inf


def test_plain_psnr_matches_reference():
    pred, gt = _pair()
    d = pred.astype(np.float64) - gt.astype(np.float64)
    ref = 10.0 * math.log10(4.0 / (np.sum(d * d) / d.size))
    assert abs(psnr(pred, gt, peak=2.0) - ref) < 1e-9
    assert isinstance(psnr(pred, gt), float)


@pytest.mark.parametrize("fn", [psnr_y, ssim_y, psnr])
def test_shape_mismatch_raises(fn):
    a, b = np.zeros((16, 16, 3), np.float32), np.zeros((16, 17, 3), np.float32)
    with pytest.raises(ValueError, match=r"expected \(16, 16, 3\).*received \(16, 17, 3\)"):
        fn(b, a)
    with pytest.raises(InvalidImageError, match=r"shape of"):
        fn(a, b)


def test_integer_images_rejected():
    a = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        psnr_y(a, a)


def test_crop_too_large_raises():
    pred, gt = _pair(shape=(10, 10, 3))
    with pytest.raises(ValueError, match="crop"):
        psnr_y(pred, gt, crop=5)


def test_ssim_identical_is_one():
    _, gt = _pair()
    assert abs(ssim_y(gt, gt.copy()) - 1.0) < 1e-12


def test_ssim_decreases_with_noise():
    _, gt = _pair(noise=0.0)
    noise = np.random.default_rng(1).standard_normal(gt.shape)
    scores = [ssim_y(np.clip(gt + s * noise, 0, 1), gt) for s in (0.005, 0.01, 0.03, 0.1, 0.3)]
    assert all(a > b for a, b in zip(scores, scores[1:])), scores


def _brute_ssim(y1, y2):
    # Direct per-window Wang et al. statistics with an explicit 2-D Gaussian window.
    r = np.arange(11) - 5.0
    win = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    win /= win.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for i in range(y1.shape[0] - 10):
        for j in range(y1.shape[1] - 10):
            p, q = y1[i : i + 11, j : j + 11], y2[i : i + 11, j : j + 11]
            mp, mq = np.sum(win * p), np.sum(win * q)
            vp, vq = np.sum(win * (p - mp) ** 2), np.sum(win * (q - mq) ** 2)
            cov = np.sum(win * (p - mp) * (q - mq))
            num = (2 * mp * mq + c1) * (2 * cov + c2)
            vals.append(num / ((mp**2 + mq**2 + c1) * (vp + vq + c2)))
    return float(np.mean(vals))


@pytest.mark.parametrize("crop", [0, 2])
def test_ssim_matches_brute_force(crop):
    pred, gt = _pair(shape=(19, 23, 3), noise=0.08)
    ref = _brute_ssim(*(_ref_y(x)[crop : 19 - crop, crop : 23 - crop] for x in (pred, gt)))
    assert abs(ssim_y(pred, gt, crop=crop) - ref) < 1e-10


@pytest.mark.parametrize("crop", [0, 4])
def test_ssim_matches_skimage(crop):
    metrics = pytest.importorskip("skimage.metrics")
    pred, gt = _pair(shape=(64, 80, 3), noise=0.1)
    yp, yg = (_ref_y(x)[crop : 64 - crop, crop : 80 - crop] for x in (pred, gt))
    # skimage filters with reflect padding over the whole image but averages the SSIM map
    # only after dropping (win_size - 1) // 2 = 5 border pixels, i.e. exactly where our
    # 11x11 window fits: the two are the same quantity, up to rounding.
    ref = metrics.structural_similarity(
        yp, yg, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert abs(ssim_y(pred, gt, crop=crop) - ref) < 1e-9


def test_ssim_too_small_raises():
    a = np.zeros((10, 30, 3), np.float32)
    with pytest.raises(ValueError, match="11"):
        ssim_y(a, a)
