"""PyTorch runner: the deploy-form model in eager mode, on CPU or CUDA.

Implements the runner interface of :mod:`hermes_deploy.engines.base`. Its ModelSpec is
measured from the model itself (the same spec an ONNX export would carry).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


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
        self.spec = describe_model(model, str(source))
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
        if tiles.ndim != 4 or tiles.shape[1] != self.spec.in_channels:
            raise InputError(f"expected (B, {self.spec.in_channels}, H, W) tiles, got {tiles.shape}")
        if context.shape[0] != tiles.shape[0]:
            context = np.repeat(context[:1], tiles.shape[0], axis=0)
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(tiles, np.float32)).to(self.device)
            c = torch.from_numpy(np.ascontiguousarray(context, np.float32)).to(self.device)
            return self.model(x, context=c).float().cpu().numpy()
