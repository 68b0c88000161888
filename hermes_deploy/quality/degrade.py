"""Synthetic degradations for training and evaluating restoration models, numpy + Pillow.

Guarantees and units:

* Images are numpy float32 arrays HxWxC with values in [0, 1]; every function returns a
  new C-contiguous float32 array and never modifies its input.
* Resizing uses Pillow's bicubic filter (a = -0.5) on each channel as a 32-bit float
  image, so no 8-bit quantisation happens. Downscaling is antialiased, which matches
  MATLAB ``imresize`` (the SR convention) except within ~2 pixels of the border, where
  Pillow renormalises the truncated kernel instead of mirroring. Bicubic overshoot is
  clipped to [0, 1].
* ``bicubic_down`` first applies ``mod_crop`` (drops the bottom/right remainder rows and
  columns), so the output is exactly (H // s) x (W // s); ``bicubic_up`` returns exactly
  (s*H) x (s*W).
* Kernels are float64, non-negative and sum to 1. ``blur`` is a true 2-D convolution
  (kernel flipped) with numpy's "reflect" border (mirror without repeating the edge
  pixel, OpenCV's default), same output size.
* Noise sigma is on the 0..1 intensity scale (sigma 25 on the 0..255 scale is 25/255).
* Randomness comes only from the ``np.random.Generator`` passed in, so a seeded
  generator reproduces results exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import InvalidArgumentError, InvalidImageError

__all__ = [
    "mod_crop",
    "bicubic_down",
    "bicubic_up",
    "gaussian_kernel",
    "motion_kernel",
    "blur",
    "add_gaussian_noise",
    "Degradation",
    "random_crop_pair",
    "augment",
]


def _check_image(img: np.ndarray) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim != 3 or 0 in arr.shape:
        raise InvalidImageError(
            f"expected a non-empty image of shape (H, W, C), received {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise InvalidImageError(f"expected a float image in [0, 1], received dtype {arr.dtype}")
    return arr


def _check_scale(scale: int) -> int:
    if isinstance(scale, bool) or int(scale) != scale or scale < 1:
        raise InvalidArgumentError(f"scale must be a positive integer, received {scale!r}")
    return int(scale)


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop H and W down to multiples of ``scale``, keeping the top-left corner."""
    arr = _check_image(img)
    s = _check_scale(scale)
    h, w = arr.shape[0] - arr.shape[0] % s, arr.shape[1] - arr.shape[1] % s
    if h == 0 or w == 0:
        raise InvalidImageError(f"image of shape {arr.shape} is smaller than scale {s}")
    return np.ascontiguousarray(arr[:h, :w], dtype=np.float32)


def _resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    channels = []
    for c in range(img.shape[2]):
        plane = Image.fromarray(np.ascontiguousarray(img[:, :, c], dtype=np.float32))
        resized = plane.resize((width, height), Image.Resampling.BICUBIC)
        channels.append(np.asarray(resized, dtype=np.float32))
    return np.clip(np.stack(channels, axis=2), 0.0, 1.0)


