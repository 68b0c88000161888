"""Calibration data for INT8 (numpy only).

:class:`TileReader` is a seeded, rewindable stream of ``{"input", "context"}`` batches cut
from real images the way the tiled runtime cuts them; the per-image context comes from
a function the caller passes (:func:`hermes_deploy.export.ort.context_fn` runs the
companion context graph). See :mod:`.reader`.
"""

from .reader import TileReader, load_calibration_images, tile_grid

__all__ = ["TileReader", "load_calibration_images", "tile_grid"]
