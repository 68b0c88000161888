"""The training loop that produces (and reproduces) the shipped default models.

Objective: L1 + ``msssim_weight`` * (1 - MS-SSIM) + ``balance_weight`` * Switch
load-balancing loss + ``entropy_weight`` * per-image router entropy (a small weight
sharpens routing decisions; balance keeps the batch spread over experts). Fidelity
training (the default): the generative expert E4 is masked out of routing and its
weights are frozen, but it stays in the checkpoint and runs when fidelity is turned off.
A GAN/perceptual objective is not implemented (no pretrained feature network can be
fetched here), so E4 is never trained.

Stage 2 then calibrates the router (:mod:`.router`) for ``router_steps`` steps; left
unset, that is a quarter of the stage-1 steps, at most ``ROUTER_STEPS_CAP`` (the value
the shipped default was calibrated with), so a 5-step trial is not followed by minutes
of router training. Each stage has its own progress bar and its own loss: the two
objectives differ (stage 2 weighs load balancing 10x more), so their values are never
compared with each other.

Validation PSNR-Y on the held-out photographs runs every ``val_every`` steps, at the
end of stage 1 and after stage 2 (none when ``val_every`` is 0); every checkpoint is
written atomically (temporary file + rename).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ..atomic import write_error
from ..errors import InvalidArgumentError
from ..model.checkpoint import save_checkpoint
from ..model.config import preset
from ..model.moe import GENERATIVE, load_balancing_loss, router_entropy
from ..model.network import Hermes
from ..model.restore import torch_restorer
from ..quality import HELDOUT_PHOTOS, Degradation, load_photo
from ..quality.harness import evaluate
from .data import PairSampler
from .losses import ms_ssim


@dataclass
class TrainConfig:
    preset: str = "tiny"
    scale: int = 2
    steps: int = 1200
    batch: int = 16
    lr_patch: int = 40  # low-resolution crop side
    lr: float = 1e-3
    warmup: int = 100
    seed: int = 0
    out_dir: str = "runs/tiny-x2"
    val_every: int = 200
    msssim_weight: float = 0.05
    balance_weight: float = 0.05
    entropy_weight: float = 0.002
    router_noise: float = 0.5
    max_minutes: float = 0.0  # 0 = no time limit (a limit breaks bit-reproducibility)
    threads: int = 0  # 0 = torch default
    val_photos: tuple[str, ...] = HELDOUT_PHOTOS
    progress: bool = True
    router_steps: int | None = None  # stage 2 steps; None: resolve_router_steps() picks
    router_lr: float = 1e-2
    init: str = ""  # start from this checkpoint (e.g. a finished stage 1) instead of scratch


ROUTER_STEPS_CAP = 250  # stage 2 of the shipped default (hermes_deploy/weights/README.md)


def resolve_router_steps(cfg: TrainConfig) -> int:
    """Stage-2 steps: ``cfg.router_steps`` when set, else a quarter of the stage-1 steps
    (rounded up) capped at ``ROUTER_STEPS_CAP``; a run with no stage 1 (``steps`` 0, a
    router-only pass over an ``init`` checkpoint) gets the cap."""
    for name, value, stage in (("steps", cfg.steps, "stage 1"),
                               ("router steps", cfg.router_steps or 0, "the router stage")):
        if value < 0:
            raise InvalidArgumentError(f"{name} must be >= 0, received {value}; pass 0 to skip {stage}")
    if cfg.router_steps is not None:
        return cfg.router_steps
    if cfg.steps == 0:
        return ROUTER_STEPS_CAP
    return min(ROUTER_STEPS_CAP, -(-cfg.steps // 4))


@dataclass
class TrainResult:
    """Figures of one run. ``losses`` are stage 1's per-step losses (its full objective),
    ``router_losses`` stage 2's (a different objective); ``val_psnr``/``val_gain`` are
    NaN when no validation ran (``val_every`` 0)."""

    checkpoint: str
    steps: int
    seconds: float
    val_psnr: float
    val_gain: float
    losses: list[float] = field(default_factory=list)
    router_steps: int = 0
    router_losses: list[float] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)

    @property
    def first_loss(self) -> float:
        return self.losses[0] if self.losses else float("nan")

    @property
    def last_loss(self) -> float:
        return self.losses[-1] if self.losses else float("nan")

    @property
    def router_first_loss(self) -> float:
        return self.router_losses[0] if self.router_losses else float("nan")

    @property
    def router_last_loss(self) -> float:
        return self.router_losses[-1] if self.router_losses else float("nan")

    def summary(self) -> list[str]:
        """Closing lines for people: each stage's first and last loss, then validation."""
        lines = []
        if self.losses:
            lines.append(f"stage 1: {len(self.losses)} steps, loss {self.first_loss:.4f} -> "
                         f"{self.last_loss:.4f} (L1 + MS-SSIM + balance + entropy)")
        else:
            lines.append("stage 1: skipped (0 steps)")
        if self.router_losses:
            lines.append(f"router: {len(self.router_losses)} steps, loss {self.router_first_loss:.4f}"
                         f" -> {self.router_last_loss:.4f} (router only: L1 + balance + entropy)")
        else:
            lines.append("router: skipped (0 router steps)")
        if math.isnan(self.val_psnr):
            lines.append("held-out PSNR-Y: not measured (validation off)")
        else:
            lines.append(f"held-out PSNR-Y {self.val_psnr:.3f} dB ({self.val_gain:+.3f} vs bicubic)")
        lines.append(f"{self.seconds / 60:.1f} min; checkpoint: {self.checkpoint}")
        return lines


