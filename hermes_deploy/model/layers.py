"""Small building blocks shared by the HERMES streams and experts.

* :class:`LayerNorm2d` - LayerNorm over channels of an NCHW map.
* :class:`GDFN` - gated depthwise feed-forward network (Zamir et al., "Restormer",
  CVPR 2022).
* :class:`WindowAttention` - (shifted) window self-attention with a relative position
  bias (Liu et al., "Swin Transformer", 2021; Liang et al., "SwinIR", 2021). Written for
  export: the map is padded unconditionally to a multiple of the window and the shift
  mask is computed arithmetically from the shape on every call (no cache keyed by size,
  no ``if pad:``).
* :func:`symmetric_pad` - bottom/right symmetric (edge-including) reflection to a size
  multiple via a computed gather, valid for any size including 1 pixel.
* :class:`BicubicUpsample` - fixed bicubic (a = -0.5, half-pixel centres) integer
  upscaling as a depthwise conv + PixelShuffle, so it exports to plain Conv/DepthToSpace.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_MASKED = -1.0e4  # finite so the mask survives FP16; exp() of it is exactly 0 in fp32


class LayerNorm2d(nn.Module):
    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class GDFN(nn.Module):
    def __init__(self, channels: int, expansion: float = 2.0) -> None:
        super().__init__()
        hidden = int(channels * expansion)
        self.norm = LayerNorm2d(channels)
        self.inp = nn.Conv2d(channels, hidden * 2, 1)
        self.dw = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2)
        self.out = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.dw(self.inp(self.norm(x))).chunk(2, dim=1)
        return x + self.out(F.gelu(a) * b)


def symmetric_pad(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad H and W at the bottom/right to a multiple by symmetric reflection.

    Index ``i`` of the padded axis reads ``j = i mod 2n`` reflected into ``[0, n)``; the
    period ``2n`` is never zero, so 1-pixel inputs pad too. Always applied (possibly
    padding nothing), so the traced graph has no shape-dependent branch.
    """
    for dim in (2, 3):
        n = x.shape[dim]
        size = (n + multiple - 1) // multiple * multiple  # an explicit multiple, for export
        idx = torch.arange(size, device=x.device)
        # tensor divisor: the ONNX exporter cannot translate a symbolic scalar modulus
        idx = torch.remainder(idx, torch.full_like(idx, 2 * n))
        idx = torch.where(idx < n, idx, 2 * n - 1 - idx)
        x = x.index_select(dim, idx)
    return x


