"""Building and loading models by preset, file or bundled name."""

from __future__ import annotations

import os
from pathlib import Path

from ..cache import bundled_models
from ..errors import CheckpointError
from .config import HermesConfig, PRESETS, preset
from .network import Hermes



def build_model(config: HermesConfig) -> Hermes:
    """A freshly initialized training-form (or deploy-form) model for ``config``."""
    return Hermes(config)



def load_model(name_or_path: str | os.PathLike = "default", scale: int = 2) -> Hermes:
    """Load a bundled model by name, a checkpoint file, or an untrained preset.

    Order of lookup: an existing file path; a bundled name (e.g. ``default``,
    ``tiny-x2``); a preset name (``tiny``/``small``/``base``, randomly initialized at
    ``scale``).
    """
    from .checkpoint import load_checkpoint

    text = str(name_or_path)
    if Path(text).suffix in (".safetensors", ".pth", ".pt") or Path(text).exists():
        return load_checkpoint(text)
    bundled = bundled_models()
    if text in bundled:
        return load_checkpoint(bundled[text])
    if text in PRESETS:
        return Hermes(preset(text, scale=scale)).eval()
    choices = sorted(set(bundled) | set(PRESETS))
    raise CheckpointError(f"no model named '{text}': give a checkpoint path or one of {choices}")
