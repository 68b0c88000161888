"""Checkpoints: safetensors with the full model config in the metadata.

Format: a ``.safetensors`` file whose metadata holds ``format = "hermes"``,
``format_version``, ``config`` (the :class:`HermesConfig` as JSON, which records preset,
scale, form and fidelity) and ``package_version``. Legacy ``.pth``/``.pt`` files are
read only with ``torch.load(weights_only=True)`` and must hold ``{"config": <json str>,
"state_dict": {...}}``: arbitrary pickled objects are never executed.

Loading is strict: any missing, unexpected or shape-mismatched key is reported in one
error, before the model is used. Writes go to a temporary file that is renamed into
place, so a failed save never leaves a partial checkpoint.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from ..atomic import atomic_path
from ..errors import CheckpointError, ConfigError
from .config import HermesConfig
from .network import Hermes

FORMAT = "hermes"
FORMAT_VERSION = "1"


def _package_version() -> str:
    from .. import __version__

    return __version__


def save_checkpoint(model: Hermes, path: str | os.PathLike, extra: dict[str, str] | None = None) -> Path:
    """Write ``model`` (weights + config) to ``path`` (.safetensors) atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"checkpoints are written as .safetensors, got '{path.name}'; "
                              "use a .safetensors file name")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "config": model.config.to_json(), "package_version": _package_version()}
    meta.update(extra or {})
    from safetensors import SafetensorError

    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
    except (OSError, SafetensorError) as exc:  # safetensors reports a full disk as its own error
        raise CheckpointError(f"cannot write checkpoint '{path}': "
                              f"{getattr(exc, 'strerror', None) or exc}; check free space and "
                              "permissions") from None
    return path


def read_checkpoint(path: str | os.PathLike) -> tuple[HermesConfig, dict[str, torch.Tensor], dict[str, str]]:
    """(config, state_dict, metadata) of a checkpoint, without building the model."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist; pass a .safetensors file "
                              "or a bundled model name")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = dict(f.metadata() or {})
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"checkpoint '{path}' is not a readable safetensors file "
                                  f"({exc}); re-export it") from None
        if meta.get("format") != FORMAT or "config" not in meta:
            raise CheckpointError(f"checkpoint '{path}' has no HERMES config in its metadata; "
                                  "save it with hermes_deploy.save_checkpoint")
        config_text = meta["config"]
    elif path.suffix in (".pth", ".pt"):
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"refusing '{path}': it is not a plain weights file "
                                  f"(torch.load weights_only rejected it: {first}); convert it "
                                  "to .safetensors from a trusted environment") from None
        if not (isinstance(obj, dict) and isinstance(obj.get("config"), str)
                and isinstance(obj.get("state_dict"), dict)):
            raise CheckpointError(f"checkpoint '{path}' must hold {{'config': json, 'state_dict': "
                                  "tensors}; convert it with hermes_deploy.save_checkpoint")
        meta, state, config_text = {}, obj["state_dict"], obj["config"]
    else:
        raise CheckpointError(f"unknown checkpoint type '{path.suffix}' for '{path}'; "
                              "expected .safetensors (or .pth/.pt weights)")
    try:
        config = HermesConfig.from_json(config_text)
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"checkpoint '{path}': {exc}") from None
    return config, state, meta


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise one CheckpointError listing every key problem, or return silently."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                        for k, v in expected.items()
                        if k in state and tuple(state[k].shape) != tuple(v.shape))
    if missing or unexpected or mismatched:
        def brief(items):
            return ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {brief(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: {brief(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatch {len(mismatched)}: {brief(mismatched)}")
        raise CheckpointError(f"checkpoint '{source}' does not match its config ("
                              + "; ".join(parts) + "); it was edited or saved by another version")


def load_checkpoint(path: str | os.PathLike) -> Hermes:
    """Build the model described by a checkpoint and load its weights strictly (eval mode)."""
    config, state, _ = read_checkpoint(path)
    model = Hermes(config)
    check_state_dict(model, state, str(path))
    model.load_state_dict(state, strict=True)
    return model.eval()
