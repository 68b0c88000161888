"""Re-parameterizable convolutions.

* :class:`RepConv` - RepVGG-style 3x3 + 1x1 + identity branches, each with BatchNorm,
  fused into one biased 3x3 conv (Ding et al., "RepVGG", CVPR 2021; ECBSR for SR).
* :class:`PartialLargeKernel` - the partial large-kernel conv of PLKSR (Lee et al.,
  "PLKSR", 2024): a large kernel on a channel slice, with parallel 3x3, dilated 3x3 and
  identity branches in training form (the UniRepLKNet/RepLKNet idea) fused into the one
  large kernel.

Both take ``deploy`` at construction so a deploy checkpoint loads straight into the
fused form, and ``reparameterize()`` is idempotent: it fuses once and deletes the
training branches. The slice is processed as split -> conv -> cat (no in-place slice
writes, which export as ScatterND).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _fuse_bn(kernel: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold eval-mode BatchNorm into the preceding (bias-free) conv kernel."""
    std = torch.sqrt(bn.running_var + bn.eps)
    scale = bn.weight / std
    return kernel * scale.reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * scale


def _center_pad(kernel: torch.Tensor, size: int) -> torch.Tensor:
    pad = (size - kernel.shape[-1]) // 2
    return F.pad(kernel, (pad, pad, pad, pad))


def _identity_kernel(channels: int, size: int, like: torch.Tensor) -> torch.Tensor:
    k = torch.zeros(channels, channels, size, size, dtype=like.dtype, device=like.device)
    idx = torch.arange(channels)
    k[idx, idx, size // 2, size // 2] = 1.0
    return k


class RepConv(nn.Module):
    """3x3 conv that trains as (3x3+BN) + (1x1+BN) [+ BN identity] and deploys as one conv."""

    def __init__(self, cin: int, cout: int, deploy: bool = False) -> None:
        super().__init__()
        self.cin, self.cout, self.deploy = cin, cout, deploy
        if deploy:
            self.fused = nn.Conv2d(cin, cout, 3, padding=1, bias=True)
        else:
            self.conv3 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.bn3 = nn.BatchNorm2d(cout)
            self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.bn_id = nn.BatchNorm2d(cout) if cin == cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self.fused(x)
        y = self.bn3(self.conv3(x)) + self.bn1(self.conv1(x))
        if self.bn_id is not None:
            y = y + self.bn_id(x)
        return y

    @torch.no_grad()
    def reparameterize(self) -> None:
        if self.deploy:
            return
        k3, b3 = _fuse_bn(self.conv3.weight, self.bn3)
        k1, b1 = _fuse_bn(self.conv1.weight, self.bn1)
        kernel, bias = k3 + _center_pad(k1, 3), b3 + b1
        if self.bn_id is not None:
            kid, bid = _fuse_bn(_identity_kernel(self.cin, 3, k3), self.bn_id)
            kernel, bias = kernel + kid, bias + bid
        self.fused = nn.Conv2d(self.cin, self.cout, 3, padding=1, bias=True).to(kernel)
        self.fused.weight.copy_(kernel)
        self.fused.bias.copy_(bias)
        for name in ("conv3", "bn3", "conv1", "bn1", "bn_id"):
            delattr(self, name)
        self.deploy = True


class PartialLargeKernel(nn.Module):
    """Large-kernel conv on the first ``partial`` channels; the rest pass through."""

    def __init__(self, channels: int, partial: int, kernel: int, deploy: bool = False) -> None:
        super().__init__()
        self.channels, self.partial, self.kernel, self.deploy = channels, partial, kernel, deploy
        self.dilation = max(1, (kernel // 2) // 2)  # dilated 3x3 spans 2d+1 <= kernel
        self.large = nn.Conv2d(partial, partial, kernel, padding=kernel // 2, bias=True)
        if not deploy:
            self.small = nn.Conv2d(partial, partial, 3, padding=1, bias=True)
            self.dilated = nn.Conv2d(partial, partial, 3, padding=self.dilation,
                                     dilation=self.dilation, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xp, xr = torch.split(x, [self.partial, self.channels - self.partial], dim=1)
        yp = self.large(xp)
        if not self.deploy:
            yp = yp + self.small(xp) + self.dilated(xp) + xp
        return torch.cat([yp, xr], dim=1)

    @torch.no_grad()
    def reparameterize(self) -> None:
        if self.deploy:
            return
        k = self.kernel
        kernel = self.large.weight + _center_pad(self.small.weight, k)
        d = self.dilation
        sparse = torch.zeros_like(self.large.weight)
        c = k // 2
        sparse[:, :, c - d:c + d + 1:d, c - d:c + d + 1:d] = self.dilated.weight
        kernel = kernel + sparse + _identity_kernel(self.partial, k, kernel)
        bias = self.large.bias + self.small.bias + self.dilated.bias
        self.large.weight.copy_(kernel)
        self.large.bias.copy_(bias)
        del self.small, self.dilated
        self.deploy = True
