"""Building and loading models by preset, file or bundled name."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError
from .config import HermesConfig, PRESETS, preset
from .network import Hermes

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "weights"


def build_model(config: HermesConfig) -> Hermes:
    """A freshly initialized training-form (or deploy-form) model for ``config``."""
    return Hermes(config)


def bundled_models() -> dict[str, Path]:
    """Bundled checkpoints by name (``default`` is the x2 tiny model when shipped)."""
    found = {p.name[: -len(".safetensors")]: p for p in sorted(BUNDLED_DIR.glob("*.safetensors"))}
    if "default" not in found and "tiny-x2" in found:
        found["default"] = found["tiny-x2"]
    return found


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
