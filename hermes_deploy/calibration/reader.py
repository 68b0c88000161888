"""Seeded, rewindable calibration readers of model-input tiles.

INT8 ranges are only as good as the activations they are measured on, so the tiles are
cut the way the tiled runtime will cut them:

* **Degradation**: an SR model (scale > 1) is calibrated on its real input, the bicubic
  downscale of each ground-truth image (:func:`hermes_deploy.quality.bicubic_down`,
  the degradation of the quality harness); a scale-1 model gets the images as they are.
* **Tiles**: a fixed ``tile`` (H, W) in input pixels on the runtime's own grid
  (:mod:`hermes_deploy.tile_grid`: starts on multiples of the model's size multiple,
  the last tile ending at the image size rounded up to it, padded by reflection).
  Images smaller than the tile are skipped (the runtime would run them whole, at
  another size).
* **Context**: computed once per *whole* (degraded) image by ``context_fn`` (the
  companion context graph in onnxruntime, :func:`hermes_deploy.export.ort.context_fn`)
  and given to every
  tile of that image, as at run time.

Guarantees of :class:`TileReader`:

* The same images, tile, overlap, batch, samples and seed give the same batches, in the
  same order; :meth:`TileReader.rewind` restarts the stream exactly.
* Tiles are drawn without repeats until an image's grid is used up; images take turns
  (a seeded order each round), so one large image cannot dominate the ranges.
* Every batch is a fresh array (no aliasing between batches); ``get_next`` returns
  ``None`` at the end, which is the protocol of onnxruntime's ``CalibrationDataReader``.

Pattern after onnxruntime's ``quantization/calibrate.py`` readers (``get_next`` /
``rewind``), which STYLE.md asks for; the "batches must differ" test guards against the
classic ``[{}] * n`` aliasing bug.
"""

from __future__ import annotations

import hashlib
import os
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import InputError
from ..quality.degrade import bicubic_down, mod_crop
from ..quality.photos import TRAIN_PHOTOS, load_images
from ..tile_grid import axis_starts, round_up

ContextFn = Callable[[np.ndarray], np.ndarray]  # (1, C, H, W) float32 -> (1, K) float32


def load_calibration_images(source: str | os.PathLike | Sequence[str] | None) -> list[tuple[str, np.ndarray]]:
    """(name, HxWx3 float32) pairs from a folder, a list of files/photo names, or
    ``None`` (the bundled training photographs, never the held-out ones)."""
    return load_images(source, default=TRAIN_PHOTOS)


def tile_grid(height: int, width: int, tile: tuple[int, int], overlap: int = 0,
              multiple: int = 1) -> list[tuple[int, int]]:
    """Top-left corners of the runtime's tiles over a ``height`` x ``width`` image.

    The runtime's own grid (:func:`hermes_deploy.tile_grid.axis_starts`): starts on
    multiples of the model's size ``multiple``, the last tile ending at the image size
    rounded up to that multiple (those few pixels are reflection padding, see
    :func:`pad_to_multiple`). Empty when the image is smaller than the tile.
    """
    th, tw = tile
    if overlap < 0 or overlap >= min(th, tw):
        raise InputError(f"overlap must be in [0, {min(th, tw) - 1}] for tile {th}x{tw}, got {overlap}")
    if height < th or width < tw:
        return []
    return [(top, left) for top in axis_starts(height, th, overlap, multiple)
            for left in axis_starts(width, tw, overlap, multiple)]


def pad_to_multiple(chw: np.ndarray, multiple: int) -> np.ndarray:
    """(C, H, W) padded at the bottom/right to multiples by symmetric reflection, as the
    runtime pads an image's last tiles (and the model pads a whole image)."""
    ph, pw = round_up(chw.shape[1], multiple) - chw.shape[1], round_up(chw.shape[2], multiple) - chw.shape[2]
    if not (ph or pw):
        return chw
    return np.pad(chw, ((0, 0), (0, ph), (0, pw)), mode="symmetric")



