"""Stage 2 of training: calibrate the router on image-level contexts.

During stage 1 every crop routes on its own context and the router sees exploration
noise; the runtime instead routes every tile of an image on the context of the whole
image, with no noise. Measured on the first default model: routed that way, all three
held-out photos chose the same two experts (texture expert 0% of the routing mass).
This stage freezes everything but the router and trains it, noise-free, on crops that
carry the context of the image they were cut from, with the L1 reconstruction loss, a stronger Switch load-balancing term (the batch
spreads over the experts) and a per-image entropy penalty (each image decides), so
routing depends on the image instead of on near-ties.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..model.moe import GENERATIVE, load_balancing_loss, router_entropy
from ..model.network import Hermes
from ..quality import Degradation


def calibrate_router(model: Hermes, images: list[np.ndarray], degradation: Degradation,
                     steps: int = 150, batch: int = 16, gt_crop: int = 80, lr: float = 1e-3,
                     balance_weight: float = 0.5, entropy_weight: float = 0.05,
                     seed: int = 0, on_step: Callable[[float], None] | None = None) -> list[float]:
    """Train only ``model.moe.router``; returns the per-step losses.

    ``on_step`` is called after every step with that step's loss (progress display).
    """
    rng = np.random.default_rng(seed)
    s = degradation.scale
    pairs, contexts = [], []
    model.eval()
    with torch.no_grad():
        for img in images:
            gt = degradation.target(img)
            lq = degradation.apply(gt, rng)
            pairs.append((lq, gt))
            contexts.append(model.compute_context(torch.from_numpy(lq).permute(2, 0, 1)[None])[0])
    router_params = list(model.moe.router.parameters())
    frozen = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in router_params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(router_params, lr=lr)
    noise, model.moe.router_noise = model.moe.router_noise, 0.0
    losses = []
    try:
        for _ in range(steps):
            idx = rng.integers(0, len(pairs), size=batch)
            lqs, gts = [], []
            for i in idx:
                lq, gt = pairs[i]
                lc = gt_crop // s
                top = int(rng.integers(0, lq.shape[0] - lc + 1))
                left = int(rng.integers(0, lq.shape[1] - lc + 1))
                lqs.append(lq[top:top + lc, left:left + lc])
                gts.append(gt[top * s:(top + lc) * s, left * s:(left + lc) * s])
            to_t = lambda a: torch.from_numpy(np.ascontiguousarray(np.stack(a))).permute(0, 3, 1, 2)
            ctx = torch.stack([contexts[i] for i in idx])
            out, aux = model(to_t(lqs), context=ctx, return_aux=True)
            active = slice(0, GENERATIVE) if model.moe.mask_generative else slice(None)
            probs = aux["probs"][:, active]
            loss = (F.l1_loss(out, to_t(gts))
                    + balance_weight * load_balancing_loss(probs, aux["gates"][:, active])
                    + entropy_weight * router_entropy(probs))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(losses[-1])
    finally:
        model.moe.router_noise = noise
        for p, flag in frozen.items():
            p.requires_grad_(flag)
    return losses
