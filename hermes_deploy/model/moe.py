"""Mixture of experts: a per-image router and four experts, with dense gates.

Routing is per image (from the context vector), top-k over the experts. The gates are
dense - ``TopK`` then ``ScatterElements`` into a zero vector - and every expert is
evaluated and weighted, so the traced graph has no data-dependent control flow (Python
dispatch over the selected experts would freeze the traced choice).

Experts (index order is fixed and part of checkpoints):

0. texture - conv + window attention + FFT-aware gating by the high band
1. structure - SSM block + low-frequency emphasis
2. deblur - kernel-aware conv stack (spatial feature transform by the kernel prior ``k``;
   Wang et al., "SFT-GAN", CVPR 2018)
3. generative - modulated conv (StyleGAN2 weight demodulation, Karras et al. 2020,
   written as ``conv(x * s, W) * rsqrt(sum(W^2 s^2) + eps)``, not grouped by batch)
   plus noise injection; the noise is an input (zero unless given).

Fidelity mode removes expert 3: the training form masks its logit to -inf before top-k,
the deploy form deletes the expert and its router row. Both renormalize the gates over
the remaining experts, so they compute the same function.

Load balancing follows the Switch Transformer auxiliary loss (Fedus et al., 2021):
``E * sum_e f_e * P_e`` with ``f_e`` the fraction of top-k assignments to expert ``e``
and ``P_e`` its mean router probability.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LayerNorm2d, WindowAttention
from .ssm import SSMBlock

EXPERT_NAMES = ("texture", "structure", "deblur", "generative")
GENERATIVE = 3


class TextureExpert(nn.Module):
    def __init__(self, c: int, heads: int, window: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.attn = WindowAttention(c, heads, window, shift=window // 2)
        self.hf_gate = nn.Conv2d(c, c, 1)
        self.out = nn.Conv2d(c, c, 1)

    def forward(self, x, f_low, f_high, k, g, noise):
        h = self.attn(F.gelu(self.conv(x)))
        h = h * (2.0 * torch.sigmoid(self.hf_gate(f_high)))
        return self.out(h)


class StructureExpert(nn.Module):
    def __init__(self, c: int, state: int, heads: int, directions: int, chunk: int) -> None:
        super().__init__()
        self.ssm = SSMBlock(c, state, heads, directions, chunk)
        self.low = nn.Conv2d(c, c, 1)
        self.out = nn.Conv2d(c, c, 1)

    def forward(self, x, f_low, f_high, k, g, noise):
        return self.out(self.ssm(x) + self.low(f_low))


class DeblurExpert(nn.Module):
    def __init__(self, c: int, kernel_channels: int) -> None:
        super().__init__()
        self.sft = nn.Conv2d(kernel_channels, 2 * c, 1)
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x, f_low, f_high, k, g, noise):
        scale, shift = self.sft(k).chunk(2, dim=1)
        h = x * (1.0 + scale) + shift
        return self.conv2(F.gelu(self.conv1(h)))


class ModulatedConv(nn.Module):
    def __init__(self, cin: int, cout: int, style_dim: int, kernel: int = 3, eps: float = 1e-8):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) * (cin * kernel**2) ** -0.5)
        self.style = nn.Linear(style_dim, cin)
        nn.init.zeros_(self.style.weight)
        nn.init.ones_(self.style.bias)
        self.eps = eps

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        s = self.style(style)  # (B, cin)
        y = F.conv2d(x * s[:, :, None, None], self.weight, padding=self.weight.shape[-1] // 2)
        w2 = self.weight.pow(2).sum(dim=(2, 3))  # (cout, cin)
        demod = torch.rsqrt(s.pow(2) @ w2.t() + self.eps)  # (B, cout)
        return y * demod[:, :, None, None]


class GenerativeExpert(nn.Module):
    def __init__(self, c: int, style_dim: int) -> None:
        super().__init__()
        self.mod = ModulatedConv(c, c, style_dim)
        self.noise_strength = nn.Parameter(torch.zeros(c))
        self.out = nn.Conv2d(c, c, 1)

    def forward(self, x, f_low, f_high, k, g, noise):
        h = self.mod(x, g)
        if noise is not None:
            h = h + self.noise_strength[:, None, None] * noise
        return self.out(F.gelu(h))


class Router(nn.Module):
    def __init__(self, context_channels: int, num_experts: int, hidden: int = 32) -> None:
        super().__init__()
        self.hidden = nn.Linear(context_channels, hidden)
        self.logits = nn.Linear(hidden, num_experts)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        # Parameter-free normalization: image contexts differ by small amounts, and the
        # router must tell them apart (without it, routing was decided by near-ties).
        context = F.layer_norm(context, context.shape[-1:])
        return self.logits(F.gelu(self.hidden(context)))


def dense_gates(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k softmax weights scattered into a dense (B, E) gate matrix."""
    values, index = torch.topk(logits, k, dim=1)
    return torch.zeros_like(logits).scatter(1, index, torch.softmax(values, dim=1))


def load_balancing_loss(probs: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """Switch-style auxiliary loss; 1.0 when balanced, up to E when collapsed."""
    e = probs.shape[1]
    assigned = (gates > 0).float()
    frac = assigned.sum(0) / assigned.sum().clamp_min(1.0)
    return e * (frac.detach() * probs.mean(0)).sum()


def router_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Mean per-image entropy of the router distribution (nats)."""
    return -(probs * torch.log(probs.clamp_min(1e-9))).sum(1).mean()


class MixtureOfExperts(nn.Module):
    def __init__(self, cfg, deploy_fidelity: bool) -> None:
        super().__init__()
        c = cfg.channels
        self.top_k = cfg.top_k
        self.mask_generative = cfg.fidelity and not deploy_fidelity
        experts = [
            TextureExpert(c, cfg.heads, cfg.window),
            StructureExpert(c, cfg.ssm_state, cfg.ssm_heads, cfg.ssm_directions, cfg.ssm_chunk),
            DeblurExpert(c, cfg.kernel_channels),
            GenerativeExpert(c, cfg.token_channels),
        ]
        if deploy_fidelity:
            experts = experts[:GENERATIVE]
        self.experts = nn.ModuleList(experts)
        self.router = Router(cfg.context_channels, len(experts))
        self.norm = LayerNorm2d(c)
        # Noisy top-k (Shazeer et al., 2017): exploration noise on the logits while
        # training so unchosen experts keep receiving gradient. Off in eval mode.
        self.router_noise = 0.0

    def route(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, gates) for a context; the generative logit is masked in fidelity mode."""
        logits = self.router(context)
        if self.training and self.router_noise > 0:
            logits = logits + self.router_noise * torch.randn_like(logits)
        if self.mask_generative:
            masked = torch.arange(logits.shape[1], device=logits.device) == GENERATIVE
            logits = logits.masked_fill(masked, float("-inf"))
        return logits, dense_gates(logits, self.top_k)

    def forward(self, x, context, f_low, f_high, k, g, noise):
        logits, gates = self.route(context)
        h = self.norm(x)
        out = 0
        for i, expert in enumerate(self.experts):
            out = out + gates[:, i, None, None, None] * expert(h, f_low, f_high, k, g, noise)
        probs = torch.softmax(logits, dim=1)
        return x + out, {"logits": logits, "gates": gates, "probs": probs}
