"""Shot changes, and how steady a restored video is over time (numpy only).

**Cuts.** Each frame is reduced to a 48x27 thumbnail (area means) and a 16-bin histogram
per RGB channel. A frame starts a new shot when both

* the histogram distance to the previous frame (half the L1 distance of the normalized
  histograms, mean over channels: 0 for equal, 1 for disjoint) is over ``threshold``, and
* it is over ``ratio`` times the mean distance of the frames since the last cut (so a
  shot with steady motion, whose every frame differs, does not cut itself to pieces:
  the adaptive idea of PySceneDetect's AdaptiveDetector),

and the shot so far is at least ``min_frames`` long. ``benchmarks/bench_video.py shots``
measures the distances of cuts against those of static and panning shots on the bundled
photographs; its figures are in BENCHMARKS.md.

**Temporal error** (after TecoGAN's tOF, with a global translation for the flow):
for each pair of frames, the translation of the *input* (whole pixels, within
``search``) that best matches frame t to frame t-1 is found by exhaustive search; the
error is the mean absolute difference between output frame t and output frame t-1
moved by ``scale`` times that translation, away from the borders. A restorer that treats
every frame alike (a convolutional network with the same context) scores near zero on a
static or panning shot; one whose routing drifts from frame to frame does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

THUMB = (27, 48)
BINS = 16


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """Area-mean thumbnail of an (H, W, 3) float image, THUMB sized (or smaller)."""
    h, w = rgb.shape[:2]
    th, tw = min(THUMB[0], h), min(THUMB[1], w)
    ys = np.linspace(0, h, th + 1).astype(int)
    xs = np.linspace(0, w, tw + 1).astype(int)
    rows = np.add.reduceat(rgb, ys[:-1], axis=0) / np.diff(ys)[:, None, None]
    return np.add.reduceat(rows, xs[:-1], axis=1) / np.diff(xs)[None, :, None]


def histogram(thumb: np.ndarray) -> np.ndarray:
    """(3, BINS) normalized histograms of a thumbnail's channels."""
    idx = np.clip((thumb * BINS).astype(int), 0, BINS - 1).reshape(-1, 3)
    out = np.stack([np.bincount(idx[:, c], minlength=BINS) for c in range(3)]).astype(np.float64)
    return out / out.sum(axis=1, keepdims=True)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(0.5 * np.abs(a - b).sum(axis=1).mean())


@dataclass
class ShotDetector:
    threshold: float = 0.25
    ratio: float = 3.0
    min_frames: int = 3
    _prev: np.ndarray | None = None
    _since: list[float] = field(default_factory=list)
    _length: int = 0
    scores: list[float] = field(default_factory=list)

    def cut(self, rgb: np.ndarray) -> bool:
        """Feed the next frame; True if it starts a new shot (the first frame does)."""
        hist = histogram(thumbnail(rgb))
        prev, self._prev = self._prev, hist
        if prev is None:
            self._length = 1
            return True
        d = distance(prev, hist)
        self.scores.append(d)
        base = float(np.mean(self._since)) if self._since else 0.0
        if (d > self.threshold and d > self.ratio * base and self._length >= self.min_frames):
            self._since, self._length = [], 1
            return True
        self._since.append(d)
        self._length += 1
        return False


def _shift_pair(a: np.ndarray, b: np.ndarray, dy: int, dx: int, margin: int):
    """Overlapping regions of ``a`` and of ``b`` moved by (dy, dx), ``margin`` inside."""
    h, w = a.shape[:2]
    ya, yb = margin + max(0, -dy), margin + max(0, dy)
    xa, xb = margin + max(0, -dx), margin + max(0, dx)
    hh, ww = h - 2 * margin - abs(dy), w - 2 * margin - abs(dx)
    return a[ya:ya + hh, xa:xa + ww], b[yb:yb + hh, xb:xb + ww]


def global_motion(prev: np.ndarray, cur: np.ndarray, search: int = 4) -> tuple[int, int]:
    """The whole-pixel translation (dy, dx) with ``cur[y, x] ~ prev[y + dy, x + dx]``."""
    best, arg = np.inf, (0, 0)
    for dy in range(-search, search + 1):
        for dx in range(-search, search + 1):
            a, b = _shift_pair(cur, prev, dy, dx, search)
            err = float(np.abs(a - b).mean())
            if err < best - 1e-12:
                best, arg = err, (dy, dx)
    return arg


def temporal_error(outputs: list[np.ndarray], inputs: list[np.ndarray], scale: int,
                   search: int = 4, margin: int = 8) -> float:
    """Mean motion-compensated difference of consecutive outputs (see module doc)."""
    if len(outputs) != len(inputs) or len(outputs) < 2:
        raise ValueError("need two or more frames, as many outputs as inputs")
    total = 0.0
    for t in range(1, len(outputs)):
        dy, dx = global_motion(inputs[t - 1].astype(np.float64), inputs[t].astype(np.float64),
                               search)
        a, b = _shift_pair(outputs[t].astype(np.float64), outputs[t - 1].astype(np.float64),
                           scale * dy, scale * dx, scale * (search + margin))
        total += float(np.abs(a - b).mean())
    return total / (len(outputs) - 1)
