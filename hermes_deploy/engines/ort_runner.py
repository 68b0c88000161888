"""onnxruntime runner for exported HERMES graphs (main graph + context graph).

``OrtRunner(path)`` opens ``path`` and the companion context graph named in its
ModelSpec; ``context(image)`` runs the context graph once per image, ``infer(tiles,
context)`` runs the main graph. A ``tensorrt``-target graph runs through its lowerings.
Torch-free. ``restorer()`` adapts it to the quality harness (whole image at once).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError, MissingDependencyError
from ..spec import ModelSpec
from .base import checked_inputs


PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def best_providers() -> list[str]:
    """Execution providers present in this onnxruntime build, fastest first."""
    import onnxruntime as ort

    present = set(ort.get_available_providers())
    return [p for p in PREFERRED_PROVIDERS if p in present] or ["CPUExecutionProvider"]


class OrtRunner:
    def __init__(self, path: str | Path, threads: int = 0, providers: list[str] | None = None) -> None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise MissingDependencyError("onnxruntime", "onnx", "running ONNX models") from None
        from ..export.verify import context_graph_path, ort_session

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"'{self.path}' does not exist; export it with hermes-export onnx")
        self.spec = ModelSpec.from_onnx(self.path)
        providers = providers or best_providers()
        self._main = ort_session(self.path, threads, providers)
        # the context graph is small and runs once per image: CPU is enough
        self._ctx = ort_session(context_graph_path(self.path, self.spec), threads)
        self.name = f"onnxruntime ({self._main.get_providers()[0]})"

    def __enter__(self) -> "OrtRunner":
        return self

    def __exit__(self, *exc) -> None:
        self._main = self._ctx = None

    def context(self, image: np.ndarray) -> np.ndarray:
        """(B, C, H, W) float32 [0, 1] -> (B, context_channels)."""
        return self._ctx.run(None, {"input": np.ascontiguousarray(image, np.float32)})[0]

    def infer(self, tiles: np.ndarray, context: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        s = self.spec
        tiles, context = checked_inputs(s, tiles, context)
        feeds = {s.input_name: tiles, s.context_name: context}
        if s.noise_name:
            feeds[s.noise_name] = (noise if noise is not None else
                                   np.zeros((tiles.shape[0], 1, *tiles.shape[2:]), np.float32))
        return self._main.run(None, feeds)[0]

    def restorer(self):
        """HxWxC -> sHxsWxC on the whole image (for the quality harness)."""

        def restore(lq: np.ndarray) -> np.ndarray:
            x = np.ascontiguousarray(lq.transpose(2, 0, 1)[None], np.float32)
            return np.clip(self.infer(x, self.context(x))[0].transpose(1, 2, 0), 0.0, 1.0)

        return restore
