"""INT8 calibration ranges: measured, saved and loaded.

Ranges (``calibrate_ranges``) come from onnxruntime's calibrators (``minmax``,
``entropy``: KL-divergence threshold, ``percentile``) over a
:class:`~hermes_deploy.calibration.TileReader`; they are saved as JSON with the reader's
description, so a rebuild reuses them without images (``--ranges``). Same images, tiles
and seed give the same ranges (the reader is deterministic and the calibrators are).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import InputError, QuantizationError
from .. import custom_ops
from ..lowering import runnable
from .nodes import DEFAULT_OP_TYPES

METHODS = ("minmax", "entropy", "percentile")
RANGES_FORMAT = "hermes-int8-ranges"
RANGES_VERSION = 1


def _ort_method(method: str):
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile}[method]


def _ort_reader(reader):
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def get_next(self):
            return reader.get_next()

        def rewind(self):
            reader.rewind()

    return _Reader()


def calibrate_ranges(model, reader, method: str = "entropy", op_types: Sequence[str] = DEFAULT_OP_TYPES,
                     percentile: float = 99.999) -> dict[str, tuple[float, float]]:
    """{tensor: (low, high)} for the float inputs/outputs of ``op_types`` nodes, measured
    by onnxruntime's ``method`` calibrator over every batch of ``reader`` (rewound first).
    Ranges are symmetric (``low == -high``), as TensorRT's INT8 needs."""
    import onnx
    from onnxruntime.quantization.calibrate import create_calibrator

    if method not in METHODS:
        raise InputError(f"unknown calibration method '{method}'; choose one of {METHODS}")
    custom_ops.register_schemas()
    attached = onnx.shape_inference.infer_shapes(runnable(model))
    extra: dict = {"symmetric": True}
    if method == "percentile":
        extra["percentile"] = float(percentile)
    if method == "entropy":
        # onnxruntime's default of 128 histogram bins equals its 128 quantized bins, which
        # leaves the KL search one candidate - the max - so "entropy" silently equals minmax
        extra["num_bins"] = 2048
    with tempfile.TemporaryDirectory(prefix="hermes-int8-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(attached, str(path))
        calibrator = create_calibrator(path, list(op_types),
                                       augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=_ort_method(method), extra_options=extra)
        reader.rewind()
        with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print
            calibrator.collect_data(_ort_reader(reader))
            data = calibrator.compute_data()
        del calibrator
    ranges = {}
    for name, value in sorted(data.data.items()):
        lo, hi = (float(np.asarray(v).reshape(-1)[0]) for v in value.range_value)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise QuantizationError(f"tensor '{name}' reached a non-finite value during calibration; "
                                    "check the model in FP32 first (hermes-export verify)")
        m = max(abs(lo), abs(hi))
        ranges[name] = (-m, m)  # what the symmetric quantizer uses either way
    return ranges


def save_ranges(path: str | os.PathLike, ranges: dict[str, tuple[float, float]], method: str,
                calibration: dict, op_types: Sequence[str]) -> Path:
    from ...atomic import write_text

    path = Path(path)
    doc = {"format": RANGES_FORMAT, "version": RANGES_VERSION, "method": method,
           "op_types": list(op_types), "calibration": calibration,
           "ranges": {k: [float(lo), float(hi)] for k, (lo, hi) in sorted(ranges.items())}}
    return write_text(path, json.dumps(doc, indent=1, sort_keys=True), what="the ranges file")


def load_ranges(path: str | os.PathLike) -> tuple[dict[str, tuple[float, float]], dict]:
    """(ranges, document) from :func:`save_ranges` JSON."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != RANGES_FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}, expected {RANGES_FORMAT!r}")
        ranges = {str(k): (float(v[0]), float(v[1])) for k, v in doc["ranges"].items()}
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise InputError(f"cannot read calibration ranges '{path}' ({exc}); pass a file written by "
                         "hermes-export calibrate, or calibrate again with --images") from None
    return ranges, doc
