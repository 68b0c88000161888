"""Model statistics: parameter count and multiply-accumulates (MACs).

MACs are counted by ``torch.utils.flop_counter`` on the meta device (no memory, no
compute), running the custom ops through their PyTorch references so the scan and FFT
are counted too (the FFT as the dense reference it lowers to is not used: torch.fft is
not counted by the flop counter, so the spectral gate counts as 0; it is O(HW log HW)).
One MAC = 2 FLOPs.
"""

from __future__ import annotations

import copy

import torch

from .. import ops
from .network import Hermes


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: Hermes, out_h: int = 720, out_w: int = 1280, batch: int = 1) -> int:
    """MACs of one forward producing a ``out_h`` x ``out_w`` output (input = output / scale)."""
    from torch.utils.flop_counter import FlopCounterMode

    scale = model.config.scale
    meta_model = copy.deepcopy(model).to("meta")
    x = torch.empty(batch, model.config.in_channels, out_h // scale, out_w // scale, device="meta")
    with ops.reference_ops(), torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta_model(x)
    return counter.get_total_flops() // 2


def effective_receptive_radius(model: Hermes, size: int = 96, mass: float = 0.99, seed: int = 0) -> int:
    """Radius (input pixels, Chebyshev) holding ``mass`` of the centre output's gradient.

    The effective receptive field of Luo et al. (NeurIPS 2016), measured with the
    per-image context held fixed - the situation of a tile in the tiled runtime. The
    recommended tile overlap is derived from it.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, model.config.in_channels, size, size, generator=gen)
    work = copy.deepcopy(model).eval()
    with torch.no_grad():
        ctx = work.compute_context(x)
    x.requires_grad_(True)
    y = work(x, context=ctx)
    c = y.shape[-1] // 2
    y[..., c, c].sum().backward()
    g = x.grad.abs().sum(dim=(0, 1))
    centre = size // 2
    idx = torch.arange(size)
    dist = torch.maximum((idx[:, None] - centre).abs(), (idx[None, :] - centre).abs())
    total = g.sum()
    for r in range(size):
        if g[dist <= r].sum() >= mass * total:
            return r
    return size
