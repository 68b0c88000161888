"""FFT high/low-frequency split with a learnable spectral gate.

``low`` comes from ``hermes::spectral_lowpass`` (a per-channel radial sigmoid gate on
the rFFT2 spectrum); ``high = gain * (x - low)`` with the gain clamped to
``[0, gain_max]`` so the high band can be boosted but not without bound - unbounded
high-frequency gain is what produces ringing halos.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import ops


class FrequencySplit(nn.Module):
    def __init__(self, channels: int, gain_max: float = 2.0) -> None:
        super().__init__()
        self.gain_max = gain_max
        self.cutoff = nn.Parameter(torch.full((channels,), 0.25))
        self.log_sharpness = nn.Parameter(torch.full((channels,), 2.5))  # slope e^2.5 ~ 12
        self.hf_gain = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = ops.spectral_lowpass(x, self.cutoff, torch.exp(self.log_sharpness))
        gain = torch.clamp(self.hf_gain, 0.0, self.gain_max)
        return low, (x - low) * gain[:, None, None]
