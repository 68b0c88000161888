"""Library side of ``hermes-export info`` and ``hermes-export deploy``."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from .api import load_model
from .checkpoint import save_checkpoint
from .deploy import count_convs, deploy
from .stats import count_macs, count_params


def model_info(source: str, scale: int = 2, out_h: int = 720, out_w: int = 1280) -> dict:
    model = load_model(source, scale=scale)
    dep = deploy(model, fidelity=True) if not model.config.deploy else model
    cfg = model.config
    return {
        "source": str(source),
        "config": dataclasses.asdict(cfg),
        "params": count_params(model),
        "deploy_params": count_params(dep),
        "macs": count_macs(model, out_h, out_w),
        "deploy_macs": count_macs(dep, out_h, out_w),
        "output_size": [out_h, out_w],
        "size_multiple": cfg.size_multiple,
        "context_channels": cfg.context_channels,
    }


@torch.no_grad()
def deploy_checkpoint(source: str, output: str | os.PathLike, fidelity: bool = True,
                      scale: int = 2, seed: int = 0) -> dict:
    """Write the deploy form of ``source`` and measure it against the training form."""
    model = load_model(source, scale=scale)
    dep = deploy(model, fidelity=fidelity)
    if not model.config.deploy:
        model.set_fidelity(fidelity)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(2, model.config.in_channels, 48, 40, generator=gen)
    diff = (model(x) - dep(x)).abs().max().item()
    path = save_checkpoint(dep, Path(output))
    return {"output": str(path), "fidelity": fidelity, "max_abs_diff": diff,
            "params_before": count_params(model), "params_after": count_params(dep),
            "convs_before": count_convs(model), "convs_after": count_convs(dep)}
