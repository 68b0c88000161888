"""Degradation conditioning: the per-pixel kernel prior and the per-image context.

* :class:`KernelPrior` - a shallow CNN predicting per-pixel kernel features ``k``
  (B x Ck x H x W), used by the deblur expert (the idea of kernel-aware SR, e.g.
  Gu et al., "IKC", CVPR 2019, here implicit and per pixel).
* :class:`ContextEncoder` - everything the network pools over the whole image: the
  degradation token ``g`` (B x Cg) and the router's pooled local features. It is the
  single place where whole-image statistics are taken, so a tiled runtime can compute
  the context once per image and feed the same vector to every tile.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class KernelPrior(nn.Module):
    def __init__(self, in_channels: int, kernel_channels: int, hidden: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1), nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.GELU(),
            nn.Conv2d(hidden, kernel_channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ContextEncoder(nn.Module):
    """x (B, 3, H, W) -> context (B, Cg + C) = [degradation token g, mean of L-stem]."""

    def __init__(self, in_channels: int, token_channels: int, hidden: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1), nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.GELU(),
        )
        # mean and spread of the features: noise and blur show up in both
        self.token = nn.Linear(2 * hidden, token_channels)

    def forward(self, x: torch.Tensor, local_stem: nn.Conv2d) -> torch.Tensor:
        f = self.features(x)
        stats = torch.cat([f.mean(dim=(2, 3)), f.std(dim=(2, 3), correction=0)], dim=1)
        g = self.token(stats)
        pooled_l = F.gelu(local_stem(x)).mean(dim=(2, 3))
        return torch.cat([g, pooled_l], dim=1)
