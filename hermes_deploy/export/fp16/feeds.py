"""Calibration feeds of the FP16 pass for HERMES graphs: :func:`calibration_feeds`.

Activation ranges are measured on crops of real photographs from the training split
(:data:`CALIBRATION_PHOTOS`, never the held-out evaluation photos); the per-crop context
comes from the torch model.
"""

from __future__ import annotations

import numpy as np

CALIBRATION_PHOTOS = ("rocket", "motorcycle_left", "immunohistochemistry")


def calibration_feeds(model, tile: tuple[int, int] | None, batch: int | None,
                      photos=CALIBRATION_PHOTOS, per_photo: int = 2, seed: int = 0) -> list[dict]:
    """``{"input", "context"}`` feeds: crops of real photos, context by the torch model."""
    import torch

    from ...quality import load_photo

    rng = np.random.default_rng(seed)
    h, w = tile or (96, 96)
    b = batch or 1
    feeds = []
    for name in photos:
        img = load_photo(name)
        for _ in range(per_photo):
            crops = []
            for _ in range(b):
                top = int(rng.integers(0, img.shape[0] - h + 1))
                left = int(rng.integers(0, img.shape[1] - w + 1))
                crops.append(img[top:top + h, left:left + w].transpose(2, 0, 1))
            x = np.ascontiguousarray(np.stack(crops), dtype=np.float32)
            with torch.no_grad():
                ctx = model.compute_context(torch.from_numpy(x)).numpy()
            feeds.append({"input": x, "context": ctx})
    return feeds