class WindowAttention(nn.Module):
    """Pre-norm window self-attention block with residual; ``shift`` > 0 for SW-MSA."""

    def __init__(self, channels: int, heads: int, window: int, shift: int = 0) -> None:
        super().__init__()
        self.heads, self.window, self.shift = heads, window, shift
        self.norm = LayerNorm2d(channels)
        self.qkv = nn.Conv2d(channels, channels * 3, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        self.rel_bias = nn.Parameter(torch.zeros(heads, (2 * window - 1) ** 2))
        nn.init.trunc_normal_(self.rel_bias, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                            indexing="ij")).flatten(1)  # (2, ws*ws)
        rel = coords[:, :, None] - coords[:, None, :] + window - 1
        self.register_buffer("rel_index", rel[0] * (2 * window - 1) + rel[1], persistent=False)

    def _shift_masks(self, hp: int, wp: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Additive masks of the shifted layout, from shapes alone: (nWh, N, N) for the
        rows and (nWw, N, N) for the columns of the window grid.

        After the cyclic shift, the last window row (column) holds pixels from two
        regions of the image along that axis; a pair of pixels whose regions differ
        along either axis must not attend. The two axes are masked separately (their
        sum is -1e4 or -2e4 where the region differs, 0 where it is the same), which
        is the full mask without building one (nW, N, N) tensor per call.
        """
        ws, s = self.window, self.shift

        def axis_mask(n: int) -> torch.Tensor:  # (n // ws, ws, ws): [window, i, j]
            i = torch.arange(n, device=device)
            label = ((i >= n - ws).long() + (i >= n - s).long()).reshape(n // ws, ws)
            return torch.where(label[:, :, None] != label[:, None, :], _MASKED, 0.0)

        rows, cols = axis_mask(hp), axis_mask(wp)
        n_win = ws * ws
        # pixel index within a window is i_row * ws + i_col
        rows = rows[:, :, None, :, None].expand(-1, ws, ws, ws, ws).reshape(-1, n_win, n_win)
        cols = cols[:, None, :, None, :].expand(-1, ws, ws, ws, ws).reshape(-1, n_win, n_win)
        return rows, cols

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        ws, nh = self.window, self.heads
        y = self.norm(x)
        y = F.pad(y, (0, (ws - w % ws) % ws, 0, (ws - h % ws) % ws))
        hp, wp = y.shape[-2:]
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(2, 3))
        # Window partition of the normalized map (c channels, before the 3c of q, k, v),
        # pixel axes kept last: (b*nW, c, ws, ws). The 1x1 qkv and output convs are per
        # pixel, so they run on the windows directly; the layout transposes move whole
        # rows of ws pixels, and the attention matmuls take their operands transposed.
        n_win = ws * ws
        y = y.reshape(b, c, hp // ws, ws, wp // ws, ws).permute(0, 2, 4, 1, 3, 5).reshape(-1, c, ws, ws)
        qkv = self.qkv(y)
        q, k, v = qkv.reshape(-1, 3, nh, c // nh, n_win).unbind(1)  # (b*nW, nh, d, N)
        attn = (q * (c // nh) ** -0.5).transpose(-2, -1) @ k
        bias = self.rel_bias[:, self.rel_index.reshape(-1)].reshape(nh, n_win, n_win)
        if self.shift:
            rows, cols = self._shift_masks(hp, wp, x.device)
            rows = bias + rows.to(attn.dtype)[:, None]  # (nWh, nh, N, N), bias folded in
            attn = attn.reshape(b, hp // ws, wp // ws, nh, n_win, n_win) + rows[:, None]
            attn = (attn + cols.to(attn.dtype)[:, None]).reshape(-1, nh, n_win, n_win)
        else:
            attn = attn + bias
        out = self.proj((v @ attn.softmax(dim=-1).transpose(-2, -1)).reshape(-1, c, ws, ws))
        out = out.reshape(b, hp // ws, wp // ws, c, ws, ws)
        out = out.permute(0, 3, 1, 4, 2, 5).reshape(b, c, hp, wp)
        if self.shift:
            out = torch.roll(out, shifts=(self.shift, self.shift), dims=(2, 3))
        return x + out[:, :, :h, :w]


def _cubic(t: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    t = t.abs()
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return torch.where(t <= 1, near, torch.where(t < 2, far, torch.zeros_like(t)))


class BicubicUpsample(nn.Module):
    """Exact bicubic x``scale`` upsampling (edges replicated) as conv + PixelShuffle."""

    def __init__(self, channels: int, scale: int) -> None:
        super().__init__()
        self.channels, self.scale = channels, scale
        phases = (torch.arange(scale, dtype=torch.float64) + 0.5) / scale - 0.5
        taps = torch.arange(-2, 3, dtype=torch.float64)
        w1 = _cubic(phases[:, None] - taps[None, :])  # (s, 5) weights of taps i-2..i+2
        w2 = w1[:, None, :, None] * w1[None, :, None, :]  # (s, s, 5, 5)
        kernel = w2.reshape(scale * scale, 1, 5, 5).repeat(channels, 1, 1, 1)
        self.register_buffer("kernel", kernel.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), self.kernel.to(x.dtype),
                     groups=self.channels)
        return F.pixel_shuffle(y, self.scale)
