"""Blend tile outputs into finished output rows, one row of tiles at a time (numpy only).

The accumulator holds only the output rows that some pending tile can still touch: at
most ``scale * tile_h`` rows of the (padded) output width, so memory does not grow with
the image height.
"""

from __future__ import annotations

import numpy as np

from .tiling import TilePlan


class Stitcher:
    def __init__(self, plan: TilePlan, channels: int) -> None:
        self.plan = plan
        s = plan.scale
        self.out_w = s * plan.padded_w
        self.out_h = s * plan.height  # rows beyond this come from padding and are dropped
        self.crop_w = s * plan.width
        self.channels = channels
        self._base = 0  # output row index of acc[0]
        self._acc = np.zeros((0, self.out_w, channels), np.float32)
        self._wsum = np.zeros((0, self.out_w), np.float32)
        self._weights = {}
        self._emitted = 0

    def _weight(self, row: int, col: int) -> np.ndarray:
        key = (row > 0, row < len(self.plan.ys) - 1, col > 0, col < len(self.plan.xs) - 1)
        if key not in self._weights:
            self._weights[key] = self.plan.weights(row, col)
        return self._weights[key]

    def add_row(self, row: int, tiles: list[np.ndarray]) -> np.ndarray:
        """Add the outputs (s*th, s*tw, C) of tile row ``row``; return rows now final."""
        p, s = self.plan, self.plan.scale
        y0, y1 = s * p.ys[row], s * (p.ys[row] + p.tile_h)
        need = y1 - self._base
        if need > self._acc.shape[0]:
            grow = need - self._acc.shape[0]
            self._acc = np.concatenate([self._acc, np.zeros((grow, self.out_w, self.channels),
                                                            np.float32)])
            self._wsum = np.concatenate([self._wsum, np.zeros((grow, self.out_w), np.float32)])
        a = y0 - self._base
        for col, out in enumerate(tiles):
            w = self._weight(row, col)
            x0 = s * p.xs[col]
            x1 = x0 + out.shape[1]
            self._acc[a:a + out.shape[0], x0:x1] += out * w[:, :, None]
            self._wsum[a:a + out.shape[0], x0:x1] += w
        last = row == len(p.ys) - 1
        limit = y1 if last else s * p.ys[row + 1]
        k = limit - self._base
        done = self._acc[:k] / np.maximum(self._wsum[:k, :, None], np.float32(1e-12))
        self._acc = self._acc[k:].copy()
        self._wsum = self._wsum[k:].copy()
        self._base = limit
        keep = max(0, min(k, self.out_h - self._emitted))
        self._emitted += keep
        return done[:keep, : self.crop_w]
