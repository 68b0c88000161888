"""Checkpoints: safetensors with the full model config in the metadata and the tensors.

Format: a ``.safetensors`` file whose metadata holds ``format = "hermes"``,
``format_version``, ``config`` (the :class:`HermesConfig` as JSON, which records preset,
scale, form and fidelity) and ``package_version``. The same JSON is also stored as a
tensor, under :data:`CONFIG_KEY`, next to the weights: tools that read only the tensors
(spandrel, and through it ComfyUI and chaiNNer, load ``.safetensors`` with
``safetensors.torch.load_file``, which drops the metadata) can still rebuild the model
and recognize the file (MoESR does the same with its ``upscale.MetaUpsample`` tensor).

A ``.pth``/``.pt`` file is read only with ``torch.load(weights_only=True)``, so
arbitrary pickled objects are never executed. It holds either a plain state dict with
the :data:`CONFIG_KEY` tensor (what :func:`save_checkpoint` writes for a ``.pth`` name:
the form spandrel loads) or, legacy, ``{"config": <json str>, "state_dict": {...}}``.
The config tensor is stripped before the weights are loaded.

Loading is strict: any missing, unexpected or shape-mismatched key is reported in one
error, before the model is used. Writes go to a temporary file that is renamed into
place, so a failed save never leaves a partial checkpoint.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import atomic_path
from ..cache import bundled_models
from ..errors import CheckpointError, ConfigError
from .config import HermesConfig
from .network import Hermes

FORMAT = "hermes"
FORMAT_VERSION = "1"
CONFIG_KEY = "hermes.config"
"""State-dict key of the config tensor: the UTF-8 bytes of the config JSON, one per
element of a 1-D uint8 tensor. No module of the network has this name."""
WRITES = (".safetensors", ".pth")


def config_tensor(config: HermesConfig) -> torch.Tensor:
    """The :data:`CONFIG_KEY` tensor of ``config`` (1-D uint8, the JSON's UTF-8 bytes)."""
    return torch.tensor(list(config.to_json().encode("utf-8")), dtype=torch.uint8)


def config_from_tensor(value: object, source: str = "state dict") -> HermesConfig:
    """The config a :data:`CONFIG_KEY` tensor holds; CheckpointError when it is malformed."""
    if not (isinstance(value, torch.Tensor) and value.dtype == torch.uint8 and value.dim() == 1):
        got = (f"{value.dtype} tensor of shape {tuple(value.shape)}"
               if isinstance(value, torch.Tensor) else type(value).__name__)
        raise CheckpointError(f"checkpoint '{source}': '{CONFIG_KEY}' must be a 1-D uint8 tensor "
                              f"of JSON bytes, got a {got}; re-save it with hermes-export convert")
    try:
        text = bytes(value.cpu().tolist()).decode("utf-8")
        return HermesConfig.from_json(text)
    except (UnicodeDecodeError, ConfigError, TypeError) as exc:
        raise CheckpointError(f"checkpoint '{source}': '{CONFIG_KEY}' holds no valid config "
                              f"({exc}); re-save it with hermes-export convert") from None


def split_config(state: dict, source: str = "state dict") -> tuple[HermesConfig | None, dict]:
    """(config from the :data:`CONFIG_KEY` tensor or None, the weights without it)."""
    if CONFIG_KEY not in state:
        return None, dict(state)
    weights = {k: v for k, v in state.items() if k != CONFIG_KEY}
    return config_from_tensor(state[CONFIG_KEY], source), weights


def _package_version() -> str:
    from .. import __version__

    return __version__


def save_checkpoint(model: Hermes, path: str | os.PathLike, extra: dict[str, str] | None = None) -> Path:
    """Write ``model`` (weights + config) to ``path`` atomically.

    ``.safetensors``: the config in the metadata (with ``extra``) and as the
    :data:`CONFIG_KEY` tensor. ``.pth``: a plain state dict of tensors with the
    :data:`CONFIG_KEY` tensor (``extra`` has nowhere to go and is left out), loadable
    with ``torch.load(weights_only=True)`` and by spandrel.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix not in WRITES:
        raise CheckpointError(f"checkpoints are written as {' or '.join(WRITES)}, got "
                              f"'{path.name}'; use one of those suffixes")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tensors[CONFIG_KEY] = config_tensor(model.config)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "config": model.config.to_json(), "package_version": _package_version()}
    meta.update(extra or {})
    from safetensors import SafetensorError

    try:
        with atomic_path(path) as tmp:
            if path.suffix == ".safetensors":
                save_file(tensors, str(tmp), metadata=meta)
            else:  # serialized in memory first: torch.save reports a full disk without errno
                buffer = io.BytesIO()
                torch.save(tensors, buffer)
                tmp.write_bytes(buffer.getvalue())
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
        config_text = meta["config"] if meta.get("format") == FORMAT else None
    elif path.suffix in (".pth", ".pt"):
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"refusing '{path}': it is not a plain weights file "
                                  f"(torch.load weights_only rejected it: {first}); convert it "
                                  "to .safetensors from a trusted environment") from None
        if (isinstance(obj, dict) and isinstance(obj.get("config"), str)
                and isinstance(obj.get("state_dict"), dict)):  # legacy: config beside the weights
            meta, state, config_text = {}, obj["state_dict"], obj["config"]
        elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            meta, state, config_text = {}, obj, None  # a plain state dict
        else:
            raise CheckpointError(f"checkpoint '{path}' must hold a state dict of tensors with "
                                  f"'{CONFIG_KEY}' (or {{'config': json, 'state_dict': tensors}}); "
                                  "convert it with hermes-export convert")
    else:
        raise CheckpointError(f"unknown checkpoint type '{path.suffix}' for '{path}'; "
                              "expected .safetensors (or .pth/.pt weights)")
    from_tensor, state = split_config(state, str(path))
    if config_text is None and from_tensor is None:
        raise CheckpointError(f"checkpoint '{path}' has no HERMES config (neither in its metadata "
                              f"nor as a '{CONFIG_KEY}' tensor); save it with "
                              "hermes_deploy.save_checkpoint")
    try:
        config = from_tensor if config_text is None else HermesConfig.from_json(config_text)
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"checkpoint '{path}': {exc}") from None
    if from_tensor is not None and from_tensor != config:
        raise CheckpointError(f"checkpoint '{path}': the config in its metadata and its "
                              f"'{CONFIG_KEY}' tensor disagree; it was edited by hand, re-save it")
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


@dataclass(frozen=True)
class ConvertResult:
    output: Path
    config: HermesConfig  # of the written file
    params: int
    max_abs_diff: float | None  # deploy form vs the source (fidelity on); None: weights copied


def convert_checkpoint(source: str | os.PathLike, output: str | os.PathLike,
                       deploy: bool = False) -> ConvertResult:
    """Rewrite a checkpoint or bundled model as ``.safetensors`` or ``.pth`` (see
    :func:`save_checkpoint`), with ``deploy`` in the re-parameterized fidelity form.

    The source's own metadata (training notes) is kept in a ``.safetensors`` output.
    Without ``deploy`` the weights are written bit for bit; the output is read back and
    compared with what was meant to be written before this returns.
    """
    if Path(output).suffix not in WRITES:
        raise CheckpointError(f"checkpoints are written as {' or '.join(WRITES)}, got "
                              f"'{Path(output).name}'; use one of those suffixes")
    text = str(source)
    path = Path(text)
    if not path.is_file() and text in bundled_models():
        path = bundled_models()[text]
    elif not path.is_file():
        raise CheckpointError(f"no checkpoint '{text}': give a .safetensors/.pth file or one of "
                              f"the bundled names {sorted(bundled_models())}")
    config, state, meta = read_checkpoint(path)
    model = Hermes(config)
    check_state_dict(model, state, str(path))
    model.load_state_dict(state, strict=True)
    model.eval()
    diff = None
    if deploy:
        from .deploy import deploy as deploy_form

        fast = deploy_form(model, fidelity=True)
        if not config.deploy:
            model.set_fidelity(True)
        x = torch.rand(1, config.in_channels, 48, 40, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            diff = (model(x) - fast(x)).abs().max().item()
        model = fast
    own = {"format", "format_version", "config", "package_version"}
    written = save_checkpoint(model, output, extra={k: v for k, v in meta.items() if k not in own})
    back_config, back, _ = read_checkpoint(written)
    expected = model.state_dict()
    if back_config != model.config or set(back) != set(expected) or not all(
            torch.equal(back[k], v.detach().cpu()) for k, v in expected.items()):
        raise CheckpointError(f"'{written}' does not read back as written; check the disk")
    return ConvertResult(output=written, config=model.config,
                         params=sum(p.numel() for p in model.parameters()),
                         max_abs_diff=diff)
