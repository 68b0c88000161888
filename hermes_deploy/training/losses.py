"""Training losses: L1 + MS-SSIM (Wang, Simoncelli & Bovik, 2003), router regularizers.

MS-SSIM is computed on RGB in [0, 1] with an 11x11 Gaussian window (sigma 1.5), 'valid'
filtering and as many scales as the crop allows (up to 5, default weights renormalized),
so small training crops work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_C1, _C2 = 0.01**2, 0.03**2


def _gauss(window: int = 11, sigma: float = 1.5, device=None, dtype=None) -> torch.Tensor:
    x = torch.arange(window, device=device, dtype=dtype) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    x = F.conv2d(x, g.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _ssim_cs(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mx, my = _filter(x, g), _filter(y, g)
    sxx = _filter(x * x, g) - mx * mx
    syy = _filter(y * y, g) - my * my
    sxy = _filter(x * y, g) - mx * my
    cs = (2 * sxy + _C2) / (sxx + syy + _C2)
    lum = (2 * mx * my + _C1) / (mx * mx + my * my + _C1)
    return (lum * cs).mean(dim=(1, 2, 3)), cs.mean(dim=(1, 2, 3))


def ms_ssim(x: torch.Tensor, y: torch.Tensor, max_scales: int = 5) -> torch.Tensor:
    """Mean MS-SSIM over the batch (1 = identical)."""
    g = _gauss(device=x.device, dtype=x.dtype)
    scales = 1
    while scales < max_scales and min(x.shape[-2:]) // (2**scales) >= 11:
        scales += 1
    weights = torch.tensor(_MS_WEIGHTS[:scales], device=x.device, dtype=x.dtype)
    weights = weights / weights.sum()
    values = []
    for i in range(scales):
        ssim, cs = _ssim_cs(x, y, g)
        values.append(torch.relu(ssim if i == scales - 1 else cs))
        if i < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    stacked = torch.stack(values, dim=1)  # (B, scales)
    return torch.prod(stacked.clamp_min(1e-6) ** weights, dim=1).mean()
