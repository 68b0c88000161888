"""Autograd for custom ops by differentiating their reference implementation.

The forward of a custom op runs its reference under ``no_grad``; the backward re-runs the
reference with autograd on and asks for the vector-Jacobian product. This costs one
recomputation but keeps a single source of truth for the math.
"""

from __future__ import annotations

from typing import Callable

import torch


def register_autograd_via_reference(op, reference: Callable, n_tensors: int) -> None:
    """Give ``op`` a backward computed through ``reference`` (first ``n_tensors`` args)."""

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs[:n_tensors])
        ctx.extra = inputs[n_tensors:]

    def backward(ctx, grad_out):
        saved = ctx.saved_tensors
        leaves = [t.detach().requires_grad_(ctx.needs_input_grad[i]) for i, t in enumerate(saved)]
        with torch.enable_grad():
            out = reference(*leaves, *ctx.extra)
        wanted = [t for t in leaves if t.requires_grad]
        grads = iter(torch.autograd.grad(out, wanted, grad_out, allow_unused=True)) if wanted else iter(())
        result = [next(grads) if t.requires_grad else None for t in leaves]
        return (*result, *([None] * len(ctx.extra)))

    op.register_autograd(backward, setup_context=setup_context)
