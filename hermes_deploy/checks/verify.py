"""``verify_onnx``: onnxruntime against the torch deploy model.

The main graph is fed the context computed by its companion context graph (also in
onnxruntime), so both exported graphs are checked against one torch forward. A
``tensorrt``-target graph runs through its lowerings (:mod:`hermes_deploy.export.lowering`).
Inputs: seeded random images in [0, 1] at several sizes and batches, plus crops of
real photographs. FP32 graphs must match within ``max_abs``; FP16/INT8 graphs are judged
by PSNR (dB, peak 1) since their error is expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..spec import ModelSpec

DEFAULT_SIZES = ((64, 64), (97, 131), (256, 192))
DEFAULT_BATCHES = (1, 3)


@dataclass
class VerifyCase:
    name: str
    shape: tuple[int, ...]
    max_abs: float
    psnr: float
    finite: bool


@dataclass
class VerifyReport:
    path: str
    spec: ModelSpec
    cases: list[VerifyCase] = field(default_factory=list)
    max_abs_tol: float = 1e-4
    min_psnr: float = 45.0

    @property
    def judged_by_psnr(self) -> bool:
        return self.spec.precision != "fp32"

    @property
    def passed(self) -> bool:
        if not self.cases or not all(c.finite for c in self.cases):
            return False
        if self.judged_by_psnr:
            return min(c.psnr for c in self.cases) >= self.min_psnr
        return max(c.max_abs for c in self.cases) <= self.max_abs_tol

    def table(self) -> str:
        rows = [f"{'case':<28}{'shape':<22}{'max abs':>12}{'PSNR dB':>10}"]
        for c in self.cases:
            rows.append(f"{c.name:<28}{str(c.shape):<22}{c.max_abs:12.3e}{c.psnr:10.2f}"
                        + ("" if c.finite else "  NON-FINITE"))
        crit = (f"min PSNR >= {self.min_psnr} dB" if self.judged_by_psnr
                else f"max abs <= {self.max_abs_tol:g}")
        rows.append(f"{'PASS' if self.passed else 'FAIL'} ({crit})")
        return "\n".join(rows)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def _cases(spec: ModelSpec, sizes, batches, images, seed: int):
    rng = np.random.default_rng(seed)
    if spec.tile:
        sizes = (tuple(spec.tile),)
    if spec.batch:
        batches = (spec.batch,)
    for h, w in sizes:
        for b in batches:
            yield f"random {h}x{w} b{b}", rng.random((b, spec.in_channels, h, w), dtype=np.float32)
    for name, img in images:
        for h, w in sizes[:1] if spec.tile else sizes:
            if img.shape[0] < h or img.shape[1] < w:
                continue
            top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
            crop = img[top:top + h, left:left + w].transpose(2, 0, 1)[None]
            b = spec.batch or 1
            yield f"{name} {h}x{w}", np.ascontiguousarray(np.repeat(crop, b, 0), dtype=np.float32)


def reference_model(reference: str, spec: ModelSpec):
    """The torch deploy model ``reference`` names, in the form a graph of ``spec`` was
    exported from (fidelity as the graph); a model of another scale is refused."""
    from ..model.api import load_model
    from ..model.deploy import deploy

    model = load_model(reference)
    if not model.config.deploy:
        model = deploy(model, fidelity=spec.fidelity)
    if model.config.scale != spec.scale:
        raise InputError(f"reference is x{model.config.scale} but the graph is x{spec.scale}; "
                         "pass the checkpoint it was exported from")
    return model


def verify_onnx(onnx_path: str | Path, reference: str | None = None, images: list[str] | None = None,
                sizes=DEFAULT_SIZES, batches=DEFAULT_BATCHES, max_abs_tol: float = 1e-4,
                min_psnr: float = 45.0, seed: int = 0) -> VerifyReport:
    """Compare an exported graph (and its context graph) with the torch deploy model."""
    import torch

    from ..export.ort import GraphPair
    from ..quality import HELDOUT_PHOTOS
    from ..quality.photos import load_images

    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise InputError(f"'{onnx_path}' does not exist; export it with hermes-export onnx")
    spec = ModelSpec.from_onnx(onnx_path)
    if reference is None:
        raise InputError("give --reference MODEL (the checkpoint or bundled name it was exported "
                         "from); a random preset cannot be a reference")
    model = reference_model(reference, spec)
    graphs = GraphPair(onnx_path)
    if images is None:
        images = list(HELDOUT_PHOTOS[:1])
    # an explicit empty list means random inputs only (load_images([]) would
    # fall back to every held-out photo)
    photos = load_images(images) if images else []
    report = VerifyReport(path=str(onnx_path), spec=spec, max_abs_tol=max_abs_tol, min_psnr=min_psnr)
    for name, x in _cases(spec, sizes, batches, photos, seed):
        out = graphs(x)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        finite = bool(np.isfinite(out).all())
        diff = float(np.abs(out.astype(np.float64) - ref).max()) if finite else float("inf")
        report.cases.append(VerifyCase(name, tuple(x.shape), diff, _psnr(out, ref) if finite else
                                       float("-inf"), finite))
    return report
