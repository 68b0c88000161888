"""Reference runner of the FP16 pass: :func:`measure_ranges`.

Runs the FP32 model with onnxruntime (graph optimisations off) on calibration feeds and
records the largest magnitude of every float tensor of the top-level graph - the
reference I/O ranges that :func:`~.plan.plan_islands` compares with ``max_abs``. Every
intermediate of one feed is held in memory at once unless ``outputs_per_run`` is set;
ranges say nothing about underflow (tiny values flushed to zero in FP16).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...errors import PrecisionError
from ...optional import require

onnx = require("onnx", purpose="The FP16 pass")


def measure_ranges(
    model: onnx.ModelProto,
    feeds: Sequence[Mapping[str, np.ndarray]],
    *,
    providers: Sequence[str] = ("CPUExecutionProvider",),
    sess_options: Any = None,
    outputs_per_run: int | None = None,
) -> dict[str, float]:
    """Max |value| of every float tensor of the top-level graph over all ``feeds``.

    Covers every node output and every float graph input (initializers are constants
    and are checked separately by :func:`plan_islands`). Non-finite values give
    ``inf``. The model is run by onnxruntime with graph optimisations off, on a copy
    whose outputs are all intermediate tensors (types left to the runtime, so dynamic
    shapes work). ``outputs_per_run`` bounds how many intermediates are held at once
    (more runs, less memory). ``sess_options`` lets callers register custom-op
    libraries.
    """
    ort = require("onnxruntime", purpose="Range measurement")

    feeds = list(feeds)
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    needed = [v.name for v in graph.input if v.name not in inits]
    for k, feed in enumerate(feeds):
        missing = [n for n in needed if n not in feed]
        extra = [n for n in feed if n not in {v.name for v in graph.input}]
        if missing or extra:
            raise PrecisionError(
                f"feed {k}: expected inputs {needed}, received {sorted(feed)}; pass one "
                "dict per calibration sample keyed by the model's input names"
            )

    present = {v.name for v in graph.output}
    wanted = [o for n in graph.node for o in n.output if o and o not in present]
    chunks: list[list[str]] = [wanted]
    if outputs_per_run and outputs_per_run > 0:
        step = outputs_per_run
        chunks = [wanted[i : i + step] for i in range(0, len(wanted), step)] or [[]]

    if sess_options is None:
        sess_options = ort.SessionOptions()
        sess_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess_options.log_severity_level = 3  # the CLI output is ours

    ranges: dict[str, float] = {}

    def record(name: str, arr: Any) -> None:
        if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.floating):
            return
        a = np.abs(arr if arr.dtype == np.float64 else arr.astype(np.float32, copy=False))
        v = float("inf") if not np.all(np.isfinite(a)) else float(a.max(initial=0.0))
        ranges[name] = max(ranges.get(name, 0.0), v)

    for feed in feeds:
        for name, arr in feed.items():
            record(name, np.asarray(arr))

    for i, chunk in enumerate(chunks):
        probe = copy.deepcopy(model)
        if i > 0:  # graph outputs were measured by the first run
            del probe.graph.output[:]
        probe.graph.output.extend(onnx.ValueInfoProto(name=n) for n in chunk)
        try:
            sess = ort.InferenceSession(
                probe.SerializeToString(), sess_options, providers=list(providers)
            )
        except Exception as e:
            raise PrecisionError(
                f"expected onnxruntime to load the model for range measurement, received: {e}; "
                "check the model with onnx.checker, or pass sess_options registering custom ops"
            ) from None
        names = [o.name for o in sess.get_outputs()]
        for feed in feeds:
            for name, arr in zip(names, sess.run(names, dict(feed))):
                record(name, arr)
    return ranges