def bicubic_down(img: np.ndarray, scale: int) -> np.ndarray:
    """Antialiased bicubic downscale of ``mod_crop(img, scale)`` by ``scale``."""
    cropped = mod_crop(img, scale)
    s = _check_scale(scale)
    return _resize(cropped, cropped.shape[0] // s, cropped.shape[1] // s)


def bicubic_up(img: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic upscale by ``scale`` to exactly (scale*H) x (scale*W); the SR baseline."""
    arr = _check_image(img)
    s = _check_scale(scale)
    return _resize(arr, arr.shape[0] * s, arr.shape[1] * s)


def _check_kernel_size(size: int) -> int:
    if isinstance(size, bool) or int(size) != size or size < 1 or size % 2 == 0:
        raise InvalidArgumentError(f"kernel size must be a positive odd integer, received {size!r}")
    return int(size)


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """Isotropic Gaussian, size x size (odd), standard deviation ``sigma`` pixels."""
    n = _check_kernel_size(size)
    if not sigma > 0:
        raise InvalidArgumentError(f"sigma must be > 0, received {sigma!r}")
    x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    g = np.exp(-0.5 * (x / sigma) ** 2)
    k = np.outer(g, g)
    return k / k.sum()


def motion_kernel(size: int, angle_deg: float, length: float) -> np.ndarray:
    """Linear motion blur: a centred segment of ``length`` pixels at ``angle_deg``.

    The angle is counter-clockwise from the +x (column) axis as seen on screen, i.e.
    rows grow downwards. The segment is anti-aliased by sampling it densely and
    splatting each sample bilinearly; ``length`` 0 gives a delta. Requires
    0 <= length <= size - 1 so the segment fits at every angle.
    """
    n = _check_kernel_size(size)
    if not 0 <= length <= n - 1:
        raise InvalidArgumentError(f"length must be in [0, {n - 1}] for size {n}, received {length!r}")
    if n == 1:
        return np.ones((1, 1))
    # ~8 samples per pixel of length keeps the splatted line smooth at any angle.
    count = max(2, int(math.ceil(8 * length)) + 1)
    t = np.linspace(-length / 2.0, length / 2.0, count)
    theta = math.radians(angle_deg)
    centre = (n - 1) / 2.0
    xs = centre + t * math.cos(theta)
    ys = centre - t * math.sin(theta)
    k = np.zeros((n, n), dtype=np.float64)
    # Clamp the floor so points on the last row/column still splat inside the kernel.
    x0 = np.minimum(np.floor(xs).astype(int), n - 2)
    y0 = np.minimum(np.floor(ys).astype(int), n - 2)
    fx, fy = xs - x0, ys - y0
    np.add.at(k, (y0, x0), (1 - fy) * (1 - fx))
    np.add.at(k, (y0, x0 + 1), (1 - fy) * fx)
    np.add.at(k, (y0 + 1, x0), fy * (1 - fx))
    np.add.at(k, (y0 + 1, x0 + 1), fy * fx)
    return k / k.sum()


def blur(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve every channel with ``kernel`` (odd-sized 2-D), reflect border, same size."""
    arr = _check_image(img)
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
        raise InvalidArgumentError(f"kernel must be 2-D with odd height and width, received shape {k.shape}")
    h, w = arr.shape[:2]
    ph, pw = k.shape[0] // 2, k.shape[1] // 2
    if ph >= h or pw >= w:
        raise InvalidImageError(
            f"kernel {k.shape} is too large for reflect padding of an image of shape {arr.shape}"
        )
    padded = np.pad(arr.astype(np.float64), ((ph, ph), (pw, pw), (0, 0)), mode="reflect")
    hp, wp = padded.shape[:2]
    # A circular convolution of the padded size equals the linear one on the "valid"
    # region, which is exactly the original image area, so no extra zero padding is needed.
    spec = np.fft.rfft2(padded, s=(hp, wp), axes=(0, 1))
    kspec = np.fft.rfft2(k, s=(hp, wp))
    full = np.fft.irfft2(spec * kspec[:, :, None], s=(hp, wp), axes=(0, 1))
    out = full[2 * ph : 2 * ph + h, 2 * pw : 2 * pw + w]
    return np.ascontiguousarray(out, dtype=np.float32)


def add_gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add i.i.d. Gaussian noise of std ``sigma`` (0..1 scale), then clip to [0, 1]."""
    arr = _check_image(img)
    if not 0 <= sigma <= 1:
        raise InvalidArgumentError(
            f"sigma is on the 0..1 scale and must be in [0, 1], received {sigma!r} "
            "(for sigma 25 on the 0..255 scale pass 25/255)"
        )
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, received {type(rng).__name__}")
    noise = rng.standard_normal(arr.shape, dtype=np.float32) * np.float32(sigma)
    return np.ascontiguousarray(np.clip(arr.astype(np.float32) + noise, 0.0, 1.0))


_KINDS = ("sr", "denoise", "deblur")
_BLURS = ("none", "gaussian", "motion")


@dataclass(frozen=True)
class Degradation:
    """One restoration task: how a ground-truth image becomes the low-quality input.

    ``sr``: bicubic downscale by ``scale`` (>= 2), no blur or noise.
    ``denoise``: Gaussian noise of std ``noise_sigma`` (0..1 scale), scale 1.
    ``deblur``: a fixed Gaussian kernel, or a motion kernel whose angle is drawn from
    the generator on every call, then optional noise; scale 1.
    """

    kind: str
    scale: int = 1
    noise_sigma: float = 0.0
    blur: str = "none"

    # Benchmark-style kernel settings (Gaussian std 1.6 is the common deblurring
    # setting); fixed so that a task name fully identifies the degradation.
    GAUSSIAN_SIZE = 15
    GAUSSIAN_SIGMA = 1.6
    MOTION_SIZE = 15
    MOTION_LENGTH = 11

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InvalidArgumentError(f"kind must be one of {_KINDS}, received {self.kind!r}")
        if self.blur not in _BLURS:
            raise InvalidArgumentError(f"blur must be one of {_BLURS}, received {self.blur!r}")
        _check_scale(self.scale)
        if not 0 <= self.noise_sigma <= 1:
            raise InvalidArgumentError(
                f"noise_sigma is on the 0..1 scale, expected [0, 1], received {self.noise_sigma!r}"
            )
        if self.kind == "sr":
            if self.scale < 2 or self.blur != "none" or self.noise_sigma != 0:
                raise InvalidArgumentError(
                    "an 'sr' degradation needs scale >= 2, blur 'none' and noise_sigma 0, "
                    f"received scale={self.scale}, blur={self.blur!r}, "
                    f"noise_sigma={self.noise_sigma}"
                )
        elif self.scale != 1:
            raise InvalidArgumentError(f"a {self.kind!r} degradation needs scale 1, received {self.scale}")
        if self.kind == "denoise" and (self.noise_sigma <= 0 or self.blur != "none"):
            raise InvalidArgumentError(
                "a 'denoise' degradation needs noise_sigma > 0 and blur 'none', "
                f"received noise_sigma={self.noise_sigma}, blur={self.blur!r}"
            )
        if self.kind == "deblur" and self.blur == "none":
            raise InvalidArgumentError("a 'deblur' degradation needs blur 'gaussian' or 'motion'")

    @classmethod
    def sr(cls, scale: int) -> "Degradation":
        return cls(kind="sr", scale=scale)

    @classmethod
    def denoise(cls, sigma: float) -> "Degradation":
        return cls(kind="denoise", noise_sigma=sigma)

    @classmethod
    def deblur(cls, kind: str, noise_sigma: float = 0.0) -> "Degradation":
        return cls(kind="deblur", blur=kind, noise_sigma=noise_sigma)

    def describe(self) -> str:
        noise = ""
        if self.noise_sigma:
            noise = f", Gaussian noise sigma {self.noise_sigma * 255:g}/255"
        if self.kind == "sr":
            return f"x{self.scale} super-resolution from bicubic-downscaled input"
        if self.kind == "denoise":
            return f"denoising{noise}"
        if self.blur == "gaussian":
            size = self.GAUSSIAN_SIZE
            what = f"Gaussian blur {size}x{size}, sigma {self.GAUSSIAN_SIGMA:g}"
        else:
            what = f"motion blur length {self.MOTION_LENGTH}, random angle"
        return f"deblurring ({what}){noise}"

    def kernel(self, rng: np.random.Generator) -> np.ndarray | None:
        """The blur kernel for one sample (draws the angle for motion blur), or None."""
        if self.blur == "gaussian":
            return gaussian_kernel(self.GAUSSIAN_SIZE, self.GAUSSIAN_SIGMA)
        if self.blur == "motion":
            angle = float(rng.uniform(0.0, 180.0))
            return motion_kernel(self.MOTION_SIZE, angle, self.MOTION_LENGTH)
        return None

    def target(self, gt: np.ndarray) -> np.ndarray:
        """The ground truth the restored image is compared with (mod-cropped for SR)."""
        return mod_crop(gt, self.scale)

    def apply(self, gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Low-quality input for ``gt``: float32 in [0, 1]."""
        if self.kind == "sr":
            return bicubic_down(gt, self.scale)
        out = _check_image(gt).astype(np.float32)
        k = self.kernel(rng)
        if k is not None:
            out = np.clip(blur(out, k), 0.0, 1.0)
        if self.noise_sigma > 0:
            out = add_gaussian_noise(out, self.noise_sigma, rng)
        return np.ascontiguousarray(out, dtype=np.float32)

    def baseline(self, lq: np.ndarray) -> np.ndarray:
        """The no-model reference output: bicubic upscale for SR, the input otherwise."""
        if self.kind == "sr":
            return bicubic_up(lq, self.scale)
        return np.array(_check_image(lq), dtype=np.float32, order="C")


def random_crop_pair(gt: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``crop`` x ``crop`` window of ``gt`` (the caller degrades it into a pair).

    For SR pass a ``crop`` that is a multiple of the scale so the LQ patch is exact.
    """
    arr = _check_image(gt)
    h, w = arr.shape[:2]
    if isinstance(crop, bool) or int(crop) != crop or not 1 <= crop <= min(h, w):
        raise InvalidImageError(
            f"crop must be an integer in [1, {min(h, w)}] for an image of shape {arr.shape}, "
            f"received {crop!r}"
        )
    crop = int(crop)
    top = int(rng.integers(0, h - crop + 1))
    left = int(rng.integers(0, w - crop + 1))
    return np.ascontiguousarray(arr[top : top + crop, left : left + crop], dtype=np.float32)


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One of the 8 dihedral variants (rotation by k*90 degrees, optional flip), uniform."""
    arr = _check_image(img)
    choice = int(rng.integers(0, 8))
    out = np.rot90(arr, k=choice % 4, axes=(0, 1))
    if choice >= 4:
        out = out[:, ::-1]
    return np.ascontiguousarray(out, dtype=np.float32)
