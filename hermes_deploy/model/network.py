"""The HERMES-IR/SR network.

Data flow (LR = low-resolution input, padded internally)::

    x --symmetric pad--> xp
    context = ContextEncoder(x)            (or given: one per image for tiling)
    k       = KernelPrior(xp)
    L = PLK blocks(conv(xp))   G = SSM blocks(conv(xp))          dual-stream stem
    F0 = merge(L, G); F_low, F_high = FFT split(F0)
    L += F_high ; G += F_low                                      high -> local, low -> global
    N2 x fusion block (cross-gating, (shifted) window attention, GDFN)
    F = fuse(L, G) ; F = MoE(F | context, F_low, F_high, k, g, noise)
    F = MSG down/up path with gated skips ; F += F0
    out = PixelShuffle(head(F)) + bicubic(xp) ; crop to scale x input size

Any input size works: the input is padded (symmetric reflection, unconditionally) to a
multiple of ``window * 2**msg_levels`` and the output is cropped to exactly
``scale * H`` by ``scale * W``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidArgumentError
from .conditioning import ContextEncoder, KernelPrior
from .config import HermesConfig
from .frequency import FrequencySplit
from .layers import GDFN, BicubicUpsample, LayerNorm2d, WindowAttention, symmetric_pad
from .moe import MixtureOfExperts
from .rep import PartialLargeKernel, RepConv
from .ssm import SSMBlock


class PLKBlock(nn.Module):
    """RepConv -> GELU -> partial large kernel -> element-wise gate -> 1x1, residual."""

    def __init__(self, c: int, partial: int, kernel: int, deploy: bool) -> None:
        super().__init__()
        self.mix = RepConv(c, c, deploy=deploy)
        self.plk = PartialLargeKernel(c, partial, kernel, deploy=deploy)
        self.gate = nn.Conv2d(c, c, 1)
        self.out = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.plk(F.gelu(self.mix(x)))
        return x + self.out(h * torch.sigmoid(self.gate(h)))


class FusionBlock(nn.Module):
    """Cross-gating between the streams, window attention on L, GDFN on both."""

    def __init__(self, cfg: HermesConfig, shifted: bool) -> None:
        super().__init__()
        c = cfg.channels
        self.g_to_l = nn.Conv2d(c, c, 1)  # G modulates L: per-pixel sigmoid channel gates
        self.l_to_g = nn.Conv2d(c, c, 3, padding=1, groups=c)  # L modulates G: depthwise
        for conv in (self.g_to_l, self.l_to_g):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        self.attn = WindowAttention(c, cfg.heads, cfg.window, cfg.window // 2 if shifted else 0)
        self.ffn_l = GDFN(c, cfg.ffn_expansion)
        self.ffn_g = GDFN(c, cfg.ffn_expansion)

    def forward(self, l: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        l_new = l * (2.0 * torch.sigmoid(self.g_to_l(g)))  # 2*sigmoid(0) = 1: identity at init
        g = g * (2.0 * torch.sigmoid(self.l_to_g(l)))
        return self.ffn_l(self.attn(l_new)), self.ffn_g(g)


class MSGLevel(nn.Module):
    """One level of the multi-scale path: down, process (and recurse), up, gated skip."""

    def __init__(self, c: int, levels_below: int, deploy: bool) -> None:
        super().__init__()
        self.down = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.body = RepConv(c, c, deploy=deploy)
        self.inner = MSGLevel(c, levels_below - 1, deploy) if levels_below > 0 else None
        self.up = nn.Conv2d(c, 4 * c, 1)
        self.gate = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.body(self.down(x)))
        if self.inner is not None:
            h = self.inner(h)
        up = F.pixel_shuffle(self.up(h), 2)
        return up + x * torch.sigmoid(self.gate(up))


class Hermes(nn.Module):
    """HERMES-IR/SR. ``forward(x, context=None, noise=None, return_aux=False)``.

    * ``x``: (B, in_channels, H, W), values nominally in [0, 1]; any H, W >= 1.
    * ``context``: (B, ``config.context_channels``) from :meth:`compute_context`; computed
      from ``x`` when omitted. Supplying the whole-image context to every tile makes all
      tiles of an image route the same way.
    * ``noise``: (B, 1, H, W) for the generative expert; zero when omitted, ignored in
      fidelity mode.
    * returns (B, in_channels, scale*H, scale*W) [, aux dict with router logits, gates,
      probabilities].
    """

    def __init__(self, config: HermesConfig) -> None:
        super().__init__()
        self.config = config
        cfg, c, dep = config, config.channels, config.deploy
        self.context_encoder = ContextEncoder(cfg.in_channels, cfg.token_channels)
        self.kernel_prior = KernelPrior(cfg.in_channels, cfg.kernel_channels)
        self.local_stem = nn.Conv2d(cfg.in_channels, c, 3, padding=1)
        self.local_blocks = nn.Sequential(*[
            PLKBlock(c, cfg.plk_partial, cfg.plk_kernel, dep) for _ in range(cfg.n_stem)])
        self.global_stem = nn.Conv2d(cfg.in_channels, c, 3, padding=1)
        self.global_blocks = nn.Sequential(*[
            SSMBlock(c, cfg.ssm_state, cfg.ssm_heads, cfg.ssm_directions, cfg.ssm_chunk)
            for _ in range(cfg.n_stem)])
        self.merge = nn.Conv2d(2 * c, c, 1)
        self.freq = FrequencySplit(c, cfg.hf_gain_max)
        self.fusion = nn.ModuleList([FusionBlock(cfg, shifted=bool(i % 2)) for i in range(cfg.n_fusion)])
        self.fuse = nn.Conv2d(2 * c, c, 1)
        self.moe = MixtureOfExperts(cfg, deploy_fidelity=cfg.deploy and cfg.fidelity)
        self.msg = MSGLevel(c, cfg.msg_levels - 1, dep) if cfg.msg_levels > 0 else None
        self.body_out = nn.Conv2d(c, c, 3, padding=1)
        self.head = nn.Sequential(RepConv(c, c, deploy=dep), nn.GELU(), RepConv(c, c, deploy=dep),
                                  nn.GELU(), nn.Conv2d(c, cfg.in_channels * cfg.scale**2, 3, padding=1))
        # Zero-initialized last conv: an untrained model is exactly bicubic upsampling,
        # so training starts from the baseline instead of below it.
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.upsample = BicubicUpsample(cfg.in_channels, cfg.scale)
        self.norm_out = LayerNorm2d(c)

    # -- conditioning -------------------------------------------------------------
    def compute_context(self, x: torch.Tensor) -> torch.Tensor:
        """Per-image context (B, context_channels): the only whole-image statistics."""
        return self.context_encoder(x, self.local_stem)

    def set_fidelity(self, on: bool) -> None:
        """Training form only: mask the generative expert (and its noise) in place."""
        if self.config.deploy and self.config.fidelity and not on:
            raise InvalidArgumentError("the generative expert was removed from this deploy model")
        self.config = self.config.replace(fidelity=on)
        self.moe.mask_generative = on and not (self.config.deploy and len(self.moe.experts) == 3)

    # -- forward ------------------------------------------------------------------
    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                noise: torch.Tensor | None = None, return_aux: bool = False):
        cfg = self.config
        h, w = x.shape[-2:]
        if context is None:
            context = self.compute_context(x)
        g = context[:, :cfg.token_channels]
        xp = symmetric_pad(x, cfg.size_multiple)
        if noise is not None and not cfg.fidelity:
            noise = symmetric_pad(noise, cfg.size_multiple)
        else:
            noise = None
        k = self.kernel_prior(xp)
        l = self.local_blocks(self.local_stem(xp))
        gl = self.global_blocks(self.global_stem(xp))
        f0 = self.merge(torch.cat([l, gl], dim=1))
        f_low, f_high = self.freq(f0)
        l, gl = l + f_high, gl + f_low
        for block in self.fusion:
            l, gl = block(l, gl)
        f = self.fuse(torch.cat([l, gl], dim=1))
        f, aux = self.moe(f, context, f_low, f_high, k, g, noise)
        if self.msg is not None:
            f = self.msg(f)
        f = self.body_out(self.norm_out(f)) + f0
        out = F.pixel_shuffle(self.head(f), cfg.scale) + self.upsample(xp)
        # Crop by gather rather than slicing: a slice makes torch.export guard on
        # "scale*h < padded size", which it cannot prove for every h.
        out = out.index_select(2, torch.arange(cfg.scale * h, device=out.device))
        out = out.index_select(3, torch.arange(cfg.scale * w, device=out.device))
        return (out, aux) if return_aux else out
