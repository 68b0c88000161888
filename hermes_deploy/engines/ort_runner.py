"""onnxruntime runner for exported HERMES graphs (main graph + context graph).

``OrtRunner(path)`` opens ``path`` and the companion context graph named in its
ModelSpec (:class:`hermes_deploy.export.ort.GraphPair`) at the graph's own precision
(``f32``, or ``int8`` for a Q/DQ graph; see :mod:`.precision`); ``context(image)`` runs the
context graph once per image, ``infer(tiles, context)`` runs the main graph. A
``tensorrt``-target graph runs through its lowerings. Torch-free. ``restorer()`` adapts
it to the quality harness (whole image at once).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..export.ort import GraphPair
from ..optional import require
from ..runtime.runner import checked_inputs, whole_image_restorer
from .precision import resolve_precision

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def best_providers() -> list[str]:
    """Execution providers present in this onnxruntime build, fastest first."""
    ort = require("onnxruntime", purpose="Running ONNX models")
    present = set(ort.get_available_providers())
    return [p for p in PREFERRED_PROVIDERS if p in present] or ["CPUExecutionProvider"]


class OrtRunner:
    def __init__(self, path: str | Path, threads: int = 0, providers: list[str] | None = None,
                 precision: str | None = None) -> None:
        self._graphs = GraphPair(path, threads, providers or best_providers())
        self.path = self._graphs.path
        self.spec = self._graphs.spec
        self.precision = resolve_precision(self.spec, precision, "onnxruntime")
        self.name = f"onnxruntime ({self._graphs.main.get_providers()[0]}, {self.precision})"

    def __enter__(self) -> "OrtRunner":
        return self

    def __exit__(self, *exc) -> None:
        self._graphs = None

    def context(self, image: np.ndarray) -> np.ndarray:
        """(B, C, H, W) float32 [0, 1] -> (B, context_channels)."""
        return self._graphs.context(image)

    def infer(self, tiles: np.ndarray, context: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        tiles, context = checked_inputs(self.spec, tiles, context)
        return self._graphs.run(tiles, context, noise)

    def restorer(self):
        """HxWxC -> sHxsWxC on the whole image (for the quality harness)."""
        return whole_image_restorer(self)
