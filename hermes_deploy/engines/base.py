"""The runner interface every backend implements (after Polygraphy's runners).

A runner is a context manager with:

- ``spec``: the :class:`~hermes_deploy.spec.ModelSpec` of the model it runs;
- ``name``: the backend, e.g. ``"onnxruntime (CPUExecutionProvider)"``;
- ``context(images)``: (B, C, H, W) float32 in [0, 1] -> (B, K) per-image context;
- ``infer(tiles, context)``: (B, C, h, w) float32 tiles and (1 or B, K) context ->
  (B, C_out, s*h, s*w) float32.

The runtime only ever sees this interface.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..spec import ModelSpec


class Runner(Protocol):
    spec: ModelSpec
    name: str

    def context(self, images: np.ndarray) -> np.ndarray: ...

    def infer(self, tiles: np.ndarray, context: np.ndarray) -> np.ndarray: ...

    def __enter__(self) -> "Runner": ...

    def __exit__(self, *exc) -> None: ...
