"""Calibration data for INT8 (numpy only; onnxruntime is imported lazily for contexts).

:class:`TileReader` is a seeded, rewindable stream of ``{"input", "context"}`` batches cut
from real images the way the tiled runtime cuts them. See :mod:`.reader`.
"""

from hermes_deploy.calibration.reader import (
    IMAGE_SUFFIXES,
    TileReader,
    load_calibration_images,
    onnx_context_fn,
    tile_grid,
)

__all__ = ["IMAGE_SUFFIXES", "TileReader", "load_calibration_images", "onnx_context_fn", "tile_grid"]