def degradations_for(scale: int) -> list[Degradation]:
    """The task mix a model of ``scale`` is trained on."""
    if scale > 1:
        return [Degradation.sr(scale)]
    return [Degradation.denoise(15 / 255), Degradation.deblur("gaussian"),
            Degradation.deblur("motion", noise_sigma=5 / 255)]


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return 1e-5 + 0.5 * (cfg.lr - 1e-5) * (1 + math.cos(math.pi * min(1.0, t)))


def validate(model: Hermes, scale: int, photos: tuple[str, ...], images=None) -> dict:
    images = images if images is not None else [(p, load_photo(p)) for p in photos]
    report = evaluate(torch_restorer(model), images, degradations_for(scale)[0])
    return {"psnr": report.mean("psnr"), "gain": report.mean("gain"),
            "per_image": {s.name: round(s.psnr, 3) for s in report.images}}


def _open_log(path: Path, mode: str):
    try:
        return path.open(mode)
    except OSError as exc:
        raise write_error(path, exc, "the training log") from None


def _log(log, path: Path, entry: dict) -> None:
    try:
        log.write(json.dumps(entry) + "\n")
        log.flush()
    except OSError as exc:
        raise write_error(path, exc, "the training log") from None


def _checkpoint_record(cfg: TrainConfig, step: int, val: dict, **more: str) -> dict[str, str]:
    """Checkpoint metadata recording how the weights were made."""
    return {"train_config": json.dumps(asdict(cfg)), "train_step": str(step),
            "val_psnr_y": f"{val['psnr']:.4f}", **more}


def train_step_loss(model: Hermes, lq: torch.Tensor, gt: torch.Tensor, cfg: TrainConfig):
    out, aux = model(lq, return_aux=True)
    active = slice(0, GENERATIVE) if model.moe.mask_generative else slice(None)
    probs, gates = aux["probs"][:, active], aux["gates"][:, active]
    l1 = F.l1_loss(out, gt)
    loss = l1 + cfg.msssim_weight * (1 - ms_ssim(out.clamp(0, 1), gt))
    loss = loss + cfg.balance_weight * load_balancing_loss(probs, gates)
    loss = loss + cfg.entropy_weight * router_entropy(probs)
    return loss, l1, gates


