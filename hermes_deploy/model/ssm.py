"""Selective state-space (Mamba-2 / SSD) block over 2 or 4 scan directions of the image.

The image is flattened into one sequence per direction - row-major, column-major and,
with 4 directions, both reversed (the cross-scan of VMamba, Liu et al. 2024) - and each
direction is a group of heads of one ``hermes::selective_scan`` call with its own
scalar decay per head (Mamba-2, Dao & Gu 2024). Directions are stacked on the head axis,
so the whole block is one custom-op node whatever the number of directions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from .layers import LayerNorm2d


def _to_sequence(t: torch.Tensor, direction: int) -> torch.Tensor:
    """(b, c, h, w) -> (b, h*w, c) in scan order ``direction``."""
    if direction % 2:
        t = t.transpose(2, 3)
    seq = t.flatten(2).transpose(1, 2)
    return seq.flip(1) if direction >= 2 else seq


def _from_sequence(seq: torch.Tensor, direction: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`_to_sequence`."""
    if direction >= 2:
        seq = seq.flip(1)
    b, _, c = seq.shape
    if direction % 2:
        return seq.transpose(1, 2).reshape(b, c, w, h).transpose(2, 3)
    return seq.transpose(1, 2).reshape(b, c, h, w)


class SSMBlock(nn.Module):
    def __init__(self, channels: int, state: int, heads: int, directions: int,
                 chunk: int = 64) -> None:
        super().__init__()
        self.channels, self.state, self.heads = channels, state, heads
        self.directions, self.chunk = directions, chunk
        self.head_dim = channels // heads
        self.norm = LayerNorm2d(channels)
        self.inp = nn.Conv2d(channels, channels * 2, 1)
        self.dw = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        # per direction: B (state), C (state), dt (heads)
        self.bcdt = nn.Conv2d(channels, directions * (2 * state + heads), 1)
        nh = directions * heads
        # Decays spread over time scales so some heads remember long, others short.
        self.A_log = nn.Parameter(torch.log(torch.linspace(1.0, 16.0, nh)))
        dt_init = torch.exp(torch.linspace(math.log(1e-3), math.log(1e-1), nh))
        self.dt_bias = nn.Parameter(dt_init + torch.log(-torch.expm1(-dt_init)))  # softplus^-1
        self.D = nn.Parameter(torch.ones(channels))
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        xi, z = self.inp(self.norm(x)).chunk(2, dim=1)
        xi = F.silu(self.dw(xi))
        proj = self.bcdt(xi)
        n, nh, p = self.state, self.heads, self.head_dim
        per_dir = 2 * n + nh
        xs, Bs, Cs, dts = [], [], [], []
        for d in range(self.directions):
            xs.append(_to_sequence(xi, d).reshape(b, h * w, nh, p))
            seq = _to_sequence(proj[:, d * per_dir:(d + 1) * per_dir], d)
            Bd, Cd, dtd = torch.split(seq, [n, n, nh], dim=-1)
            Bs.append(Bd)
            Cs.append(Cd)
            dts.append(dtd)
        x_all = torch.cat(xs, dim=2)  # (b, L, D*nh, p)
        B_all = torch.stack(Bs, dim=2)  # (b, L, D, n)
        C_all = torch.stack(Cs, dim=2)
        dt_all = F.softplus(torch.cat(dts, dim=2) + self.dt_bias)  # (b, L, D*nh)
        A = -torch.exp(self.A_log)
        y_all = ops.selective_scan(x_all, dt_all, A, B_all, C_all, self.chunk)
        y = 0
        for d, yd in enumerate(torch.split(y_all, nh, dim=2)):
            y = y + _from_sequence(yd.reshape(b, h * w, c), d, h, w)
        y = (y + xi * self.D[:, None, None]) * F.silu(z)
        return x + self.out(y)
