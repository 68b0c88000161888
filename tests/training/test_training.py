"""Training: a few steps on a tiny crop set reduce the loss; checkpoints are complete."""

from __future__ import annotations

import re

import pytest
import torch

from hermes_deploy.model.checkpoint import load_checkpoint
from hermes_deploy.model.moe import GENERATIVE
from hermes_deploy.quality import load_photo
from hermes_deploy.training.data import PairSampler
from hermes_deploy.training.train import TrainConfig, degradations_for, train, train_step_loss


@pytest.mark.slow
def test_few_steps_reduce_loss_and_write_checkpoint(tmp_path):
    photo = load_photo("rocket")[100:228, 200:328]
    cfg = TrainConfig(preset="tiny", scale=2, steps=12, batch=4, lr_patch=16, lr=1e-3,
                      warmup=2, val_every=0, out_dir=str(tmp_path / "run"), progress=False,
                      router_noise=0.0, router_steps=3)
    sampler = PairSampler(degradations_for(2), 32, 4, seed=1, images=[photo])
    held = [sampler.next_batch() for _ in range(3)]  # the crop set itself, fixed
    sampler.reset()
    from hermes_deploy.model.config import preset
    from hermes_deploy.model.network import Hermes

    torch.manual_seed(0)
    model = Hermes(preset("tiny", scale=2))
    model.head[-1].reset_parameters()  # start away from the bicubic optimum
    model.set_fidelity(True)

    def held_loss():
        model.eval()
        with torch.no_grad():
            return sum(float(train_step_loss(model, lq, gt, cfg)[1]) for lq, gt in held) / len(held)

    before = held_loss()
    e4_before = [p.clone() for p in model.moe.experts[GENERATIVE].parameters()]
    result = train(cfg, model=model, sampler=sampler)
    after = held_loss()
    assert after < before * 0.97, (before, after)
    # fidelity training: E4 stays in the model, frozen
    assert all(torch.equal(a, b) for a, b in zip(e4_before, model.moe.experts[GENERATIVE].parameters()))
    loaded = load_checkpoint(result.checkpoint)
    assert len(loaded.moe.experts) == 4 and loaded.config.fidelity
    x = held[0][0]
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_sampler_is_seeded_rewindable_and_batches_differ():
    photo = load_photo("rocket")[:200, :200]
    s = PairSampler(degradations_for(2), 32, 3, seed=5, images=[photo])
    a1, a2 = s.next_batch(), s.next_batch()
    s.reset()
    b1 = s.next_batch()
    assert torch.equal(a1[0], b1[0]) and torch.equal(a1[1], b1[1])
    assert not torch.equal(a1[1], a2[1])
    assert not torch.equal(a1[1][0], a1[1][1])  # crops within a batch differ
    assert a1[0].shape == (3, 3, 16, 16) and a1[1].shape == (3, 3, 32, 32)


def _tiny_run(tmp_path, **kw) -> TrainConfig:
    base = dict(preset="tiny", scale=2, steps=2, batch=1, lr_patch=8, warmup=1, val_every=0,
                out_dir=str(tmp_path / "run"), progress=True)
    return TrainConfig(**{**base, **kw})


def _tiny_sampler() -> PairSampler:
    return PairSampler(degradations_for(2), 16, 1, seed=0, images=[load_photo("rocket")[:96, :96]])


@pytest.mark.slow
def test_short_run_stages_progress_and_losses(tmp_path, capsys):
    """`--steps 5` is not followed by a fixed 250-step router stage (15.5 minutes); each
    stage has its own bar and its own losses; the bar shows no `nan` before validation."""
    result = train(_tiny_run(tmp_path, steps=5), sampler=_tiny_sampler())
    router = [h for h in result.history if h.get("stage") == "router"]
    assert router and router[0]["router_steps"] == 2 == result.router_steps, router
    err = capsys.readouterr().err
    assert "nan" not in err and "val=-" in err, err
    assert re.search(r"router[^\r\n]*2/2", err), err  # stage 2's own bar reaches its total
    assert len(result.losses) == 5 and len(result.router_losses) == 2
    assert (result.first_loss, result.last_loss) == (result.losses[0], result.losses[-1])
    assert (result.router_first_loss, result.router_last_loss) == (result.router_losses[0],
                                                                   result.router_losses[-1])


def test_router_steps_default_is_proportional_and_capped():
    from hermes_deploy.errors import InvalidArgumentError
    from hermes_deploy.training.train import resolve_router_steps

    assert resolve_router_steps(TrainConfig(steps=5)) == 2
    assert resolve_router_steps(TrainConfig(steps=1200)) == 250  # the shipped recipe's value
    assert resolve_router_steps(TrainConfig(steps=100_000)) == 250
    assert resolve_router_steps(TrainConfig(steps=0)) == 250  # router-only run on --init
    assert resolve_router_steps(TrainConfig(steps=5, router_steps=7)) == 7
    assert resolve_router_steps(TrainConfig(steps=1200, router_steps=0)) == 0
    with pytest.raises(InvalidArgumentError, match="pass 0 to skip"):
        resolve_router_steps(TrainConfig(router_steps=-1))


def test_summary_labels_each_stage_and_never_prints_nan():
    from hermes_deploy.training.train import TrainResult

    nan = float("nan")
    router_only = TrainResult(checkpoint="c", steps=0, seconds=6.0, val_psnr=nan, val_gain=nan,
                              router_steps=2, router_losses=[0.6, 0.5])
    lines = router_only.summary()
    assert lines[0] == "stage 1: skipped (0 steps)"
    assert lines[1].startswith("router: 2 steps, loss 0.6000 -> 0.5000")
    assert "nan" not in "\n".join(lines).lower()
    both = TrainResult(checkpoint="c", steps=3, seconds=6.0, val_psnr=33.0, val_gain=1.2,
                       losses=[0.08, 0.07, 0.06])
    lines = both.summary()
    assert lines[0].startswith("stage 1: 3 steps, loss 0.0800 -> 0.0600")
    assert lines[1] == "router: skipped (0 router steps)"
    assert "33.000 dB (+1.200 vs bicubic)" in lines[2]
