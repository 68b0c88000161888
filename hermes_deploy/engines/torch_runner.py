"""PyTorch runner: the deploy-form model in eager mode, on CPU or CUDA.

Implements the runner interface of :mod:`hermes_deploy.runtime.runner`. Its ModelSpec is
measured from the model itself (the same spec an ONNX export would carry).
"""

from __future__ import annotations

import numpy as np

from ..runtime.runner import checked_inputs


def _cached_spec(model, source: str, describe):
    """Measuring the receptive field takes a while: keep each checkpoint's spec on disk."""
    from ..atomic import atomic_path
    from ..cache import cache_dir, cache_key, source_hash
    from ..spec import ModelSpec

    path = cache_dir() / "specs" / (cache_key(source) + ".json")
    if path.is_file() and not source_hash(source).startswith("preset:"):
        try:
            return ModelSpec.from_json(path.read_text(), str(path))
        except Exception:  # a damaged cache entry is simply measured again
            pass
    spec = describe(model, source)
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(spec.to_json())
    except OSError:
        pass  # a read-only cache only costs time
    return spec


class TorchRunner:
    def __init__(self, source: str, device: str = "auto", threads: int = 0) -> None:
        import torch

        from ..export.onnx_export import describe_model
        from ..model.api import load_model
        from ..model.deploy import deploy

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if threads:
            torch.set_num_threads(threads)
        model = load_model(str(source))
        if not model.config.deploy:
            model = deploy(model, fidelity=True)
        self._torch = torch
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.spec = _cached_spec(model, str(source), describe_model)
        self.name = f"torch ({self.device.type})"

    def __enter__(self) -> "TorchRunner":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def context(self, images: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(images, np.float32)).to(self.device)
            return self.model.compute_context(x).float().cpu().numpy()

    def infer(self, tiles: np.ndarray, context: np.ndarray) -> np.ndarray:
        torch = self._torch
        tiles, context = checked_inputs(self.spec, tiles, context)
        with torch.inference_mode():
            x = torch.from_numpy(tiles).to(self.device)
            c = torch.from_numpy(context).to(self.device)
            return self.model(x, context=c).float().cpu().numpy()
