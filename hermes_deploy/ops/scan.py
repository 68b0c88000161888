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

The reference evaluates it in the chunked "state space duality" form of Mamba-2
(Dao & Gu, "Transformers are SSMs", 2024): inside a chunk a masked decay matrix times
``C B^T`` (quadratic in the chunk length), across chunks a decay-weighted sum of chunk
states. Only cumsum, exp, masking and matmuls: no loop over ``l``, so it traces once
for every length and maps onto standard ONNX ops. The sequence is zero-padded to a
multiple of ``chunk`` with ``dt = 0`` (decay 1, no input), which leaves every real
output unchanged. :func:`selective_scan_lowered`, the lowering of the portable ONNX
target, is the same evaluation with shorter chunks, a two-level carry across chunks,
a constant additive causal mask and layouts chosen for graph runtimes (see its
docstring).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.fx.experimental.symbolic_shapes import statically_known_true

from ._autograd import register_autograd_via_reference


def _causal_decay(cum: torch.Tensor) -> torch.Tensor:
    """(..., T) running log-decays -> (..., T, T) with [i, j] = exp(cum[i] - cum[j]) for
    i >= j and 0 above the diagonal.

    ``cum`` is non-increasing (log-decays are <= 0), so the lower triangle of the
    difference is <= 0; clamping at 0 keeps the upper triangle finite before the causal
    mask multiplies it away. A multiplicative mask instead of ``where(..., -inf)`` keeps
    the lowered graph to Sub/Min/Exp/Mul.
    """
    t = cum.shape[-1]
    diff = cum.unsqueeze(-1) - cum.unsqueeze(-2)
    idx = torch.arange(t, device=cum.device)
    lower = (idx.unsqueeze(-1) >= idx.unsqueeze(0)).to(cum.dtype)
    return torch.exp(torch.clamp(diff, max=0.0)) * lower


def _ssd_chunks(x, dt, A, B, C, chunk: int):
    """The chunked SSD operands of the reference (heads expanded, chunk-major).

    Returns ``(Bh, Ch, xdt, a_cum, (b, l, lp, c, h, n, p))`` with ``Bh``/``Ch``
    (b,c,h,T,n), ``xdt`` (b,c,h,T,p) and ``a_cum`` (b,c,h,T), the within-chunk cumulative
    log-decay; ``lp`` is ``l`` padded to a multiple of the chunk.
    """
    b, l, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    # Pad to a multiple of the chunk unconditionally (pad may be 0), computed as an
    # explicit multiple so it traces once for every length.
    lp = (l + chunk - 1) // chunk * chunk
    pad = lp - l
    x = torch.nn.functional.pad(x, (0, 0, 0, 0, 0, pad))
    dt = torch.nn.functional.pad(dt, (0, 0, 0, pad))
    B = torch.nn.functional.pad(B, (0, 0, 0, 0, 0, pad))
    C = torch.nn.functional.pad(C, (0, 0, 0, 0, 0, pad))
    c, t, rep = lp // chunk, chunk, h // g

    def heads_first(v, width):  # (b, lp, g, width) -> (b, c, h, T, width)
        v = v.reshape(b, c, t, g, 1, width).expand(b, c, t, g, rep, width)
        return v.reshape(b, c, t, h, width).permute(0, 1, 3, 2, 4)

    Bh, Ch = heads_first(B, n), heads_first(C, n)
    xdt = (x * dt.unsqueeze(-1)).reshape(b, c, t, h, p).permute(0, 1, 3, 2, 4)  # (b,c,h,T,p)
    a_cum = torch.cumsum((dt * A).reshape(b, c, t, h).permute(0, 1, 3, 2), dim=-1)  # (b,c,h,T)
    return Bh, Ch, xdt, a_cum, (b, l, lp, c, h, n, p)


