"""``evaluate_model``: the quality harness applied to a model or an exported graph.

A torch model (bundled name, checkpoint, preset) gets its scores plus router
utilization; an ``.onnx`` graph runs in onnxruntime with its context graph. The harness
itself (:mod:`hermes_deploy.quality.harness`) stays numpy-only; this check sits above
the model and the engines and imports each lazily.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import InputError
from ..quality.degrade import Degradation
from ..quality.harness import EvalReport, evaluate
from ..quality.photos import load_images

TASKS = ("sr", "denoise", "deblur-gaussian", "deblur-motion")


def degradation_for(task: str, scale: int, sigma: float = 15.0) -> Degradation:
    """The evaluation degradation of a task (``sigma`` on the 0..255 scale)."""
    if task == "sr":
        if scale < 2:
            raise InputError("task 'sr' needs a model of scale >= 2; use --task denoise or "
                             "deblur-* for a scale-1 model")
        return Degradation.sr(scale)
    if scale != 1:
        raise InputError(f"task '{task}' needs a scale-1 model, this one is x{scale}; use --task sr")
    if task == "denoise":
        return Degradation.denoise(sigma / 255)
    if task in ("deblur-gaussian", "deblur-motion"):
        return Degradation.deblur(task.split("-")[1])
    raise InputError(f"unknown task '{task}'; choose one of {TASKS}")



def evaluate_model(model_source: str | os.PathLike, images: list[str] | None = None,
                   task: str | None = None, scale: int = 2, sigma: float = 15.0,
                   seed: int = 0) -> EvalReport:
    """Evaluate a model in fidelity mode: a torch model (name, checkpoint, preset) or an
    exported ``.onnx`` graph (run by onnxruntime, with its context graph)."""
    if str(model_source).endswith(".onnx"):
        from ..engines.ort_runner import OrtRunner

        runner = OrtRunner(model_source)
        task = task or ("sr" if runner.spec.scale > 1 else "denoise")
        degradation = degradation_for(task, runner.spec.scale, sigma)
        report = evaluate(runner.restorer(), load_images(images), degradation, seed=seed)
        report.extra["model"] = str(model_source)
        report.extra["backend"] = "onnxruntime"
        return report
    import torch

    from ..model.api import load_model
    from ..model.moe import EXPERT_NAMES
    from ..model.restore import torch_restorer

    model = load_model(model_source, scale=scale)
    if not model.config.deploy:
        model.set_fidelity(True)
    task = task or ("sr" if model.config.scale > 1 else "denoise")
    degradation = degradation_for(task, model.config.scale, sigma)
    pairs = load_images(images)
    report = evaluate(torch_restorer(model), pairs, degradation, seed=seed)

    # Router utilization: share of the routing mass per expert over these images.
    rng = np.random.default_rng(seed)
    gates = []
    with torch.no_grad():
        for _, gt in pairs:
            lq = degradation.apply(degradation.target(gt), rng)
            x = torch.from_numpy(lq).permute(2, 0, 1)[None]
            gates.append(model.moe.route(model.compute_context(x))[1][0])
    util = torch.stack(gates).mean(0).tolist()
    names = EXPERT_NAMES[: len(util)]
    report.extra["utilization"] = dict(zip(names, util))
    report.extra["model"] = str(model_source)
    report.extra["backend"] = "torch"
    return report
