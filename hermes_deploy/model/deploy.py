"""Deploy transforms: re-parameterization and fidelity mode.

Both return a new module and leave their input untouched. The result is built from a
config with ``deploy=True`` and loaded strictly, so its structure is exactly what a
deploy checkpoint loads into (no leftover training branches, no BatchNorm).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import InvalidArgumentError
from .moe import GENERATIVE
from .network import Hermes


def reparameterize(model: Hermes) -> Hermes:
    """Fuse every multi-branch conv (RepConv, PLK branches) into a single conv.

    Idempotent: a model already in deploy form comes back as an equal copy. The
    generative expert is kept (use :func:`deploy` with ``fidelity=True`` to remove it).
    """
    return deploy(model, fidelity=model.config.deploy and model.config.fidelity)


@torch.no_grad()
def deploy(model: Hermes, fidelity: bool = True) -> Hermes:
    """Deploy form of ``model``: re-parameterized and, with ``fidelity``, without E4.

    Fidelity removes the generative expert, its router logit and all noise; the router
    renormalizes over the remaining experts, exactly as the training form does with
    ``set_fidelity(True)``.
    """
    if not isinstance(model, Hermes):
        raise TypeError(f"deploy() expects a Hermes model, got {type(model).__name__}")
    if model.config.deploy and model.config.fidelity and not fidelity:
        raise InvalidArgumentError("this model already had its generative expert removed; "
                         "deploy the training-form checkpoint to keep it")
    work = copy.deepcopy(model).eval()
    for module in work.modules():
        if hasattr(module, "reparameterize"):
            module.reparameterize()
    state = work.state_dict()
    if fidelity and len(work.moe.experts) > GENERATIVE:
        prefix = f"moe.experts.{GENERATIVE}."
        state = {k: v for k, v in state.items() if not k.startswith(prefix)}
        state["moe.router.logits.weight"] = state["moe.router.logits.weight"][:GENERATIVE]
        state["moe.router.logits.bias"] = state["moe.router.logits.bias"][:GENERATIVE]
    out = Hermes(model.config.replace(deploy=True, fidelity=fidelity))
    out.load_state_dict(state, strict=True)
    param = next(model.parameters())
    return out.to(device=param.device, dtype=param.dtype).eval()


def count_convs(model: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) for m in model.modules())


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
