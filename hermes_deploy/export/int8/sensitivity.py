"""Sensitivity analysis of the INT8 pass: which module groups become float islands.

Sensitivity (``sensitivity=True``): layers are grouped by module (the weight's module
path: ``head``, ``upsample``, ``fusion.0``, ``moe.experts.1``, ...). Each group is
quantized alone and its PSNR-Y cost against ground truth is measured on held-back
calibration tiles (a second reader stream, never the evaluation photos); then the most
costly groups become float islands, one at a time, until the fully quantized rest is
within ``budget_db`` of FP32. Groups come from :func:`~.nodes.candidate_nodes`; credits
are in :mod:`hermes_deploy.export.int8`.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from ..lowering import runnable
from .qdq import quantize_qdq

Progress = Callable[[str], None]


def _outputs(model, pairs) -> list[np.ndarray]:
    from ..ort import ort_session

    session = ort_session(runnable(model))
    return [session.run(None, feed)[0] for feed, _ in pairs]


def _y(batch: np.ndarray, crop: int) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> BT.601 Y (B, H', W') on 0..255, ``crop`` border removed."""
    from ...quality.metrics import rgb_to_y

    y = np.stack([rgb_to_y(np.clip(b, 0.0, 1.0).transpose(1, 2, 0)) for b in batch])
    return y[:, crop:y.shape[1] - crop, crop:y.shape[2] - crop] if crop else y


def noise_mse(outputs: list[np.ndarray], reference: list[np.ndarray], crop: int) -> float:
    """Mean squared Y difference (0..255 scale) of ``outputs`` from ``reference``; inf when
    an output is not finite."""
    if not all(np.isfinite(o).all() for o in outputs):
        return float("inf")
    return float(np.mean([np.mean((_y(o, crop) - _y(r, crop)) ** 2) for o, r in zip(outputs, reference)]))


def predicted_cost_db(mse_noise: float, reference_psnr_db: float) -> float:
    """PSNR-Y drop (dB) that quantization noise of Y-MSE ``mse_noise`` causes on an image the
    FP32 model restores at ``reference_psnr_db``: the noise is independent of the model's
    own error, so the MSEs add (checked on the held-out photos: INT8 noise of ~0.73
    costs 0.09 dB at 32.5 dB and 0.21 dB at 36.5 dB)."""
    if not math.isfinite(mse_noise):
        return float("inf")
    mse_ref = 255.0 ** 2 * 10 ** (-reference_psnr_db / 10)
    return 10 * math.log10(1 + mse_noise / mse_ref)


REFERENCE_PSNR_DB = 38.0  # an easy photograph: costs are largest where the model is best


def sensitivity(model, ranges, groups: dict[str, str], pairs, scale: int, budget_db: float,
                op_types: Sequence[str], progress: Progress | None = None,
                reference_psnr_db: float = REFERENCE_PSNR_DB) -> dict:
    """Per-group quantization noise and the float islands that keep the rest within
    ``budget_db`` (predicted PSNR-Y cost at ``reference_psnr_db``, see
    :func:`predicted_cost_db`).

    The cost of a group is measured against the FP32 outputs on ``pairs`` (noise, not
    error against ground truth: a PSNR drop against ground truth depends on how well the
    model already does on those tiles, which hides the noise on hard textures). Greedy:
    the noisiest group becomes float until the fully quantized rest is within budget.
    """
    say = progress or (lambda m: None)
    reference = _outputs(model, pairs)
    gts = [gt for _, gt in pairs]
    fp32_err = noise_mse(reference, gts, scale)
    by_group: dict[str, list[str]] = {}
    for node, group in groups.items():
        by_group.setdefault(group, []).append(node)
    noise = {}
    for group, nodes in sorted(by_group.items()):
        noise[group] = noise_mse(_outputs(quantize_qdq(model, ranges, nodes, op_types), pairs), reference, scale)
        say(f"sensitivity {group:<16} {len(nodes):3d} nodes  noise MSE {noise[group]:.4f}  "
            f"cost {predicted_cost_db(noise[group], reference_psnr_db):.4f} dB")
    order = sorted(noise, key=lambda g: -noise[g])
    islands: list[str] = []
    steps = []
    while True:
        nodes = [n for n, g in groups.items() if g not in islands]
        outs = _outputs(quantize_qdq(model, ranges, nodes, op_types), pairs)
        q = noise_mse(outs, reference, scale)
        cost = predicted_cost_db(q, reference_psnr_db)
        steps.append({"float_islands": list(islands), "quantized_nodes": len(nodes), "noise_mse": q,
                      "cost_db": cost, "tile_psnr_drop_db": _psnr_drop(fp32_err, noise_mse(outs, gts, scale))})
        say(f"float islands {islands or '[]'}: noise MSE {q:.4f}, cost {cost:.4f} dB")
        if cost <= budget_db or len(islands) == len(order):
            break
        islands.append(order[len(islands)])
    return {"reference_psnr_db": reference_psnr_db, "budget_db": budget_db,
            "tiles_fp32_psnr_y": 10 * math.log10(255.0 ** 2 / fp32_err) if fp32_err else float("inf"),
            "group_noise_mse": noise,
            "group_cost_db": {g: predicted_cost_db(v, reference_psnr_db) for g, v in noise.items()},
            "group_nodes": {g: len(v) for g, v in by_group.items()},
            "steps": steps, "float_islands": islands, "within_budget": steps[-1]["cost_db"] <= budget_db}


def _psnr_drop(mse_fp32: float, mse_int8: float) -> float:
    if not math.isfinite(mse_int8):
        return float("inf")
    return 10 * math.log10(mse_int8 / mse_fp32) if mse_fp32 > 0 else 0.0
