"""The quality harness: degrade ground truth, restore with any backend, score.

Backend-agnostic: a *restorer* is any callable ``lq (H, W, 3) float32 [0,1] ->
restored (sH, sW, 3)``, so torch, ONNX Runtime, FP16/INT8 graphs and TensorRT engines
are scored by the same code. PSNR/SSIM are on the BT.601 Y channel with a border of
``scale`` pixels cropped (the SR-paper convention; at scale 1 nothing is cropped), next
to the no-model baseline (bicubic upscale for SR, the degraded input for restoration).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import numpy as np

from ..errors import InvalidArgumentError
from .degrade import Degradation
from .metrics import psnr_y, ssim_y

Restorer = Callable[[np.ndarray], np.ndarray]


@dataclass
class ImageScore:
    name: str
    psnr: float
    ssim: float
    baseline_psnr: float
    baseline_ssim: float
    seconds: float

    @property
    def gain(self) -> float:
        return self.psnr - self.baseline_psnr


@dataclass
class EvalReport:
    task: str
    images: list[ImageScore] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def mean(self, key: str) -> float:
        return float(np.mean([getattr(s, key) for s in self.images])) if self.images else float("nan")

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "images": [dict(asdict(s), gain=s.gain) for s in self.images],
            "mean": {k: self.mean(k) for k in ("psnr", "ssim", "baseline_psnr", "baseline_ssim", "gain")},
            **self.extra,
        }

    def table(self) -> str:
        rows = [f"{'image':<24}{'PSNR-Y':>9}{'SSIM-Y':>9}{'base PSNR':>11}{'base SSIM':>11}{'gain dB':>9}"]
        for s in self.images:
            rows.append(f"{s.name:<24}{s.psnr:9.3f}{s.ssim:9.4f}{s.baseline_psnr:11.3f}"
                        f"{s.baseline_ssim:11.4f}{s.gain:+9.3f}")
        rows.append(f"{'mean':<24}{self.mean('psnr'):9.3f}{self.mean('ssim'):9.4f}"
                    f"{self.mean('baseline_psnr'):11.3f}{self.mean('baseline_ssim'):11.4f}"
                    f"{self.mean('gain'):+9.3f}")
        return "\n".join(rows)


def evaluate(restore: Restorer, images: Iterable[tuple[str, np.ndarray]], degradation: Degradation,
             seed: int = 0) -> EvalReport:
    """Score ``restore`` on (name, ground truth HxWx3 float [0,1]) pairs."""
    rng = np.random.default_rng(seed)
    crop = degradation.scale if degradation.scale > 1 else 0
    report = EvalReport(task=degradation.describe())
    for name, gt in images:
        target = degradation.target(gt)
        lq = degradation.apply(target, rng)
        start = time.perf_counter()
        out = np.clip(np.asarray(restore(lq), dtype=np.float32), 0.0, 1.0)
        seconds = time.perf_counter() - start
        if out.shape != target.shape:
            raise InvalidArgumentError(f"restorer returned shape {out.shape} for '{name}', expected "
                             f"{target.shape}")
        base = np.clip(degradation.baseline(lq), 0.0, 1.0)
        report.images.append(ImageScore(
            name=name, psnr=psnr_y(out, target, crop), ssim=ssim_y(out, target, crop),
            baseline_psnr=psnr_y(base, target, crop), baseline_ssim=ssim_y(base, target, crop),
            seconds=seconds))
    return report
