"""Custom operators of HERMES, one unit per operator.

Each module holds everything about one operator side by side: the ``torch.library``
op (with its fake/meta kernel and autograd), the pure-PyTorch reference it runs, and a
float64 numpy reference used by tests. The ONNX side (schema, translation, lowering)
is added by ``hermes_deploy.export`` against the same contract.

Operators:

* ``hermes::selective_scan`` - Mamba-2 / SSD selective scan with a scalar decay per head
  (:mod:`.scan`).
* ``hermes::spectral_lowpass`` - rFFT2 -> learnable radial low-pass gate -> irFFT2
  (:mod:`.spectral`).

Model code calls :func:`selective_scan` and :func:`spectral_lowpass`; they route to the
custom op (one node for the exporter; the default), or inside :func:`reference_ops` to
the plain PyTorch reference (FLOP counting on the meta device), or inside
:func:`lowered_ops` to the export lowering built from standard ops only (the
``portable`` ONNX target).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from . import scan as _scan
from . import spectral as _spectral

_mode = "custom"


@contextlib.contextmanager
def _use(mode: str) -> Iterator[None]:
    global _mode
    previous, _mode = _mode, mode
    try:
        yield
    finally:
        _mode = previous


def reference_ops():
    """Within this block the model calls the plain PyTorch references, not the ops."""
    return _use("reference")


def lowered_ops():
    """Within this block the model calls the standard-op lowerings (portable export)."""
    return _use("lowered")


def selective_scan(x, dt, A, B, C, chunk: int = 64):
    if _mode == "custom":
        return _scan.selective_scan_op(x, dt, A, B, C, chunk)
    if _mode == "lowered":
        return _scan.selective_scan_lowered(x, dt, A, B, C, chunk)
    return _scan.selective_scan_reference(x, dt, A, B, C, chunk)


def spectral_lowpass(x, cutoff, sharpness):
    if _mode == "custom":
        return _spectral.spectral_lowpass_op(x, cutoff, sharpness)
    if _mode == "lowered":
        return _spectral.spectral_lowpass_lowered(x, cutoff, sharpness)
    return _spectral.spectral_lowpass_reference(x, cutoff, sharpness)


__all__ = ["lowered_ops", "reference_ops", "selective_scan", "spectral_lowpass"]
