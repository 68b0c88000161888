"""Blend tile outputs into finished output rows (numpy only).

Tiles are added as they arrive; when the last tile of a tile row is in, the rows no
later tile can touch are normalized and handed out in strips. The accumulator is one
fixed buffer of ``scale * tile_h`` output rows, and the weight sum is not stored: the
tiles form a full grid and the weights are separable, so the sum at (y, x) is
``WY[y] * WX[x]`` with 1-D sums. Memory is therefore one band of rows, whatever the
image height.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .plan import TilePlan


class Stitcher:
    STRIP = 64  # output rows normalized at a time (bounds the temporaries)

    def __init__(self, plan: TilePlan, channels: int) -> None:
        self.plan = plan
        s = plan.scale
        self.out_w = s * plan.padded_w
        self.out_h = s * plan.height  # rows beyond this come from padding and are dropped
        self.crop_w = s * plan.width
        self.band = s * plan.tile_h
        self._wy = [plan.row_profile(r) for r in range(len(plan.ys))]
        self._wx = [plan.col_profile(c) for c in range(len(plan.xs))]
        self.WY = np.zeros(s * plan.padded_h, np.float32)
        for r, y in enumerate(plan.ys):
            self.WY[s * y:s * y + self.band] += self._wy[r]
        self.WX = np.zeros(self.out_w, np.float32)
        for c, x in enumerate(plan.xs):
            self.WX[s * x:s * (x + plan.tile_w)] += self._wx[c]
        self._acc = np.zeros((self.band, self.out_w, channels), np.float32)
        self._base = 0  # output row of _acc[0]
        self._emitted = 0

    def add(self, row: int, col: int, out: np.ndarray) -> None:
        """Accumulate one tile output (s*th, s*tw, C) of tile (row, col)."""
        s = self.plan.scale
        a = s * self.plan.ys[row] - self._base
        x0 = s * self.plan.xs[col]
        w = self._wy[row][:, None, None] * self._wx[col][None, :, None]
        self._acc[a:a + out.shape[0], x0:x0 + out.shape[1]] += out * w

    def finish_row(self, row: int) -> Iterator[np.ndarray]:
        """After every tile of ``row`` is added: yield the rows now final, in strips."""
        p, s = self.plan, self.plan.scale
        last = row == len(p.ys) - 1
        limit = s * (p.ys[row] + p.tile_h) if last else s * p.ys[row + 1]
        k = limit - self._base
        inv_x = 1.0 / np.maximum(self.WX[: self.crop_w], np.float32(1e-12))
        for i in range(0, k, self.STRIP):
            j = min(k, i + self.STRIP)
            keep = max(0, min(j - i, self.out_h - self._emitted))
            if keep:
                rows = slice(self._base + i, self._base + i + keep)
                inv_y = 1.0 / np.maximum(self.WY[rows], np.float32(1e-12))
                yield self._acc[i:i + keep, : self.crop_w] * (inv_y[:, None, None] * inv_x[None, :, None])
                self._emitted += keep
        rest = self.band - k
        # shift the kept rows up in chunks of at most k rows: source and destination
        # never overlap, so no temporary copy of the band is made
        for i in range(0, rest, k):
            c = min(k, rest - i)
            self._acc[i:i + c] = self._acc[k + i:k + i + c]
        self._acc[max(rest, 0):] = 0.0
        self._base = limit
