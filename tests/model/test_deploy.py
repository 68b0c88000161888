"""Deploy transforms: re-parameterization and fidelity mode."""

from __future__ import annotations

import copy

import pytest
import torch

from hermes_deploy.model.deploy import count_convs, deploy, has_batchnorm, reparameterize
from hermes_deploy.model.moe import GENERATIVE
from hermes_deploy.model.network import Hermes
from hermes_deploy.model.rep import PartialLargeKernel, RepConv

from ..conftest import make_model, randomize_batchnorm


def _tol(out: torch.Tensor) -> float:
    return 1e-4 * max(1.0, out.abs().max().item())


def _force_generative(model: Hermes) -> None:
    """Make the router pick E4 so fidelity mode is a real change."""
    with torch.no_grad():
        model.moe.router.logits.bias[GENERATIVE] += 50.0


# scale 1 runs the larger presets at full input resolution: seconds each
DEPLOY_CASES = [pytest.param(name, scale, marks=[pytest.mark.slow] if scale == 1 and name != "tiny" else [])
                for scale in (1, 2, 4) for name in ("tiny", "small", "base")]


@pytest.mark.parametrize("name, scale", DEPLOY_CASES)
def test_deploy_form_matches_training_form(name, scale):
    model = make_model(name, scale, seed=scale)
    before = copy.deepcopy(model.state_dict())
    x = torch.rand(2, 3, 19, 26, generator=torch.Generator().manual_seed(scale))
    dep = deploy(model, fidelity=False)
    with torch.no_grad():
        ref, got = model(x), dep(x)
    assert got.shape == (2, 3, 19 * scale, 26 * scale)
    assert (ref - got).abs().max().item() <= _tol(ref)
    assert not has_batchnorm(dep) and has_batchnorm(model)
    assert count_convs(dep) < count_convs(model)
    assert not any(isinstance(m, RepConv) and not m.deploy for m in dep.modules())
    # the input model is untouched
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_fidelity_deploy_matches_masked_training_form():
    model = make_model("tiny", 2, seed=5)
    _force_generative(model)
    x = torch.rand(2, 3, 21, 18, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(2, 1, 21, 18, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        generative = model(x, noise=noise)
    dep = deploy(model, fidelity=True)
    assert not any(k.startswith(f"moe.experts.{GENERATIVE}.") for k in dep.state_dict())
    assert len(dep.moe.experts) == GENERATIVE and dep.moe.router.logits.out_features == GENERATIVE
    masked = copy.deepcopy(model)
    masked.set_fidelity(True)
    with torch.no_grad():
        ref = masked(x, noise=noise)
        a, b = dep(x), dep(x, noise=noise)
    assert torch.equal(a, b)  # repeated calls identical, noise ignored
    assert (ref - a).abs().max().item() <= _tol(ref)
    # E4 was really carrying the output before: fidelity changes the result
    assert (generative - ref).abs().max().item() > 1e-3


def test_training_form_noise_only_matters_without_fidelity():
    model = make_model("tiny", 2, seed=6)
    _force_generative(model)
    with torch.no_grad():
        model.moe.experts[GENERATIVE].noise_strength.fill_(0.5)
    x = torch.rand(1, 3, 16, 16)
    n1, n2 = torch.randn(1, 1, 16, 16), torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(model(x, noise=n1), model(x, noise=n2))
        model.set_fidelity(True)
        assert torch.equal(model(x, noise=n1), model(x, noise=n2))


def test_reparameterize_is_idempotent_and_keeps_generative():
    model = make_model("tiny", 2, seed=7)
    once = reparameterize(model)
    twice = reparameterize(once)
    assert len(once.moe.experts) == 4
    s1, s2 = once.state_dict(), twice.state_dict()
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
    block = RepConv(4, 4)
    randomize_batchnorm(block)
    block.reparameterize()
    weight = block.fused.weight.clone()
    block.reparameterize()
    assert torch.equal(block.fused.weight, weight)


def test_deploy_checkpoint_loads_straight_into_deploy_form():
    dep = deploy(make_model("tiny", 3, seed=8), fidelity=True)
    fresh = Hermes(dep.config)  # built from the config alone, deploy=True
    fresh.load_state_dict(dep.state_dict(), strict=True)
    x = torch.rand(1, 3, 17, 17)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x), dep(x))


@pytest.mark.parametrize("kernel", [7, 13, 17])
def test_partial_large_kernel_fuses_all_branches(kernel):
    torch.manual_seed(kernel)
    plk = PartialLargeKernel(12, 5, kernel).eval()
    x = torch.randn(2, 12, 23, 19)
    with torch.no_grad():
        ref = plk(x)
        plk.reparameterize()
        got = plk(x)
    assert not hasattr(plk, "small") and not hasattr(plk, "dilated")
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    assert torch.equal(got[:, 5:], x[:, 5:])  # untouched channels pass through
