"""The network: shapes, context, components, routing, export-readiness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from hermes_deploy.model.layers import BicubicUpsample, WindowAttention, symmetric_pad
from hermes_deploy.model.moe import (GENERATIVE, ModulatedConv, dense_gates, load_balancing_loss,
                                     router_entropy)

from ..conftest import make_model


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_any_size_gives_exact_output_size(scale):
    model = make_model("tiny", scale)
    with torch.no_grad():
        y = model(torch.rand(1, 3, 37, 53))
        z = model(torch.rand(3, 3, 1, 1))
    assert y.shape == (1, 3, 37 * scale, 53 * scale)
    assert z.shape == (3, 3, scale, scale)
    assert torch.isfinite(y).all() and torch.isfinite(z).all()


def test_given_context_reproduces_plain_forward_exactly():
    model = make_model("tiny", 2)
    x = torch.rand(2, 3, 30, 41)
    with torch.no_grad():
        assert torch.equal(model(x), model(x, context=model.compute_context(x)))


def test_whole_image_context_makes_tiles_route_like_the_image():
    model = make_model("tiny", 2, seed=3)
    x = torch.rand(1, 3, 64, 64)
    x[..., 32:, :] = 0.5 * x[..., 32:, :] ** 3  # tiles that differ in statistics
    with torch.no_grad():
        ctx = model.compute_context(x)
        whole = model.moe.route(ctx)[1]
        for tile in (x[..., :32, :32], x[..., 32:, 32:]):
            _, aux = model(tile, context=ctx, return_aux=True)  # the forward uses the given context
            assert torch.equal(aux["gates"], whole)
        assert not torch.allclose(model.compute_context(x[..., 32:, 32:]), ctx)


def test_every_component_runs_in_forward():
    model = make_model("tiny", 2)
    ran = set()
    names = {
        "context_encoder", "kernel_prior", "local_blocks.0", "local_blocks.0.plk",
        "global_blocks.0", "freq", "fusion.0", "fusion.1", "fusion.0.attn", "fusion.1.attn",
        "fusion.0.ffn_l", "moe.router", "moe.experts.0", "moe.experts.1", "moe.experts.2",
        "moe.experts.3", "moe.experts.0.attn", "moe.experts.1.ssm", "moe.experts.3.mod",
        "msg", "head", "upsample",
    }
    modules = dict(model.named_modules())
    hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: ran.add(n)) for n in names]
    with torch.no_grad():
        model(torch.rand(1, 3, 20, 20), noise=torch.randn(1, 1, 20, 20))
    for h in hooks:
        h.remove()
    assert ran == names
    assert model.fusion[1].attn.shift == model.config.window // 2 and model.fusion[0].attn.shift == 0


def test_all_shared_parameters_get_gradient():
    # top-3 with E4 masked: the three fidelity experts are all selected
    model = make_model("tiny", 2, top_k=3).train()
    model.set_fidelity(True)
    out, aux = model(torch.rand(2, 3, 24, 24), return_aux=True)
    out.mean().backward()
    assert (aux["gates"][:, :GENERATIVE] > 0).all()
    for name, p in model.named_parameters():
        if name.startswith(f"moe.experts.{GENERATIVE}."):
            assert p.grad is None or p.grad.abs().sum() == 0, name
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_dense_gates_topk_and_fidelity_mask():
    logits = torch.tensor([[0.1, 2.0, -1.0, 3.0], [5.0, 4.0, 3.0, -2.0]])
    g = dense_gates(logits, 2)
    assert torch.allclose(g.sum(1), torch.ones(2))
    assert ((g > 0).sum(1) == 2).all()
    assert g[0, 2] == 0 and g[0, 0] == 0 and g[0, 3] > g[0, 1]
    model = make_model("tiny", 2)
    model.set_fidelity(True)
    with torch.no_grad():
        model.moe.router.logits.bias[GENERATIVE] += 100.0
        _, gates = model.moe.route(torch.randn(4, model.config.context_channels))
    assert (gates[:, GENERATIVE] == 0).all() and torch.allclose(gates.sum(1), torch.ones(4))


def test_load_balancing_loss_decreases_on_a_skewed_router():
    torch.manual_seed(0)
    model = make_model("tiny", 2)
    router = model.moe
    with torch.no_grad():
        router.router.logits.bias.copy_(torch.tensor([2.0, 1.5, 0.0, 0.0]))
    ctx = torch.randn(32, model.config.context_channels)
    opt = torch.optim.SGD(router.router.parameters(), lr=1.0)
    losses = []
    for _ in range(30):
        logits, gates = router.route(ctx)
        probs = torch.softmax(logits, 1)
        loss = load_balancing_loss(probs, gates)
        opt.zero_grad()
        loss.backward()
        assert router.router.logits.bias.grad is not None
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1
    assert torch.allclose(gates.mean(0).sum(), torch.tensor(1.0))
    ent = router_entropy(torch.softmax(router.route(ctx)[0], 1))
    assert 0 < ent.item() <= np.log(4) + 1e-6


def test_aux_reports_utilization_summing_to_one():
    model = make_model("tiny", 2)
    with torch.no_grad():
        _, aux = model(torch.rand(3, 3, 16, 16), return_aux=True)
    util = aux["gates"].mean(0)
    assert util.shape == (4,) and torch.allclose(util.sum(), torch.tensor(1.0))


@pytest.mark.parametrize("n", [1, 2, 5, 16])
def test_symmetric_pad_matches_numpy(n):
    x = torch.arange(n * 3, dtype=torch.float32).reshape(1, 1, n, 3)
    got = symmetric_pad(x, 16).numpy()[0, 0]
    want_rows = np.pad(x.numpy()[0, 0], ((0, (-n) % 16), (0, 13)), mode="symmetric")
    np.testing.assert_array_equal(got, want_rows)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_upsample_matches_pillow_inside(scale):
    x = torch.rand(1, 1, 24, 30, generator=torch.Generator().manual_seed(scale))
    ours = BicubicUpsample(1, scale)(x)[0, 0].numpy()
    pil = np.asarray(Image.fromarray(x[0, 0].numpy(), "F").resize((30 * scale, 24 * scale),
                                                                      Image.BICUBIC))
    b = 3 * scale  # Pillow renormalizes its kernel at the border; compare the interior
    np.testing.assert_allclose(ours[b:-b, b:-b], pil[b:-b, b:-b], atol=1e-5)


def test_shifted_window_mask_blocks_wrapped_content():
    torch.manual_seed(0)
    attn = WindowAttention(8, 2, window=4, shift=2).eval()
    x = torch.randn(1, 8, 8, 8)
    y = x.clone()
    y[..., 0, 0] += 10.0  # after the cyclic shift this pixel shares a window with (7, 7)
    with torch.no_grad():
        a, b = attn(x), attn(y)
    assert torch.equal(a[..., 7, 7], b[..., 7, 7])  # masked: no leak across the wrap
    assert not torch.equal(a[..., 1, 1], b[..., 1, 1])  # a true neighbour is affected
    attn.shift = 0
    with torch.no_grad():
        assert torch.equal(attn(x)[..., 7, 7], attn(y)[..., 7, 7])


def _window_attention_by_loops(m: WindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Independent reference: one window at a time, pixels gathered by coordinates, and
    the shifted-window rule stated directly (two pixels of a window may attend only if
    both or neither of them wrapped around the image edge in the cyclic shift)."""
    b, c, h, w = x.shape
    ws, s, nh = m.window, m.shift, m.heads
    y = m.norm(x)
    hp, wp = -(-h // ws) * ws, -(-w // ws) * ws
    y = F.pad(y, (0, wp - w, 0, hp - h))
    y = torch.roll(y, (-s, -s), (2, 3))
    qkv = m.qkv(y)
    d = c // nh
    out = torch.zeros(b, c, hp, wp)
    coords = [(i, j) for i in range(ws) for j in range(ws)]
    bias = m.rel_bias[:, m.rel_index.reshape(-1)].reshape(nh, ws * ws, ws * ws)
    for r0 in range(0, hp, ws):
        for c0 in range(0, wp, ws):
            pix = [(r0 + i, c0 + j) for i, j in coords]
            feats = torch.stack([qkv[:, :, r, cc] for r, cc in pix], dim=-1)  # (b, 3c, N)
            q, k, v = feats.reshape(b, 3, nh, d, -1).unbind(1)
            logits = torch.einsum("bhdn,bhdm->bhnm", q * d ** -0.5, k) + bias
            if s:
                wrapped = [((r + s) >= hp, (cc + s) >= wp) for r, cc in pix]
                allowed = torch.tensor([[wi == wj for wj in wrapped] for wi in wrapped])
                logits = logits.masked_fill(~allowed, float("-inf"))
            o = torch.einsum("bhnm,bhdm->bhdn", logits.softmax(-1), v).reshape(b, c, -1)
            for n, (r, cc) in enumerate(pix):
                out[:, :, r, cc] = o[:, :, n]
    out = torch.roll(m.proj(out), (s, s), (2, 3))
    return x + out[:, :, :h, :w]


@pytest.mark.parametrize("shift", [0, 2])
@pytest.mark.parametrize("size", [(8, 8), (10, 13)])
def test_window_attention_matches_per_window_reference(shift, size):
    torch.manual_seed(1)
    m = WindowAttention(8, 2, window=4, shift=shift).eval()
    torch.nn.init.normal_(m.rel_bias)
    x = torch.randn(2, 8, *size)
    with torch.no_grad():
        torch.testing.assert_close(m(x), _window_attention_by_loops(m, x), atol=1e-5, rtol=1e-5)


def test_modulated_conv_matches_grouped_reference():
    torch.manual_seed(0)
    mod = ModulatedConv(6, 5, style_dim=4)
    torch.nn.init.normal_(mod.style.weight)
    x, style = torch.randn(3, 6, 9, 9), torch.randn(3, 4)
    s = mod.style(style)
    w = mod.weight[None] * s[:, None, :, None, None]  # (B, out, in, k, k)
    w = w * torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4), keepdim=True) + mod.eps)
    ref = F.conv2d(x.reshape(1, -1, 9, 9), w.reshape(-1, 6, 3, 3), padding=1, groups=3)
    torch.testing.assert_close(mod(x, style), ref.reshape(3, 5, 9, 9), atol=1e-5, rtol=1e-4)


def test_high_frequency_gain_is_clamped():
    model = make_model("tiny", 2)
    freq = model.freq
    with torch.no_grad():
        freq.hf_gain.fill_(10.0)
    x = torch.randn(1, model.config.channels, 16, 16)
    low, high = freq(x)
    torch.testing.assert_close(high, (x - low) * model.config.hf_gain_max)


def test_untrained_model_is_exactly_bicubic():
    from hermes_deploy.model.config import preset
    from hermes_deploy.model.network import Hermes

    model = Hermes(preset("tiny", scale=3)).eval()  # library init: last head conv is zero
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(model(x), BicubicUpsample(3, 3)(symmetric_pad(x, 16))[..., :60, :60])