class TileReader:
    """Batches ``{"input": (B,C,th,tw), "context": (B,K)}`` of runtime tiles; see module doc.

    ``samples`` is the number of tiles in the whole stream (rounded down to whole
    batches, at least one batch); ``scale`` > 1 means the images are ground truth and
    the model input is their bicubic downscale.
    """

    def __init__(self, images: Sequence[tuple[str, np.ndarray]], context_fn: ContextFn | None,
                 tile: tuple[int, int] = (64, 64), samples: int = 32, batch: int = 1,
                 scale: int = 1, seed: int = 0, overlap: int = 0, multiple: int = 1,
                 input_name: str = "input", context_name: str = "context") -> None:
        if samples < 1 or batch < 1:
            raise InputError(f"samples and batch must be >= 1, got samples={samples}, batch={batch}")
        if scale < 1:
            raise InputError(f"scale must be >= 1, got {scale}")
        self.tile = (int(tile[0]), int(tile[1]))
        self.batch, self.scale, self.seed, self.overlap = int(batch), int(scale), int(seed), int(overlap)
        self.input_name, self.context_name = input_name, context_name
        self.names: list[str] = []
        self._lq: list[np.ndarray] = []
        self._gt: list[np.ndarray] = []
        self._tiles_from: list[np.ndarray] = []  # the model input, padded as the runtime pads
        grids: list[list[tuple[int, int]]] = []
        for name, img in images:
            gt = mod_crop(img, self.scale) if self.scale > 1 else np.ascontiguousarray(img, np.float32)
            pad = self.scale * max(1, multiple)  # ground truth padded like the input tiles
            gt = np.pad(gt, ((0, round_up(gt.shape[0], pad) - gt.shape[0]),
                             (0, round_up(gt.shape[1], pad) - gt.shape[1]), (0, 0)), mode="symmetric")
            lq = bicubic_down(img, self.scale) if self.scale > 1 else gt
            grid = tile_grid(lq.shape[0], lq.shape[1], self.tile, self.overlap, multiple)
            if not grid:
                continue  # smaller than one tile: the runtime would not cut it at this size
            self.names.append(name)
            self._gt.append(gt)
            self._lq.append(np.ascontiguousarray(lq.transpose(2, 0, 1)))
            self._tiles_from.append(pad_to_multiple(self._lq[-1], multiple))
            grids.append(grid)
        if not self._lq:
            raise InputError(f"no calibration image is at least {self.tile[0]}x{self.tile[1]} after "
                             f"the x{self.scale} downscale; use larger images or a smaller --tile")
        self._contexts = [None if context_fn is None else
                          np.asarray(context_fn(lq[None]), np.float32)[0] for lq in self._lq]
        n_batches = max(1, int(samples) // self.batch)
        self.plan = self._draw(grids, n_batches * self.batch)
        self._pos = 0

    def _draw(self, grids: list[list[tuple[int, int]]], count: int) -> list[tuple[int, int, int]]:
        rng = np.random.default_rng(self.seed)
        pools = [[grid[i] for i in rng.permutation(len(grid))] for grid in grids]
        used = [0] * len(grids)
        plan: list[tuple[int, int, int]] = []
        while len(plan) < count:
            for k in rng.permutation(len(grids)):
                if len(plan) == count:
                    break
                if used[k] == len(pools[k]):  # grid used up: a new seeded pass over it
                    pools[k] = [pools[k][i] for i in rng.permutation(len(pools[k]))]
                    used[k] = 0
                top, left = pools[k][used[k]]
                used[k] += 1
                plan.append((int(k), top, left))
        return plan

    def __len__(self) -> int:
        return len(self.plan) // self.batch

    def rewind(self) -> None:
        self._pos = 0

    def _batch(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        th, tw = self.tile
        s = self.scale
        entries = self.plan[index * self.batch:(index + 1) * self.batch]
        x = np.stack([self._tiles_from[k][:, t:t + th, l:l + tw] for k, t, l in entries]).astype(np.float32)
        gt = np.stack([self._gt[k][t * s:(t + th) * s, l * s:(l + tw) * s].transpose(2, 0, 1)
                       for k, t, l in entries]).astype(np.float32)
        feed = {self.input_name: np.ascontiguousarray(x)}
        if self._contexts[0] is not None:
            feed[self.context_name] = np.stack([self._contexts[k] for k, _, _ in entries]).astype(np.float32)
        return feed, np.ascontiguousarray(gt)

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._pos >= len(self):
            return None
        feed, _ = self._batch(self._pos)
        self._pos += 1
        return feed

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(len(self)):
            yield self._batch(i)[0]

    def pairs(self) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        """(feed, ground-truth tiles (B, C, s*th, s*tw)) for quality checks on the tiles."""
        for i in range(len(self)):
            yield self._batch(i)

    def describe(self) -> dict:
        """What a report needs to reproduce the stream (plan digest included)."""
        digest = hashlib.sha256(np.asarray(self.plan, np.int64).tobytes()).hexdigest()[:16]
        return {"images": list(self.names), "tile": list(self.tile), "overlap": self.overlap,
                "batch": self.batch, "tiles": len(self.plan), "scale": self.scale,
                "seed": self.seed, "plan_sha256_16": digest}
