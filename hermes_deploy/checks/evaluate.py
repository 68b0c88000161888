"""``evaluate_model``: the quality harness applied to a model or an exported graph.

A torch model (bundled name, checkpoint, preset) gets its scores plus router
utilization; an ``.onnx`` graph runs with its context graph on onnxruntime or OpenVINO
at a chosen CPU precision, and with ``reference`` each image's output is also compared
with the FP32 torch model's output (PSNR, RGB, peak 1). The harness
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


def _graph_report(model_source, images, task, sigma, seed, backend, precision, threads,
                  reference) -> EvalReport:
    from ..engines.select import open_runner
    from ..quality.metrics import psnr
    from ..runtime.runner import whole_image_restorer

    runner, _ = open_runner(str(model_source), backend or "onnxruntime", threads=threads,
                            precision=precision)
    with runner:
        restore = whole_image_restorer(runner)
        task = task or ("sr" if runner.spec.scale > 1 else "denoise")
        degradation = degradation_for(task, runner.spec.scale, sigma)
        vs_reference: list[float] = []
        if reference is not None:
            from ..model.restore import torch_restorer
            from .verify import reference_model

            ref_restore = torch_restorer(reference_model(reference, runner.spec))
            graph_restore = restore

            def restore(lq):
                out = graph_restore(lq)
                vs_reference.append(psnr(out, ref_restore(lq)))
                return out

        report = evaluate(restore, load_images(images), degradation, seed=seed)
        report.extra.update(model=str(model_source), backend=runner.name,
                            precision=getattr(runner, "precision", runner.spec.precision))
    if vs_reference:
        report.extra["psnr_vs_reference"] = {s.name: v for s, v in zip(report.images, vs_reference)}
    return report


def evaluate_model(model_source: str | os.PathLike, images: list[str] | None = None,
                   task: str | None = None, scale: int = 2, sigma: float = 15.0,
                   seed: int = 0, backend: str | None = None, precision: str | None = None,
                   threads: int = 0, reference: str | None = None) -> EvalReport:
    """Evaluate a model in fidelity mode: a torch model (name, checkpoint, preset) or an
    exported ``.onnx`` graph (``backend`` onnxruntime (default) or openvino, at
    ``precision``; ``reference`` adds PSNR against the FP32 torch model)."""
    if str(model_source).endswith(".onnx"):
        return _graph_report(model_source, images, task, sigma, seed, backend, precision, threads,
                             reference)
    if backend not in (None, "torch") or precision not in (None, "f32") or reference is not None:
        raise InputError("--backend, --precision and --reference apply to an exported .onnx graph; "
                         "export the model with hermes-export onnx and evaluate the graph")
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
