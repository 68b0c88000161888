"""On-the-fly training pairs from real photographs bundled offline.

Random ground-truth crops of the training photos (never the held-out ones), one of the
8 dihedral augmentations, then the task's degradation (bicubic downscale for SR; blur
and/or noise for restoration) from :mod:`hermes_deploy.quality.degrade`, the same code
the evaluation uses.
"""

from __future__ import annotations

import numpy as np
import torch

from ..quality import TRAIN_PHOTOS, Degradation, augment, load_photo, random_crop_pair


class PairSampler:
    """Seeded stream of (lq, gt) batches; ``reset()`` rewinds to the first batch."""

    def __init__(self, degradations: list[Degradation], gt_crop: int, batch: int,
                 seed: int = 0, photos: tuple[str, ...] = TRAIN_PHOTOS,
                 images: list[np.ndarray] | None = None) -> None:
        scales = {d.scale for d in degradations}
        if len(scales) != 1:
            raise ValueError("all degradations of one model must share its scale")
        self.scale = scales.pop()
        if gt_crop % self.scale:
            raise ValueError(f"gt_crop {gt_crop} must be a multiple of the scale {self.scale}")
        self.degradations, self.gt_crop, self.batch, self.seed = degradations, gt_crop, batch, seed
        self.images = images if images is not None else [load_photo(p) for p in photos]
        # sample images in proportion to their area so big photos are not under-used
        areas = np.array([im.shape[0] * im.shape[1] for im in self.images], dtype=np.float64)
        self.p = areas / areas.sum()
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