def selective_scan_reference(x, dt, A, B, C, chunk: int = 64) -> torch.Tensor:
    """Pure PyTorch SSD evaluation of the contract above (batched matmuls only)."""
    Bh, Ch, xdt, a_cum, (b, l, lp, c, h, n, p) = _ssd_chunks(x, dt, A, B, C, chunk)

    # 1. within each chunk: (C B^T * decay) x
    y = ((Ch @ Bh.transpose(-1, -2)) * _causal_decay(a_cum)) @ xdt  # (b,c,h,T,p)

    # 2. state at the end of each chunk from its own inputs
    to_end = torch.exp(a_cum[..., -1:] - a_cum).unsqueeze(-1)  # (b,c,h,T,1)
    states = (Bh * to_end).transpose(-1, -2) @ xdt  # (b,c,h,n,p)

    # 3. carry states across chunks (zero initial state)
    chunk_cum = torch.cumsum(torch.nn.functional.pad(a_cum[..., -1].permute(0, 2, 1), (1, 0)), -1)
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)  # (b,c+1,h,n,p)
    flat = states.permute(0, 2, 1, 3, 4).reshape(b, h, c + 1, n * p)
    carried = (_causal_decay(chunk_cum) @ flat)[:, :, :-1]  # state entering each chunk
    carried = carried.reshape(b, h, c, n, p).permute(0, 2, 1, 3, 4)  # (b,c,h,n,p)

    # 4. contribution of the carried state to each output
    y = y + (Ch @ carried) * torch.exp(a_cum).unsqueeze(-1)
    y = y.permute(0, 1, 3, 2, 4).reshape(b, lp, h, p)
    # crop by gather: a slice would make torch.export guard on l < lp
    return y.index_select(1, torch.arange(l, device=y.device))


def _masked_exp(diff: torch.Tensor, strict: bool = False) -> torch.Tensor:
    """exp of a (..., T, T) matrix of log-decays, zero above the diagonal (and on it
    with ``strict``).

    The causal mask is additive (0 / -inf) and built from the static size ``T``, so it
    folds into a constant: the lowered graph is Add/Exp only. The entries it keeps are
    <= 0 (log-decays are <= 0); those it masks are finite, so -inf + finite is -inf and
    exp gives an exact 0 (no inf * 0).
    """
    t = diff.shape[-1]
    idx = torch.arange(t, device=diff.device)
    keep = idx.unsqueeze(-1) > idx.unsqueeze(0) if strict else idx.unsqueeze(-1) >= idx.unsqueeze(0)
    mask = torch.zeros(t, t, device=diff.device, dtype=diff.dtype).masked_fill(~keep, float("-inf"))
    return torch.exp(diff + mask)


def _carry(a: torch.Tensor, s: torch.Tensor, block: int) -> torch.Tensor:
    """State entering each of K chunks: out_k = sum_{j<k} exp(a_{j+1} + ... + a_{k-1}) s_j.

    ``a`` (..., K) chunk log-decays, ``s`` (..., K, D) chunk-final states from each
    chunk's own inputs. Two levels (the SSD idea applied once more to the chunk
    sequence): a strict causal decay matrix inside blocks of ``block`` chunks, and one
    across block totals, so the cost is O(K * block + (K / block)^2) instead of O(K^2).
    """
    k, d = a.shape[-1], s.shape[-1]
    lead = a.shape[:-1]
    kp = (k + block - 1) // block * block
    a = torch.nn.functional.pad(a, (0, kp - k))  # padded chunks: decay 1, no state
    s = torch.nn.functional.pad(s, (0, 0, 0, kp - k))
    nb = kp // block
    a = a.reshape(*lead, nb, block)
    s = s.reshape(*lead, nb, block, d)
    # Exclusive and inclusive sums come from one cumsum, so differences of its entries
    # share their rounding (exc - inc from separate sums loses ~eps * |sum| in float32).
    cs = torch.cumsum(torch.nn.functional.pad(a, (1, 0)), dim=-1)
    exc, inc = cs[..., :-1], cs[..., 1:]  # before chunk k / through chunk j
    local = _masked_exp(exc.unsqueeze(-1) - inc.unsqueeze(-2), strict=True) @ s
    # block-final states and the carry across blocks (the same recurrence, one level up)
    tot = cs[..., -1]  # (..., nb)
    final = (torch.exp(tot.unsqueeze(-1) - inc).unsqueeze(-2) @ s).squeeze(-2)  # (..., nb, d)
    bcs = torch.cumsum(torch.nn.functional.pad(tot, (1, 0)), dim=-1)
    entering = _masked_exp(bcs[..., :-1].unsqueeze(-1) - bcs[..., 1:].unsqueeze(-2), strict=True) @ final
    out = local + torch.exp(exc).unsqueeze(-1) * entering.unsqueeze(-2)
    out = out.reshape(*lead, kp, d)
    return out.index_select(-2, torch.arange(k, device=out.device))


