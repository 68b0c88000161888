"""Model configuration and presets.

A :class:`HermesConfig` fully describes a HERMES-IR/SR network: it is what a
checkpoint stores in its metadata (as JSON) next to the weights, so a checkpoint
can always be rebuilt into the exact module that produced it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

SCALES = (1, 2, 3, 4)


@dataclass(frozen=True)
class HermesConfig:
    """Architecture hyper-parameters of one HERMES network.

    Sizes are channel counts unless stated otherwise; ``window`` and the kernel sizes
    are in pixels of the (low-resolution) input.
    """

    preset: str = "custom"
    scale: int = 2
    in_channels: int = 3
    channels: int = 32  # C: width of both streams
    n_stem: int = 1  # N1: PLK blocks and SSM blocks in each stem stream
    n_fusion: int = 2  # N2: fusion blocks
    kernel_channels: int = 8  # Ck: per-pixel kernel features of the kernel prior
    token_channels: int = 16  # Cg: global degradation token
    plk_kernel: int = 13  # large kernel size of the PLK blocks (odd)
    plk_partial: int = 16  # channels that see the large kernel
    window: int = 8  # window attention size
    heads: int = 2  # attention heads
    ffn_expansion: float = 2.0  # GDFN hidden width factor
    ssm_state: int = 8  # N: SSM state size
    ssm_heads: int = 2  # SSM heads (one scalar decay each)
    ssm_directions: int = 2  # 2 (row- and column-major) or 4 (plus reversed)
    ssm_chunk: int = 64  # SSD chunk length
    msg_levels: int = 1  # multi-scale down/up levels
    num_experts: int = 4  # E1 texture, E2 structure, E3 deblur, E4 generative
    top_k: int = 2
    hf_gain_max: float = 2.0  # anti-ringing clamp of the high-frequency gain
    # Deploy transforms
    deploy: bool = False  # re-parameterized form (single convs, no BatchNorm)
    fidelity: bool = False  # generative expert removed (deploy) / masked (training)

    def __post_init__(self) -> None:
        problems = []
        if self.scale not in SCALES:
            problems.append(f"scale must be one of {SCALES}, got {self.scale}")
        if self.plk_kernel % 2 != 1 or self.plk_kernel < 7:
            problems.append(f"plk_kernel must be odd and >= 7, got {self.plk_kernel}")
        if not 0 < self.plk_partial <= self.channels:
            problems.append(f"plk_partial must be in 1..channels, got {self.plk_partial}")
        if self.channels % self.heads or self.channels % self.ssm_heads:
            problems.append("channels must be divisible by heads and ssm_heads")
        if self.ssm_directions not in (2, 4):
            problems.append(f"ssm_directions must be 2 or 4, got {self.ssm_directions}")
        if self.num_experts != 4:
            problems.append("num_experts must be 4 (texture, structure, deblur, generative)")
        if not 1 <= self.top_k <= 3:
            problems.append(f"top_k must be in 1..3, got {self.top_k}")
        if self.window < 2 or self.msg_levels < 0:
            problems.append("window must be >= 2 and msg_levels >= 0")
        if problems:
            raise ConfigError("invalid HERMES config: " + "; ".join(problems))

    @property
    def size_multiple(self) -> int:
        """The padded working size is a multiple of this (window x 2^levels)."""
        return self.window * (2**self.msg_levels)

    @property
    def context_channels(self) -> int:
        """Width of the per-image context vector: degradation token + pooled L."""
        return self.token_channels + self.channels

    @property
    def active_experts(self) -> int:
        return self.num_experts - 1 if (self.fidelity and self.deploy) else self.num_experts

    def replace(self, **changes: Any) -> "HermesConfig":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "HermesConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"model config is not valid JSON ({exc}); re-save the checkpoint") from None
        if not isinstance(data, dict):
            raise ConfigError("model config must be a JSON object; re-save the checkpoint")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"model config has unknown fields {unknown}; it was written by a newer "
                "hermes-deploy: upgrade the package"
            )
        return cls(**data)


PRESETS: dict[str, dict[str, Any]] = {
    # CPU default; < 300K parameters.
    "tiny": dict(channels=32, n_stem=1, n_fusion=2, kernel_channels=8, token_channels=16,
                 plk_kernel=13, plk_partial=16, window=8, heads=2, ssm_state=8,
                 ssm_heads=2, ssm_directions=2, msg_levels=1),
    # Efficient-SR class (SPAN / SAFMN territory).
    "small": dict(channels=40, n_stem=1, n_fusion=2, kernel_channels=8, token_channels=16,
                  plk_kernel=17, plk_partial=16, window=8, heads=2, ssm_state=8,
                  ssm_heads=2, ssm_directions=4, msg_levels=1),
    "base": dict(channels=64, n_stem=2, n_fusion=4, kernel_channels=16, token_channels=32,
                 plk_kernel=17, plk_partial=24, window=8, heads=4, ssm_state=16,
                 ssm_heads=4, ssm_directions=4, msg_levels=2),
}


def preset(name: str, scale: int = 2, **overrides: Any) -> HermesConfig:
    """Config of a named preset (``tiny``, ``small``, ``base``) at ``scale``."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset '{name}'; choose one of {sorted(PRESETS)}")
    return HermesConfig(preset=name, scale=scale, **{**PRESETS[name], **overrides})
