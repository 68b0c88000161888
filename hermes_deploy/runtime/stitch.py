"""Blend tile outputs into finished output rows (numpy only).

Tiles arrive row by row, left to right. An output pixel is final once no later tile
can touch it: after tile (r, c), that is every pixel of the tile above tile row r + 1's
start and left of tile c + 1's start. The stitcher therefore keeps in float32 only
what is still open:

- a window of one tile (the current tile plus the part of the previous one that
  overlaps it),
- the carry: the rows of tile row r that tile row r + 1 overlaps (``scale * overlap``
  rows, full width), added into the windows of the next tile row,

and stores each finished block at once in the output's own sample type (``SampleFormat``:
8- or 16-bit rounded, grey or RGB; float32 by default) in a buffer of one tile row's
finished rows, handed out in strips when the tile row ends. The weight sum is not
stored: the tiles form a full grid and the weights are separable, so the sum at
(y, x) is ``WY[y] * WX[x]`` with 1-D sums. Memory is one tile row of finished 8-bit
rows plus a few overlap strips in float, whatever the image height, and a quarter of a
float32 band per unit of width.
"""

from __future__ import annotations

from typing import Iterator, Protocol

import numpy as np

from .plan import TilePlan

__all__ = ["FloatRows", "SampleFormat", "Stitcher", "stitched"]


class SampleFormat(Protocol):
    """How finished rows are stored: ``convert`` turns normalized float (rows, w, 3)
    into (rows, w, channels) samples of ``dtype``."""

    dtype: np.dtype
    channels: int

    def convert(self, rows: np.ndarray) -> np.ndarray: ...


class FloatRows:
    """Finished rows as computed: float32 RGB, not clipped (the in-memory API)."""

    dtype = np.dtype(np.float32)
    channels = 3

    @staticmethod
    def convert(rows: np.ndarray) -> np.ndarray:
        return rows


class Stitcher:
    STRIP = 64  # output rows handed out at a time

    def __init__(self, plan: TilePlan, channels: int, samples: SampleFormat | None = None) -> None:
        self.plan = plan
        self.samples = samples or FloatRows()
        s = plan.scale
        self.out_h = s * plan.height  # rows beyond this come from padding and are dropped
        self.crop_w = s * plan.width  # so are columns beyond this
        self.band = s * plan.tile_h
        self.tw = s * plan.tile_w
        self._wy = [plan.row_profile(r) for r in range(len(plan.ys))]
        self._wx = [plan.col_profile(c) for c in range(len(plan.xs))]
        WY = np.zeros(s * plan.padded_h, np.float32)
        for r, y in enumerate(plan.ys):
            WY[s * y:s * y + self.band] += self._wy[r]
        WX = np.zeros(s * plan.padded_w, np.float32)
        for c, x in enumerate(plan.xs):
            WX[s * x:s * x + self.tw] += self._wx[c]
        self._inv_y = 1.0 / np.maximum(WY, np.float32(1e-12))
        self._inv_x = 1.0 / np.maximum(WX, np.float32(1e-12))
        # finished rows per tile row: up to the next tile row's start (all, for the last)
        self._final = [s * (plan.ys[r + 1] - plan.ys[r]) if r + 1 < len(plan.ys) else self.band
                       for r in range(len(plan.ys))]
        self._done = np.empty((max(self._final), self.crop_w, self.samples.channels),
                              self.samples.dtype)
        carry_rows = max([self.band - k for k in self._final[:-1]], default=0)
        self._carry = np.zeros((carry_rows, self.crop_w, channels), np.float32)
        self._carry_h = 0  # rows of the carry the current tile row adds in
        self._wins = [np.zeros((self.band, self.tw, channels), np.float32) for _ in range(2)]
        self._win = 0  # which of the two windows holds the current tile

    def add(self, row: int, col: int, out: np.ndarray) -> None:
        """Accumulate one tile output (s*th, s*tw, C) of tile (row, col), in plan order;
        finishes the columns no later tile of this row touches."""
        p, s = self.plan, self.plan.scale
        x0 = s * p.xs[col]
        prev, win = self._wins[self._win], self._wins[1 - self._win]
        self._win = 1 - self._win
        if col == 0:
            win[:] = 0.0
            added = 0  # output columns whose carry is already in the window
        else:
            # the previous tile's columns from x0 on are still open: they move over
            shift = x0 - s * p.xs[col - 1]
            win[:, : self.tw - shift] = prev[:, shift:]
            win[:, self.tw - shift:] = 0.0
            added = s * p.xs[col - 1] + self.tw
        a = min(added, self.crop_w)
        b = min(x0 + self.tw, self.crop_w)
        if self._carry_h and b > a:
            win[: self._carry_h, a - x0:b - x0] += self._carry[: self._carry_h, a:b]
        win += out * (self._wy[row][:, None, None] * self._wx[col][None, :, None])
        last_col = col == len(p.xs) - 1
        end = min(x0 + self.tw if last_col else s * p.xs[col + 1], self.crop_w)
        if end <= x0:
            return
        k, top = self._final[row], s * p.ys[row]
        keep = max(0, min(k, self.out_h - top))
        if keep:
            block = win[:keep, : end - x0] * (self._inv_y[top:top + keep, None, None]
                                              * self._inv_x[None, x0:end, None])
            self._done[:keep, x0:end] = self.samples.convert(block)
        if row + 1 < len(p.ys):
            self._carry[: self.band - k, x0:end] = win[k:, : end - x0]

    def finish_row(self, row: int) -> Iterator[np.ndarray]:
        """After every tile of ``row`` is added: yield the rows now final, in strips
        that end on multiples of ``STRIP`` output rows (or at the image's end).

        The strips are views of one reused buffer, valid until the next tile is added:
        a consumer that keeps rows must copy them."""
        p, s = self.plan, self.plan.scale
        top = s * p.ys[row]
        keep = max(0, min(self._final[row], self.out_h - top))
        i = 0
        while i < keep:  # strips end on multiples of STRIP output rows
            j = min(keep, i + self.STRIP - (top + i) % self.STRIP)
            yield self._done[i:j]
            i = j
        self._carry_h = self.band - self._final[row]


def stitched(plan: TilePlan, channels: int, outputs: Iterator,
             samples: SampleFormat | None = None) -> Iterator[np.ndarray]:
    """Finished output rows, in strips, from an iterator of (tile indices, NCHW outputs)."""
    stitcher = Stitcher(plan, channels, samples)
    ncols = len(plan.xs)
    for indices, out in outputs:
        for (r, c), tile in zip(indices, out):
            stitcher.add(r, c, tile.transpose(1, 2, 0))
            if c == ncols - 1:
                yield from stitcher.finish_row(r)

