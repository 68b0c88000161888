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


def _scan_index(h: int, w: int, direction: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(order, inverse) index vectors of length h*w for scan ``direction``.

    ``order[k]`` is the row-major position of the k-th element of the sequence, and
    ``inverse`` maps back (``inverse[order[k]] = k``). Built from shapes alone, with no
    modulus, so it traces once for every size.
    """
    hi, wi = torch.arange(h, device=device), torch.arange(w, device=device)
    if direction % 2:  # column-major: k = x*h + y reads row-major position y*w + x
        order = (hi[None, :] * w + wi[:, None]).reshape(-1)
        inverse = (wi[None, :] * h + hi[:, None]).reshape(-1)
    else:
        order = inverse = torch.arange(h * w, device=device)
    if direction >= 2:  # reversed
        order, inverse = order.flip(0), (h * w - 1) - inverse
    return order, inverse


def _to_sequences(t: torch.Tensor, indices: list) -> list[torch.Tensor]:
    """(b, c, h, w) -> one (b, h*w, c) sequence per direction.

    The channels go last once (row-major order, a cheap transpose); the other orders
    gather whole c-vectors from that. A direct (b, c, h, w) -> (b, w, h, c) permutation
    (column-major) reverses the axes, the slowest transpose there is in most runtimes,
    and graph optimizers merge a chain of cheap transposes back into it.
    """
    b, c, h, w = t.shape
    rows = t.permute(0, 2, 3, 1).reshape(b, h * w, c)
    return [rows if d == 0 else rows.index_select(1, order) for d, (order, _) in enumerate(indices)]


def _from_sequences(seqs: list[torch.Tensor], indices: list, h: int, w: int) -> torch.Tensor:
    """The sum of the per-direction outputs, each put back in row-major order (the
    inverse of :func:`_to_sequences`), as a (b, c, h, w) map."""
    b, _, c = seqs[0].shape
    total = seqs[0]
    for seq, (_, inverse) in zip(seqs[1:], indices[1:]):
        total = total + seq.index_select(1, inverse)
    return total.transpose(1, 2).reshape(b, c, h, w)


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
        indices = [_scan_index(h, w, d, x.device) for d in range(self.directions)]
        xs, Bs, Cs, dts = [], [], [], []
        for d, (x_seq, p_seq) in enumerate(zip(_to_sequences(xi, indices), _to_sequences(proj, indices))):
            xs.append(x_seq.reshape(b, h * w, nh, p))
            Bd, Cd, dtd = torch.split(p_seq[..., d * per_dir:(d + 1) * per_dir], [n, n, nh], dim=-1)
            Bs.append(Bd)
            Cs.append(Cd)
            dts.append(dtd)
        x_all = torch.cat(xs, dim=2)  # (b, L, D*nh, p)
        B_all = torch.stack(Bs, dim=2)  # (b, L, D, n)
        C_all = torch.stack(Cs, dim=2)
        dt_all = F.softplus(torch.cat(dts, dim=2) + self.dt_bias)  # (b, L, D*nh)
        A = -torch.exp(self.A_log)
        y_all = ops.selective_scan(x_all, dt_all, A, B_all, C_all, self.chunk)
        y = _from_sequences([yd.reshape(b, h * w, c) for yd in torch.split(y_all, nh, dim=2)], indices, h, w)
        y = (y + xi * self.D[:, None, None]) * F.silu(z)
        return x + self.out(y)