def selective_scan_lowered(x, dt, A, B, C, chunk: int = 64) -> torch.Tensor:
    """The portable ONNX lowering: the same SSD evaluation laid out for graph runtimes.

    Same result as :func:`selective_scan_reference` up to rounding. Differences:

    * chunks of ``min(chunk, LOWERED_CHUNK)`` steps, which cuts the quadratic
      within-chunk work (the decay matrices and their Exp are the largest elementwise
      tensors of the graph) by chunk / LOWERED_CHUNK; the states are carried across the
      now longer chunk sequence in two levels (:func:`_carry`);
    * an additive causal mask that folds into a constant (Add/Exp, no Clip/Mul);
    * ``B`` and ``C`` are used per group, broadcast over the group's heads, instead of
      being expanded to every head: ``C B^T`` is computed once per group and the chunk
      states are ``B^T (to_end * x dt)`` with the per-head decay put on ``x dt``;
    * layouts chosen for onnxruntime's CPU kernels: the heads are moved next to the
      chunk axis only where whole rows of ``p`` values move, the groups are split by
      slices (a chain of transposes that optimizers merge into one that moves single
      values is several times slower), the matmuls take their operands transposed, and
      the within-chunk cumulative decay is a matmul with a triangular ones matrix that
      reads the step axis transposed.
    """
    t = min(chunk, LOWERED_CHUNK)
    b, l, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    r = h // g  # heads per group
    lp = (l + t - 1) // t * t
    # The model's sequences are whole multiples of the chunk; when that is statically
    # known the graph carries neither the padding copies nor the final crop.
    padded = not statically_known_true(lp == l)
    if padded:
        x, dt, B, C = (torch.nn.functional.pad(v, (0, 0) * (v.dim() - 2) + (0, lp - l))
                       for v in (x, dt, B, C))
    k = lp // t
    xdt = (x * dt.unsqueeze(-1)).reshape(b, k, t, g, r, p).permute(0, 1, 3, 4, 2, 5)  # (b,k,g,r,T,p)

    def per_group(v):  # (b, lp, g, n) -> (b, k, g, 1, T, n)
        return torch.stack([v[:, :, i].reshape(b, k, t, n) for i in range(g)], dim=2).unsqueeze(3)

    Bg, Cg = per_group(B), per_group(C)
    idx = torch.arange(t, device=x.device)
    upper = (idx.unsqueeze(-1) <= idx.unsqueeze(0)).to(x.dtype)  # [s, t] = 1 for s <= t
    a_cum = ((dt * A).reshape(b, k, t, h).transpose(-1, -2) @ upper).reshape(b, k, g, r, t)

    # 1. within each chunk: (C B^T * decay) x
    decay = _masked_exp(a_cum.unsqueeze(-1) - a_cum.unsqueeze(-2))  # (b,k,g,r,T,T)
    y = ((Cg @ Bg.transpose(-1, -2)) * decay) @ xdt  # (b,k,g,r,T,p)

    # 2. state at the end of each chunk from its own inputs
    to_end = torch.exp(a_cum[..., -1:] - a_cum).unsqueeze(-1)  # (b,k,g,r,T,1)
    states = Bg.transpose(-1, -2) @ (xdt * to_end)  # (b,k,g,r,n,p)

    # 3. carry states across chunks (zero initial state)
    flat = states.reshape(b, k, h, n * p).transpose(1, 2)  # (b,h,k,n*p)
    a_last = a_cum[..., -1].reshape(b, k, h).transpose(1, 2)  # (b,h,k)
    carried = _carry(a_last, flat, CARRY_BLOCK).transpose(1, 2).reshape(b, k, g, r, n, p)

    # 4. contribution of the carried state to each output
    y = y + (Cg @ carried) * torch.exp(a_cum).unsqueeze(-1)
    y = y.permute(0, 1, 4, 2, 3, 5).reshape(b, lp, h, p)
    if not padded:
        return y
    # crop by gather: a slice would make torch.export guard on l < lp
    return y.index_select(1, torch.arange(l, device=y.device))


LOWERED_CHUNK = 16  # chunk length of the lowering (see selective_scan_lowered)
CARRY_BLOCK = 32  # chunks per block of the two-level carry


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
