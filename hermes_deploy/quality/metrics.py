"""Image-quality metrics, numpy only.

Guarantees and units:

* Images are float arrays in [0, 1], HxWx3 RGB (or HxW grayscale). Integer arrays are
  rejected, so a uint8 image cannot be silently scored on the wrong scale.
* ``rgb_to_y`` returns the ITU-R BT.601 luma of MATLAB's ``rgb2ycbcr`` on the 0..255
  scale (values in [16, 235] for RGB input), float64. This is the convention of
  super-resolution papers, so numbers are comparable with published tables.
* ``psnr_y`` / ``ssim_y`` score that Y channel with peak 255, after removing ``crop``
  pixels from every border; results are float64 (``psnr_y`` is ``inf`` for identical
  images).
* ``ssim_y`` is Wang et al. 2004: 11x11 Gaussian window (sigma 1.5), K1=0.01, K2=0.03,
  L=255, statistics only where the window fits entirely ("valid" filtering).
* ``psnr`` is plain PSNR over every value of two same-shaped arrays, for comparing the
  outputs of two backends.
* Shape or dtype problems raise :class:`InvalidImageError`, a ``ValueError``.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidImageError

__all__ = ["InvalidImageError", "rgb_to_y", "psnr_y", "ssim_y", "psnr"]

# MATLAB rgb2ycbcr, Y row, for RGB in [0, 1] and output on the 0..255 scale.
_Y_OFFSET = 16.0
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])

_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_SSIM_K1, _SSIM_K2, _SSIM_L = 0.01, 0.03, 255.0




def _as_float_image(img: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(img)
    if not np.issubdtype(arr.dtype, np.floating):
        raise InvalidImageError(
            f"{name}: expected a float image in [0, 1], received dtype {arr.dtype}; "
            "divide integer images by their maximum value (e.g. 255) first"
        )
    is_gray = arr.ndim == 2
    is_rgb = arr.ndim == 3 and arr.shape[2] == 3
    if not (is_gray or is_rgb):
        raise InvalidImageError(
            f"{name}: expected shape (H, W, 3) or (H, W), received {arr.shape}"
        )
    return arr.astype(np.float64, copy=False)


def _check_same_shape(received: np.ndarray, reference: np.ndarray, names: str) -> None:
    if received.shape != reference.shape:
        raise InvalidImageError(
            f"{names}: expected {reference.shape}, received {received.shape}"
        )


def _crop_border(img: np.ndarray, crop: int) -> np.ndarray:
    if crop < 0 or int(crop) != crop:
        raise InvalidImageError(f"crop must be a non-negative integer, received {crop!r}")
    crop = int(crop)
    h, w = img.shape[:2]
    if 2 * crop >= h or 2 * crop >= w:
        raise InvalidImageError(
            f"crop={crop} removes the whole image: expected H and W > {2 * crop}, "
            f"received shape {img.shape}"
        )
    return img[crop : h - crop, crop : w - crop] if crop else img


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma (MATLAB ``rgb2ycbcr``) on the 0..255 scale, float64, shape HxW.

    A grayscale HxW image is already luminance: it is returned multiplied by 255,
    without the BT.601 offset, as the common SR evaluation code does for gray inputs.
    """
    arr = _as_float_image(img, "rgb_to_y")
    if arr.ndim == 2:
        return arr * 255.0
    return _Y_OFFSET + arr @ _Y_WEIGHTS


def _y_pair(pred: np.ndarray, gt: np.ndarray, crop: int) -> tuple[np.ndarray, np.ndarray]:
    p = _as_float_image(pred, "pred")
    g = _as_float_image(gt, "gt")
    _check_same_shape(p, g, "pred must have the shape of gt")
    return _crop_border(rgb_to_y(p), crop), _crop_border(rgb_to_y(g), crop)


def _psnr_from_mse(mse: float, peak: float) -> float:
    if mse == 0.0:
        return math.inf
    return float(10.0 * math.log10(peak * peak / mse))


def psnr_y(pred: np.ndarray, gt: np.ndarray, crop: int = 0) -> float:
    """PSNR in dB of the Y channels (peak 255), ``crop`` border pixels removed."""
    yp, yg = _y_pair(pred, gt, crop)
    return _psnr_from_mse(float(np.mean((yp - yg) ** 2)), 255.0)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """PSNR in dB over all values of two same-shaped arrays, float64 arithmetic."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    _check_same_shape(x, y, "a must have the shape of b")
    if x.size == 0:
        raise InvalidImageError("psnr: expected non-empty arrays, received size 0")
    return _psnr_from_mse(float(np.mean((x - y) ** 2)), float(peak))


def _gaussian_1d(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def _filter_valid(img: np.ndarray, taps: np.ndarray) -> np.ndarray:
    # Separable filtering as a short sum of shifted slices: exact, float64, and only
    # len(taps) vectorised passes per axis.
    n = len(taps)
    h, w = img.shape
    rows = sum(t * img[i : h - n + 1 + i, :] for i, t in enumerate(taps))
    return sum(t * rows[:, i : w - n + 1 + i] for i, t in enumerate(taps))


def ssim_y(pred: np.ndarray, gt: np.ndarray, crop: int = 0) -> float:
    """Mean SSIM (Wang et al. 2004) of the Y channels, ``crop`` border pixels removed."""
    yp, yg = _y_pair(pred, gt, crop)
    if min(yp.shape) < _SSIM_WINDOW:
        raise InvalidImageError(
            f"ssim_y: expected H and W >= {_SSIM_WINDOW} after cropping, "
            f"received {yp.shape}"
        )
    taps = _gaussian_1d(_SSIM_WINDOW, _SSIM_SIGMA)
    c1 = (_SSIM_K1 * _SSIM_L) ** 2
    c2 = (_SSIM_K2 * _SSIM_L) ** 2
    mu_p = _filter_valid(yp, taps)
    mu_g = _filter_valid(yg, taps)
    var_p = _filter_valid(yp * yp, taps) - mu_p**2
    var_g = _filter_valid(yg * yg, taps) - mu_g**2
    cov = _filter_valid(yp * yg, taps) - mu_p * mu_g
    num = (2.0 * mu_p * mu_g + c1) * (2.0 * cov + c2)
    den = (mu_p**2 + mu_g**2 + c1) * (var_p + var_g + c2)
    return float(np.mean(num / den))
