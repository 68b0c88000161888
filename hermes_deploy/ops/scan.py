"""``hermes::selective_scan``: the SSD selective scan (scalar decay per head).

Contract (all float tensors of one dtype; ``b`` batch, ``l`` sequence length, ``h``
heads, ``p`` head width, ``g`` groups with ``h % g == 0``, ``n`` state size):

* ``x``  (b, l, h, p)   input sequence
* ``dt`` (b, l, h)      step sizes, >= 0 (after softplus)
* ``A``  (h,)           decay rates, < 0
* ``B``  (b, l, g, n)   input projections (shared by the heads of a group)
* ``C``  (b, l, g, n)   output projections
* ``chunk`` (int attr)  SSD chunk length; changes cost, not the result
* returns ``y`` (b, l, h, p)

Recurrence per head (state ``s`` is n x p, zero at t = 0)::

    s_t = exp(dt_t * A) * s_{t-1} + dt_t * B_t^T x_t
    y_t = C_t s_t

The reference (export-friendly by construction, so it is also the lowering of the
portable ONNX target) evaluates it in the chunked "state space duality" form of Mamba-2
(Dao & Gu, "Transformers are SSMs", 2024): inside a chunk a masked decay matrix times
``C B^T`` (quadratic in the chunk length), across chunks a decay-weighted sum of chunk
states. Only cumsum, exp, masking and matmuls: no loop over ``l``, so it traces once
for every length and maps onto standard ONNX ops. The sequence is zero-padded to a
multiple of ``chunk`` with ``dt = 0`` (decay 1, no input), which leaves every real
output unchanged.
"""

from __future__ import annotations

import numpy as np
import torch

from ._autograd import register_autograd_via_reference


def _segment_sum(a: torch.Tensor) -> torch.Tensor:
    """(..., T) log-decays -> (..., T, T) with [i, j] = sum(a[j+1..i]) for i >= j, else -inf."""
    t = a.shape[-1]
    cum = torch.cumsum(a, dim=-1)
    diff = cum.unsqueeze(-1) - cum.unsqueeze(-2)
    idx = torch.arange(t, device=a.device)
    lower = idx.unsqueeze(-1) >= idx.unsqueeze(0)
    return torch.where(lower, diff, torch.full_like(diff, float("-inf")))


def selective_scan_reference(x, dt, A, B, C, chunk: int = 64) -> torch.Tensor:
    """Pure PyTorch SSD evaluation of the contract above."""
    b, l, h, p = x.shape
    g = B.shape[2]
    # Pad to a multiple of the chunk unconditionally (pad may be 0), computed as an
    # explicit multiple so it traces once for every length.
    lp = (l + chunk - 1) // chunk * chunk
    pad = lp - l
    x = torch.nn.functional.pad(x, (0, 0, 0, 0, 0, pad))
    dt = torch.nn.functional.pad(dt, (0, 0, 0, pad))
    B = torch.nn.functional.pad(B, (0, 0, 0, 0, 0, pad))
    C = torch.nn.functional.pad(C, (0, 0, 0, 0, 0, pad))
    c = lp // chunk
    rep = h // g
    Bh = B.repeat_interleave(rep, dim=2).reshape(b, c, chunk, h, -1)
    Ch = C.repeat_interleave(rep, dim=2).reshape(b, c, chunk, h, -1)
    xdt = (x * dt.unsqueeze(-1)).reshape(b, c, chunk, h, p)
    a = (dt * A).reshape(b, c, chunk, h).permute(0, 3, 1, 2)  # (b, h, c, T)
    a_cum = torch.cumsum(a, dim=-1)

    # 1. within each chunk
    decay = torch.exp(_segment_sum(a))  # (b, h, c, T, T)
    scores = torch.einsum("bclhn,bcshn->bhcls", Ch, Bh) * decay
    y = torch.einsum("bhcls,bcshp->bclhp", scores, xdt)

    # 2. state at the end of each chunk from its own inputs
    to_end = torch.exp(a_cum[..., -1:] - a_cum)  # (b, h, c, T)
    states = torch.einsum("bclhn,bhcl,bclhp->bchpn", Bh, to_end, xdt)

    # 3. carry states across chunks (zero initial state)
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)
    chunk_decay = torch.exp(_segment_sum(torch.nn.functional.pad(a_cum[..., -1], (1, 0))))
    states = torch.einsum("bhzc,bchpn->bzhpn", chunk_decay, states)[:, :-1]

    # 4. contribution of the carried state to each output
    from_start = torch.exp(a_cum)  # (b, h, c, T)
    y = y + torch.einsum("bclhn,bchpn,bhcl->bclhp", Ch, states, from_start)
    # crop by gather: a slice would make torch.export guard on l < lp
    return y.reshape(b, lp, h, p).index_select(1, torch.arange(l, device=y.device))


@torch.library.custom_op("hermes::selective_scan", mutates_args=())
def selective_scan_op(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                      C: torch.Tensor, chunk: int) -> torch.Tensor:
    with torch.no_grad():
        return selective_scan_reference(x, dt, A, B, C, chunk).contiguous()


@selective_scan_op.register_fake
def _(x, dt, A, B, C, chunk):
    return torch.empty_like(x)


register_autograd_via_reference(selective_scan_op, selective_scan_reference, n_tensors=5)


def selective_scan_numpy(x, dt, A, B, C) -> np.ndarray:
    """Float64 sequential recurrence, the independent reference for tests."""
    x, dt, A, B, C = (np.asarray(v, dtype=np.float64) for v in (x, dt, A, B, C))
    b, l, h, p = x.shape
    rep = h // B.shape[2]
    y = np.zeros_like(x)
    state = np.zeros((b, h, B.shape[3], p))
    for t in range(l):
        Bt = np.repeat(B[:, t], rep, axis=1)  # (b, h, n)
        Ct = np.repeat(C[:, t], rep, axis=1)
        decay = np.exp(dt[:, t] * A)  # (b, h)
        state = decay[..., None, None] * state + (dt[:, t, :, None, None] * Bt[..., :, None]
                                                  * x[:, t, :, None, :])
        y[:, t] = np.einsum("bhn,bhnp->bhp", Ct, state)
    return y
