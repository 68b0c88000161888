"""Run a torch model on numpy images (HxWxC float32 in [0, 1]); used by the harness."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def torch_restorer(model: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """A backend-agnostic restorer (see :mod:`hermes_deploy.quality.harness`)."""

    @torch.no_grad()
    def restore(lq: np.ndarray) -> np.ndarray:
        was_training = model.training
        model.eval()
        try:
            x = torch.from_numpy(np.ascontiguousarray(lq, dtype=np.float32)).permute(2, 0, 1)[None]
            y = model(x)
        finally:
            model.train(was_training)
        return y[0].permute(1, 2, 0).clamp(0, 1).numpy()

    return restore
