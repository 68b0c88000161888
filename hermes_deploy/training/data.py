"""On-the-fly training pairs from real photographs bundled offline.

Random ground-truth crops of the training photos (never the held-out ones), one of the
8 dihedral augmentations, then the task's degradation (bicubic downscale for SR; blur
and/or noise for restoration) from :mod:`hermes_deploy.quality.degrade`, the same code
the evaluation uses.
"""

from __future__ import annotations

import numpy as np
import torch

from PIL import Image

from ..errors import InvalidArgumentError
from ..quality import TRAIN_PHOTOS, Degradation, augment, load_photo, random_crop_pair

# Photos that are stochastic textures rather than scenes: training on them teaches the
# network to over-sharpen (measured: validation PSNR on the held-out photos fell while
# the training loss kept improving). The default model trains on scenes only.
TEXTURE_PHOTOS = ("grass", "gravel", "brick")
SCENE_PHOTOS = tuple(p for p in TRAIN_PHOTOS if p not in TEXTURE_PHOTOS)


def _rescale(img: np.ndarray, factor: float) -> np.ndarray:
    """Antialiased bicubic resize of a float image (scale augmentation, as in DIV2K training)."""
    h, w = max(1, round(img.shape[0] * factor)), max(1, round(img.shape[1] * factor))
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c]), "F").resize((w, h), Image.BICUBIC))
             for c in range(img.shape[2])]
    return np.clip(np.stack(chans, axis=2), 0.0, 1.0).astype(np.float32)


class PairSampler:
    """Seeded stream of (lq, gt) batches; ``reset()`` rewinds to the first batch."""

    def __init__(self, degradations: list[Degradation], gt_crop: int, batch: int,
                 seed: int = 0, photos: tuple[str, ...] = SCENE_PHOTOS,
                 images: list[np.ndarray] | None = None,
                 zooms: tuple[float, ...] = (1.0, 0.8, 0.65, 0.5)) -> None:
        scales = {d.scale for d in degradations}
        if len(scales) != 1:
            raise InvalidArgumentError("all degradations of one model must share its scale")
        self.scale = scales.pop()
        if gt_crop % self.scale:
            raise InvalidArgumentError(f"gt_crop {gt_crop} must be a multiple of the scale {self.scale}")
        self.degradations, self.gt_crop, self.batch, self.seed = degradations, gt_crop, batch, seed
        base = images if images is not None else [load_photo(p) for p in photos]
        # every photo at several scales: more distinct content from few photos
        self.images = [im if f == 1.0 else _rescale(im, f) for im in base for f in zooms
                       if min(im.shape[:2]) * f >= gt_crop]
        # each photo equally likely, whatever its size (scales share their photo's share)
        counts = {}
        owners = [i for i, im in enumerate(base) for f in zooms if min(im.shape[:2]) * f >= gt_crop]
        for o in owners:
            counts[o] = counts.get(o, 0) + 1
        weights = np.array([1.0 / counts[o] for o in owners], dtype=np.float64)
        self.p = weights / weights.sum()
        self.reset()

    def reset(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        lqs, gts = [], []
        for _ in range(self.batch):
            img = self.images[int(self.rng.choice(len(self.images), p=self.p))]
            gt = augment(random_crop_pair(img, self.gt_crop, self.rng), self.rng)
            deg = self.degradations[int(self.rng.integers(len(self.degradations)))]
            lqs.append(deg.apply(gt, self.rng))
            gts.append(gt)
        to_t = lambda arrs: torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()
        return to_t(lqs), to_t(gts)
