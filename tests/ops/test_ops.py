"""Custom ops against independent float64 numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hermes_deploy import ops
from hermes_deploy.ops.scan import (selective_scan_lowered, selective_scan_numpy, selective_scan_op,
                                    selective_scan_reference)
from hermes_deploy.ops.spectral import spectral_lowpass_numpy, spectral_lowpass_op


def _scan_inputs(b, l, h, p, g, n, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, l, h, p, generator=gen, dtype=dtype)
    dt = torch.rand(b, l, h, generator=gen, dtype=dtype) * 0.6
    A = -(torch.rand(h, generator=gen, dtype=dtype) * 2 + 0.05)
    B = torch.randn(b, l, g, n, generator=gen, dtype=dtype)
    C = torch.randn(b, l, g, n, generator=gen, dtype=dtype)
    return x, dt, A, B, C


@pytest.mark.parametrize("shape,chunk", [((2, 1, 2, 3, 1, 4), 8), ((1, 77, 4, 2, 2, 3), 16),
                                         ((3, 130, 2, 5, 1, 6), 64), ((1, 64, 6, 2, 3, 2), 64)])
def test_scan_matches_sequential_recurrence(shape, chunk):
    inputs = _scan_inputs(*shape)
    got = selective_scan_op(*inputs, chunk).numpy()
    want = selective_scan_numpy(*(t.numpy() for t in inputs))
    np.testing.assert_allclose(got, want, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("shape,chunk", [((2, 1, 2, 3, 1, 4), 8), ((1, 77, 4, 2, 2, 3), 16),
                                         ((3, 130, 2, 5, 1, 6), 64), ((1, 3000, 2, 2, 1, 3), 64),
                                         ((2, 96, 6, 3, 3, 4), 64)])
def test_scan_lowering_matches_sequential_recurrence(shape, chunk):
    # (1, 3000, ...) has 188 chunks of 16: six blocks of the two-level carry, the last
    # padded; (2, 96, ...) is a whole number of chunks (no padding, the model's case) with
    # three groups of two heads
    inputs = _scan_inputs(*shape)
    got = selective_scan_lowered(*inputs, chunk).numpy()
    want = selective_scan_numpy(*(t.numpy() for t in inputs))
    np.testing.assert_allclose(got, want, atol=1e-10, rtol=1e-9)
    with ops.lowered_ops():
        assert torch.equal(ops.selective_scan(*inputs, chunk), selective_scan_lowered(*inputs, chunk))


def test_scan_float32_close_and_chunk_invariant():
    inputs = _scan_inputs(2, 200, 4, 4, 2, 8, dtype=torch.float32)
    want = selective_scan_numpy(*(t.numpy() for t in inputs))
    for chunk in (16, 64, 256):
        np.testing.assert_allclose(selective_scan_op(*inputs, chunk).numpy(), want, atol=1e-4)


def test_scan_gradients():
    inputs = [t.requires_grad_() for t in _scan_inputs(1, 20, 2, 2, 1, 3)]
    assert torch.autograd.gradcheck(lambda *a: selective_scan_op(*a, 8), inputs)


@pytest.mark.parametrize("h,w", [(1, 1), (7, 10), (16, 9), (33, 32)])
def test_spectral_lowpass_matches_direct_dft(h, w):
    gen = torch.Generator().manual_seed(h * 100 + w)
    x = torch.randn(2, 3, h, w, generator=gen, dtype=torch.float64)
    cutoff = torch.rand(3, generator=gen, dtype=torch.float64)
    sharp = torch.rand(3, generator=gen, dtype=torch.float64) * 20
    got = spectral_lowpass_op(x, cutoff, sharp).numpy()
    np.testing.assert_allclose(got, spectral_lowpass_numpy(x, cutoff, sharp), atol=1e-10)


def test_spectral_lowpass_is_a_lowpass():
    # A constant passes with the DC gain, the Nyquist checkerboard is suppressed.
    cutoff, sharp = torch.tensor([0.3]), torch.tensor([40.0])
    const = torch.full((1, 1, 16, 16), 2.0)
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 2.0 - 1.0
    dc_gain = torch.sigmoid(sharp * cutoff)
    assert torch.allclose(spectral_lowpass_op(const, cutoff, sharp), const * dc_gain, atol=1e-5)
    assert spectral_lowpass_op(checker[None, None].float(), cutoff, sharp).abs().max() < 1e-6


def test_spectral_gradients():
    gen = torch.Generator().manual_seed(3)
    args = [torch.randn(1, 2, 5, 6, generator=gen, dtype=torch.float64).requires_grad_(),
            torch.rand(2, generator=gen, dtype=torch.float64).requires_grad_(),
            (torch.rand(2, generator=gen, dtype=torch.float64) * 5).requires_grad_()]
    assert torch.autograd.gradcheck(spectral_lowpass_op, args)


def test_reference_switch_gives_same_numbers():
    inputs = _scan_inputs(1, 50, 2, 2, 1, 3, dtype=torch.float32)
    a = ops.selective_scan(*inputs, 16)
    with ops.reference_ops():
        b = ops.selective_scan(*inputs, 16)
    assert torch.equal(a, b)
    assert torch.equal(selective_scan_reference(*inputs, 16), b)


@pytest.mark.parametrize("h,w", [(1, 1), (5, 8), (31, 17)])
def test_spectral_lowering_matches_direct_dft(h, w):
    from hermes_deploy.ops.spectral import spectral_lowpass_lowered

    gen = torch.Generator().manual_seed(h + w)
    x = torch.randn(2, 3, h, w, generator=gen, dtype=torch.float64)
    cutoff = torch.rand(3, generator=gen, dtype=torch.float64)
    sharp = torch.rand(3, generator=gen, dtype=torch.float64) * 20
    np.testing.assert_allclose(spectral_lowpass_lowered(x, cutoff, sharp).numpy(),
                               spectral_lowpass_numpy(x, cutoff, sharp), atol=1e-10)
