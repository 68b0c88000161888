"""Image-quality tools, numpy + Pillow only (never imports torch).

Metrics on the BT.601 Y channel as used in super-resolution papers, synthetic
degradations for SR / denoising / deblurring, and real photographs bundled with
scikit-image (imported only when a photo is loaded). See each module for guarantees.
"""

from hermes_deploy.quality.degrade import (
    Degradation,
    add_gaussian_noise,
    augment,
    bicubic_down,
    bicubic_up,
    blur,
    gaussian_kernel,
    mod_crop,
    motion_kernel,
    random_crop_pair,
)
from hermes_deploy.quality.metrics import InvalidImageError, psnr, psnr_y, rgb_to_y, ssim_y
from hermes_deploy.quality.photos import (
    HELDOUT_PHOTOS,
    TRAIN_PHOTOS,
    load_image_file,
    load_photo,
)

__all__ = [
    "Degradation",
    "HELDOUT_PHOTOS",
    "InvalidImageError",
    "TRAIN_PHOTOS",
    "add_gaussian_noise",
    "augment",
    "bicubic_down",
    "bicubic_up",
    "blur",
    "gaussian_kernel",
    "load_image_file",
    "load_photo",
    "mod_crop",
    "motion_kernel",
    "psnr",
    "psnr_y",
    "random_crop_pair",
    "rgb_to_y",
    "ssim_y",
]
