"""Triton kernels of the plugins against the torch reference ops, under the interpreter.

CPU tensors run the kernels with ``TRITON_INTERPRET=1`` (numpy semantics), so these
tests check the kernels' arithmetic (indexing, masking, bases, recurrence) everywhere;
the compiled kernels are checked on a GPU by ``scripts/gpu_check.py``. Each case is also
held against the float64 numpy references (sequential recurrence, direct complex DFT),
which share no code with either.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from hermes_deploy.engines.trt.plugins import kernels
from hermes_deploy.errors import InputError
from hermes_deploy.ops.scan import selective_scan_numpy, selective_scan_reference
from hermes_deploy.ops.spectral import spectral_lowpass_numpy, spectral_lowpass_reference

pytest.importorskip("triton", reason="triton is not installed (pip install 'hermes-deploy[plugins]')")

TOL = 1e-4


def _scan_inputs(seed, b, l, h, p, g, n, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, l, h, p, generator=gen)
    dt = torch.nn.functional.softplus(torch.randn(b, l, h, generator=gen)) * 0.5
    A = -torch.rand(h, generator=gen) * 2 - 0.05
    B = torch.randn(b, l, g, n, generator=gen)
    C = torch.randn(b, l, g, n, generator=gen)
    return [t.to(dtype) for t in (x, dt, A, B, C)]


@pytest.mark.parametrize("b, l, h, p, g, n", [
    (1, 1, 1, 1, 1, 1),       # degenerate
    (2, 37, 4, 8, 2, 16),     # groups shared by two heads, length not a chunk multiple
    (1, 130, 2, 16, 1, 8),    # longer than two SSD chunks of 64
    (3, 9, 6, 3, 3, 5),       # nothing a power of two
])
def test_selective_scan_kernel_matches_reference(b, l, h, p, g, n):
    args = _scan_inputs(b * 100 + l, b, l, h, p, g, n)
    y = kernels.selective_scan_triton(*args)
    reference = selective_scan_reference(*args, chunk=64)
    assert y.shape == reference.shape and y.dtype == torch.float32
    assert (y - reference).abs().max().item() < TOL
    exact = selective_scan_numpy(*[a.numpy() for a in args])
    assert np.abs(y.numpy() - exact).max() < TOL


@pytest.mark.parametrize("b, c, h, w", [
    (1, 1, 1, 1),
    (2, 3, 16, 16),
    (1, 2, 13, 21),     # odd sizes (no Nyquist bin)
    (2, 4, 40, 24),     # blocks wider than 32, even sizes
    (1, 1, 70, 9),
])
def test_spectral_lowpass_kernel_matches_reference(b, c, h, w):
    gen = torch.Generator().manual_seed(h * w + c)
    x = torch.randn(b, c, h, w, generator=gen)
    cutoff = torch.rand(c, generator=gen)
    sharpness = torch.rand(c, generator=gen) * 12 + 0.5
    y = kernels.spectral_lowpass_triton(x, cutoff, sharpness)
    reference = spectral_lowpass_reference(x, cutoff, sharpness)
    assert (y - reference).abs().max().item() < TOL
    exact = spectral_lowpass_numpy(x.numpy(), cutoff.numpy(), sharpness.numpy())
    assert np.abs(y.numpy() - exact).max() < TOL


def test_half_io_is_computed_in_float32():
    args = _scan_inputs(7, 1, 20, 2, 4, 1, 4, dtype=torch.float16)
    y = kernels.selective_scan_triton(*args)
    assert y.dtype == torch.float16
    exact = selective_scan_numpy(*[a.float().numpy() for a in args])
    # inputs are exact in fp16; only the output rounding (2^-11 relative) remains
    assert np.abs(y.float().numpy() - exact).max() <= 2e-3 * max(1.0, np.abs(exact).max())


def test_interpreter_flag_is_scoped_to_the_call():
    before = os.environ.get("TRITON_INTERPRET")
    kernels.spectral_lowpass_triton(torch.ones(1, 1, 4, 4), torch.ones(1), torch.ones(1))
    assert os.environ.get("TRITON_INTERPRET") == before


def test_bad_shapes_are_refused():
    x, dt, A, B, C = _scan_inputs(0, 1, 4, 4, 2, 3, 2)
    with pytest.raises(InputError, match="selective scan shapes"):
        kernels.selective_scan_triton(x, dt, A, B, C)  # 4 heads, 3 groups
    with pytest.raises(InputError, match="up to 256x256"):
        kernels.spectral_lowpass_triton(torch.zeros(1, 1, 8, 300), torch.zeros(1), torch.zeros(1))
