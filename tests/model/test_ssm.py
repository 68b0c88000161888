"""The SSM block's scan orders and the block against a sequential recurrence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hermes_deploy.model.ssm import SSMBlock, _from_sequences, _scan_index, _to_sequences
from hermes_deploy.ops.scan import selective_scan_numpy


def _orders_by_definition(h: int, w: int) -> list[np.ndarray]:
    """Row-major position of each sequence element: rows, columns, both reversed."""
    pos = np.arange(h * w).reshape(h, w)
    rows, cols = pos.reshape(-1), pos.T.reshape(-1)
    return [rows, cols, rows[::-1], cols[::-1]]


@pytest.mark.parametrize("h,w", [(3, 5), (4, 4), (1, 7)])
def test_scan_orders_and_their_inverse(h, w):
    t = torch.randn(2, 6, h, w)
    indices = [_scan_index(h, w, d, t.device) for d in range(4)]
    flat = t.permute(0, 2, 3, 1).reshape(2, h * w, 6).numpy()  # row-major (b, L, c)
    seqs = _to_sequences(t, indices)
    for d, (seq, want) in enumerate(zip(seqs, _orders_by_definition(h, w))):
        np.testing.assert_array_equal(seq.numpy(), flat[:, want], err_msg=f"direction {d}")
    # mapped back and summed: every direction returns the map itself
    torch.testing.assert_close(_from_sequences(seqs, indices, h, w), 4 * t)


@pytest.mark.parametrize("directions", [2, 4])
def test_ssm_block_matches_a_sequential_scan_per_direction(directions):
    """The whole block against float64 sequential recurrences run on sequences
    built by the definition above (an independent path for the orders and the op)."""
    torch.manual_seed(0)
    c, h, w = 8, 5, 6
    block = SSMBlock(c, state=4, heads=2, directions=directions, chunk=8).double().eval()
    x = torch.randn(1, c, h, w, dtype=torch.float64)
    with torch.no_grad():
        got = block(x)
        xi, z = block.inp(block.norm(x)).chunk(2, dim=1)
        xi = torch.nn.functional.silu(block.dw(xi))
        proj = block.bcdt(xi)
        n, nh, p = 4, 2, c // 2
        per = 2 * n + nh
        A = (-torch.exp(block.A_log)).numpy()
        y = np.zeros((1, h * w, c))
        xi_flat = xi.permute(0, 2, 3, 1).reshape(1, h * w, c).numpy()
        pr_flat = proj.permute(0, 2, 3, 1).reshape(1, h * w, -1).numpy()
        for d, order in enumerate(_orders_by_definition(h, w)[:directions]):
            xs = xi_flat[:, order].reshape(1, h * w, nh, p)
            pd = pr_flat[:, order, d * per:(d + 1) * per]
            B, C, dt = pd[..., :n], pd[..., n:2 * n], pd[..., 2 * n:]
            dt = torch.nn.functional.softplus(
                torch.from_numpy(dt) + block.dt_bias[d * nh:(d + 1) * nh]).numpy()
            yd = selective_scan_numpy(xs, dt, A[d * nh:(d + 1) * nh], B[:, :, None], C[:, :, None])
            y[:, order] += yd.reshape(1, h * w, c)
        y = torch.from_numpy(y).reshape(1, h, w, c).permute(0, 3, 1, 2)
        want = x + block.out((y + xi * block.D[:, None, None]) * torch.nn.functional.silu(z))
    torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