def train(cfg: TrainConfig, model: Hermes | None = None, sampler: PairSampler | None = None) -> TrainResult:
    """Train a fidelity-mode model from ``cfg.seed``; returns figures and the checkpoint path."""
    cfg = replace(cfg, router_steps=resolve_router_steps(cfg))  # the checkpoints record the figure
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if model is None and cfg.init:
        from ..model.checkpoint import load_checkpoint

        model = load_checkpoint(cfg.init)
    if model is None:
        model = Hermes(preset(cfg.preset, scale=cfg.scale))
    model.set_fidelity(True)
    for p in model.moe.experts[GENERATIVE].parameters():
        p.requires_grad_(False)  # fidelity training: E4 kept, frozen
    model.moe.router_noise = cfg.router_noise
    sampler = sampler or PairSampler(degradations_for(cfg.scale), cfg.lr_patch * cfg.scale,
                                     cfg.batch, seed=cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0, betas=(0.9, 0.99))
    val_images = [(p, load_photo(p)) for p in cfg.val_photos] if cfg.val_every else []
    log_path = out_dir / "log.jsonl"
    history: list[dict] = []
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, desc=f"stage 1 {cfg.preset} x{cfg.scale}", unit="step")
    start = time.monotonic()
    losses: list[float] = []
    val = {"psnr": float("nan"), "gain": float("nan")}
    val_shown = "-"  # until a validation has run
    ema = None
    step = 0
    try:
        with _open_log(log_path, "w") as log:
            if cfg.steps == 0 and cfg.progress:
                bar.write("stage 1 skipped (--steps 0)")
            for step in range(1, cfg.steps + 1):
                model.train()
                for group in opt.param_groups:
                    group["lr"] = _lr_at(step - 1, cfg)
                lq, gt = sampler.next_batch()
                loss, l1, gates = train_step_loss(model, lq, gt, cfg)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                value = float(loss.detach())
                losses.append(value)
                ema = value if ema is None else 0.98 * ema + 0.02 * value
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{ema:.4f}", val=val_shown)
                timed_out = cfg.max_minutes and (time.monotonic() - start) > cfg.max_minutes * 60
                if (cfg.val_every and step % cfg.val_every == 0) or step == cfg.steps or timed_out:
                    model.eval()
                    val = validate(model, cfg.scale, cfg.val_photos, val_images) if val_images else val
                    entry = {"step": step, "loss": ema, "lr": _lr_at(step - 1, cfg),
                             "seconds": round(time.monotonic() - start, 1), "val": val,
                             "utilization": gates.mean(0).tolist()}
                    history.append(entry)
                    _log(log, log_path, entry)
                    extra = _checkpoint_record(cfg, step, val)
                    save_checkpoint(model, out_dir / "last.safetensors", extra=extra)
                    save_checkpoint(model, out_dir / f"step{step:05d}.safetensors", extra=extra)
                    if val_images:
                        val_shown = f"{val['psnr']:.2f}"
                    if bar is not None and val_images:
                        bar.set_postfix(loss=f"{ema:.4f}", val=val_shown)
                        bar.write(f"step {step}: loss {ema:.4f}, val PSNR-Y {val['psnr']:.3f} dB "
                                  f"({val['gain']:+.3f} vs bicubic)")
                if timed_out:
                    break
    finally:  # closed before any error line is printed, which would land on the bar's line
        if bar is not None:
            bar.close()
    router_steps = cfg.router_steps
    router_losses: list[float] = []
    if router_steps:
        router_losses = _router_stage(model, sampler, cfg, router_steps)
        model.eval()
        val = validate(model, cfg.scale, cfg.val_photos, val_images) if val_images else val
        entry = {"step": step, "stage": "router", "router_steps": router_steps,
                 "first_loss": router_losses[0], "last_loss": router_losses[-1],
                 "seconds": round(time.monotonic() - start, 1), "val": val}
        history.append(entry)
        with _open_log(log_path, "a") as log:
            _log(log, log_path, entry)
        save_checkpoint(model, out_dir / "last.safetensors",
                        extra=_checkpoint_record(cfg, step, val, router_steps=str(router_steps)))
    model.moe.router_noise = 0.0
    model.eval()
    return TrainResult(checkpoint=str(out_dir / "last.safetensors"), steps=step,
                       seconds=time.monotonic() - start, val_psnr=val["psnr"], val_gain=val["gain"],
                       losses=losses, router_steps=router_steps, router_losses=router_losses,
                       history=history)


def _router_stage(model: Hermes, sampler: PairSampler, cfg: TrainConfig, steps: int) -> list[float]:
    """Stage 2 with its own progress bar (its loss is not stage 1's: separate bars)."""
    from .router import calibrate_router

    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="stage 2 router", unit="step")

    def shown(value: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{value:.4f}")

    try:
        return calibrate_router(model, sampler.images, degradations_for(cfg.scale)[0], steps=steps,
                                batch=cfg.batch, gt_crop=cfg.lr_patch * cfg.scale, lr=cfg.router_lr,
                                seed=cfg.seed, on_step=shown if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
