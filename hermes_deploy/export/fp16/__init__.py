"""Strongly typed FP16 ONNX with FP32 islands.

TensorRT 11 (and strongly typed TensorRT 10 networks) takes every tensor's precision
from the ONNX graph: there is no builder FP16 flag. This pass writes that precision
explicitly: FP16 everywhere except *islands* kept in FP32 where FP16 breaks -
activations near the FP16 limit (65504), and ops whose accuracy depends on the
intermediate width (exponentials, normalising sums, scans, reductions, norms).

Pipeline (all on CPU, numpy + onnx + onnxruntime; no torch)::

    ranges = measure_ranges(model, feeds)         # max |x| of every float tensor
    plan = plan_islands(model, ranges, name_patterns=[r"/ssm/", r"/dft/"])
    fp16 = convert_fp16(model, plan)              # explicit Casts at island borders
    # or: fp16, plan, ranges = to_fp16(model, feeds, name_patterns=[...])
    check = emulate_fp16(fp16)                    # for quality checks on CPU

One module per step (after ModelOpt AutoCast's ``nodeclassifier`` / ``referencerunner``
/ ``precisionconverter`` split); this package is the thin driver that chains them:

* :mod:`.measure` - :func:`measure_ranges`, the reference runner (onnxruntime, FP32);
* :mod:`.plan` - :class:`Fp16Plan`, :func:`plan_islands` and the structural-FP32 node
  classifier (the rules for islands), :func:`fp16_report`;
* :mod:`.convert` - :func:`convert_fp16` (the guarantees of the converted graph);
* :mod:`.emulate` - :func:`emulate_fp16`, FP16 storage emulation for CPU checks;
* :mod:`.graph` - the ONNX graph and type helpers they share;
* :mod:`.feeds` - calibration feeds of HERMES graphs (crops of training photos).

FP16 variant of an exported HERMES graph (:func:`make_fp16`): the pass runs on the
graph with the ``hermes`` custom nodes still in place: a custom node is one node and is
kept FP32 structurally, so the SSM scan and the DFT are FP32 islands by construction
(Casts at their borders), wherever their lowering later lands. Activation ranges are
measured on crops of real photographs from the training split (never the held-out
evaluation photos). For the ``portable`` target the FP32 lowerings are then attached as
functions and inlined.

ModelOpt (checked with nvidia-modelopt 0.47.0): the wheel is pure
Python (2 MB) and its base requirements are small (torch>=2.8 is met by our CPU
torch), but ``modelopt.onnx`` refuses to import without the ``[onnx]`` extra, and that
extra pins ``onnx~=1.21`` (we use 1.23), replaces CPU onnxruntime with
``onnxruntime-gpu~=1.24`` and pulls ``cupy-cuda12x``: CUDA wheels, hundreds of MB, and
a downgrade. Installing only the extra's pure-Python pieces by hand (outside the
environment) made ``modelopt.onnx.autocast.convert_to_mixed_precision`` run on CPU
with our onnx/onnxruntime on a toy graph - so it works, but only as an unsupported
install. This package is therefore our own pass; AutoCast remains the reference for
its rules and defaults (``data_max=512``, ``init_max`` = FP16 max, no op types kept
by default - it kept a Softmax in FP16 in that toy run).

Limitations: only the top-level graph is converted (subgraph-holding nodes stay FP32);
models must hold their weights in memory and serialize below 2 GB (onnxruntime is fed
bytes); custom-op outputs need ``value_info`` types (torch.onnx writes them) or every
node downstream stays FP32 for lack of a type; ``measure_ranges`` keeps every
intermediate of one feed in memory at once unless ``outputs_per_run`` is set; ranges
say nothing about underflow (tiny values flushed to zero in FP16).

Credits: NVIDIA TensorRT Model Optimizer, ``modelopt.onnx.autocast`` (rules and the
idea of reference-range classification); Micikevicius et al., "Mixed Precision
Training" (ICLR 2018) for which ops need FP32 (reductions, exponentials);
onnxconverter-common's ``float16`` converter for the op block list. No code was copied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...errors import PrecisionError
from ...optional import require
from ..lowering import inline_lowerings, with_lowerings
from .convert import convert_fp16
from .emulate import emulate_fp16
from .feeds import CALIBRATION_PHOTOS, calibration_feeds
from .graph import F16, F32, FP16_MAX, node_keys
from .measure import measure_ranges
from .plan import DEFAULT_FP32_OPS, DEFAULT_MAX_ABS, Fp16Plan, fp16_report, plan_islands

onnx = require("onnx", purpose="The FP16 pass")

__all__ = [
    "CALIBRATION_PHOTOS",
    "DEFAULT_FP32_OPS",
    "DEFAULT_MAX_ABS",
    "F16",
    "F32",
    "FP16_MAX",
    "Fp16Plan",
    "PrecisionError",
    "calibration_feeds",
    "convert_fp16",
    "emulate_fp16",
    "fp16_report",
    "make_fp16",
    "measure_ranges",
    "node_keys",
    "plan_islands",
    "to_fp16",
]


def to_fp16(
    model: onnx.ModelProto,
    feeds: Sequence[Mapping[str, np.ndarray]],
    *,
    keep_io_fp32: bool = True,
    **plan_kwargs: Any,
) -> tuple[onnx.ModelProto, Fp16Plan, dict[str, float]]:
    """Measure ranges on ``feeds``, plan islands (``plan_kwargs`` go to
    :func:`plan_islands`), convert. Returns ``(fp16_model, plan, ranges)``."""
    feeds = list(feeds)
    if not feeds:
        raise PrecisionError(
            "expected at least one calibration feed, received none; pass real inputs, or "
            "call plan_islands(model, {}) and convert_fp16 to skip the range rule on purpose"
        )
    ranges = measure_ranges(model, feeds)
    plan = plan_islands(model, ranges, **plan_kwargs)
    return convert_fp16(model, plan, keep_io_fp32=keep_io_fp32), plan, ranges


def make_fp16(main, torch_model, options, islands: bool = True):
    """(fp16 graph, report) from an FP32 graph that still holds the ``hermes`` nodes.

    ``islands=False`` keeps only the structural FP32 nodes (custom ops, shape
    arithmetic): the baseline that shows what the measured islands are for.
    """
    if islands:
        feeds = calibration_feeds(torch_model, options.tile, options.batch)
        takes = {i.name for i in main.graph.input}  # a single graph has no context input
        feeds = [{k: v for k, v in feed.items() if k in takes} for feed in feeds]
        plan = plan_islands(main, measure_ranges(with_lowerings(main), feeds))
    else:
        plan = plan_islands(main, {}, op_types_fp32=(), max_abs=float("inf"))
    model16 = convert_fp16(main, plan, keep_io_fp32=True)
    report = fp16_report(plan)
    if options.target == "portable":
        model16 = inline_lowerings(model16)
    return model16, report
