"""The runner interface every backend implements (after Polygraphy's runners).

A runner is a context manager with:

- ``spec``: the :class:`~hermes_deploy.spec.ModelSpec` of the model it runs;
- ``name``: the backend, e.g. ``"onnxruntime (CPUExecutionProvider)"``;
- ``context(images)``: (B, C, H, W) float32 in [0, 1] -> (B, K) per-image context
  (K = 0 for a single graph, which computes its own from each tile);
- ``infer(tiles, context)``: (B, C, h, w) float32 tiles and (1 or B, K) context ->
  (B, C_out, s*h, s*w) float32.

The runtime only ever sees this interface.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..errors import InputError
from ..spec import ModelSpec


def checked_inputs(spec: ModelSpec, tiles: np.ndarray, context: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous float32 (tiles, context), the context repeated to the batch; a tile
    array of the wrong shape is refused in one line."""
    if tiles.ndim != 4 or tiles.shape[1] != spec.in_channels:
        raise InputError(f"expected (B, {spec.in_channels}, H, W) tiles, got {tiles.shape}")
    if context.shape[0] != tiles.shape[0]:
        context = np.repeat(context[:1], tiles.shape[0], axis=0)
    return np.ascontiguousarray(tiles, np.float32), np.ascontiguousarray(context, np.float32)


class Runner(Protocol):
    spec: ModelSpec
    name: str

    def context(self, images: np.ndarray) -> np.ndarray: ...

    def infer(self, tiles: np.ndarray, context: np.ndarray) -> np.ndarray: ...

    def __enter__(self) -> "Runner": ...

    def __exit__(self, *exc) -> None: ...


def model_feeds(spec: ModelSpec, tiles: np.ndarray, context: np.ndarray,
                noise: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """A graph's feed by the input names ``spec`` carries; a graph that takes noise
    (generative expert kept) gets zeros unless given some."""
    feeds = {spec.input_name: tiles}
    if not spec.single_graph:  # a single graph computes its context inside
        feeds[spec.context_name] = context
    if spec.noise_name:
        feeds[spec.noise_name] = (noise if noise is not None else
                                  np.zeros((tiles.shape[0], 1, *tiles.shape[2:]), np.float32))
    return feeds


def whole_image_restorer(runner: Runner):
    """``HxWxC -> sHxsWxC`` on the whole image at once, clipped to [0, 1]: the
    restorer the quality harness (:mod:`hermes_deploy.quality.harness`) takes."""

    def restore(lq: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(lq.transpose(2, 0, 1)[None], np.float32)
        return np.clip(runner.infer(x, runner.context(x))[0].transpose(1, 2, 0), 0.0, 1.0)

    return restore
