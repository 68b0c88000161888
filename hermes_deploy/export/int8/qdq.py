"""Q/DQ insertion for TensorRT (:func:`quantize_qdq`) and its checks (:func:`check_qdq`).

Q/DQ pairs are written with onnxruntime's static QDQ quantizer, configured for TensorRT:

* **Symmetric INT8** activations and weights (zero point 0), weights **per output
  channel**; activations per tensor.
* **Biases stay float**: onnxruntime quantizes a Conv bias to INT32 through a
  ``DequantizeLinear`` by default (``QuantizeBias``), which TensorRT's parser rejects;
  it is switched off, so a Conv reads ``DQ(x)``, ``DQ(W)`` and its float bias.
* **Inputs only, and only for the quantized ops**: Q/DQ sit on the inputs of the
  quantized ops (the layout TensorRT fuses into INT8 kernels), not on their outputs, so
  each activation is rounded once, where it is read. onnxruntime hands the dequantized
  tensor to *every* reader of a quantized activation (a Mul or a Reshape into the scan
  beside the Conv); those readers are rewired to the float tensor.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ...errors import QuantizationError
from .. import custom_ops
from ..lowering import runnable
from .nodes import DEFAULT_OP_TYPES, QUANTIZABLE_OP_TYPES


def quantize_qdq(model, ranges: dict[str, tuple[float, float]], nodes: Iterable[str],
                 op_types: Sequence[str] = DEFAULT_OP_TYPES):
    """A Q/DQ copy of ``model`` where exactly ``nodes`` (top-level node names) read INT8
    inputs; see the module doc for the TensorRT-oriented settings. Keeps any attached
    ``hermes`` lowerings untouched."""
    import onnx
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorsData
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer

    nodes = sorted(set(nodes))
    custom_ops.register_schemas()
    work = onnx.shape_inference.infer_shapes(runnable(model))
    if not nodes:
        return work
    names = {n.name for n in work.graph.node}
    missing = [n for n in nodes if n not in names]
    if missing:
        raise QuantizationError(f"nodes {missing[:3]} are not in the graph; the ranges or the node "
                                "list belong to another export")
    needed = {i for n in work.graph.node if n.name in nodes for i in n.input[:1]}
    lacking = sorted(needed - set(ranges))
    if lacking:
        raise QuantizationError(f"no calibration range for {lacking[:3]}; the ranges file belongs to "
                                "another export - calibrate again with --images")
    data = TensorsData(CalibrationMethod.MinMax,
                       {k: (np.array(lo, np.float32), np.array(hi, np.float32)) for k, (lo, hi) in ranges.items()})
    extra = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
             "OpTypesToExcludeOutputQuantization": list(QUANTIZABLE_OP_TYPES)}
    quantizer = QDQQuantizer(work, True, False, QuantType.QInt8, QuantType.QInt8, data, nodes, [],
                             list(op_types), extra)
    quantizer.quantize_model()
    out = quantizer.model.model
    _float_for_other_readers(out, set(nodes))
    quantizer.model.topological_sort()
    out = quantizer.model.model
    check_qdq(out)
    return out


def _float_for_other_readers(model, selected: set[str]) -> None:
    """onnxruntime's QDQ pass points *every* reader of a quantized activation at its
    ``DequantizeLinear`` (``DedicatedQDQPair`` only helps with two or more quantized
    readers), so a Mul, Reshape or scan input next to a Conv would silently read INT8
    values. Rewire every reader that was not selected back to the float tensor."""
    q_input = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    dq_float = {n.output[0]: q_input[n.input[0]] for n in model.graph.node
                if n.op_type == "DequantizeLinear" and n.input[0] in q_input}
    for node in model.graph.node:
        if node.name in selected or node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for i, name in enumerate(node.input):
            if name in dq_float:
                node.input[i] = dq_float[name]
    for out in model.graph.output:
        if out.name in dq_float:
            raise QuantizationError(f"graph output '{out.name}' was quantized; keep its producer float")


def check_qdq(model) -> None:
    """TensorRT's requirements on explicit quantization: INT8, zero points 0, no
    quantized bias (INT32 DQ), nothing quantized inside the ``hermes`` lowerings."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        zp = inits.get(node.input[2]) if len(node.input) > 2 else None
        if zp is not None:
            arr = numpy_helper.to_array(zp)
            if arr.dtype != np.int8 or np.any(arr != 0):
                raise QuantizationError(f"{node.name}: zero point must be INT8 0 for TensorRT, got "
                                        f"{arr.dtype} {arr.reshape(-1)[:3]}")
        src = inits.get(node.input[0])
        if node.op_type == "DequantizeLinear" and src is not None and src.data_type != 3:  # INT8
            raise QuantizationError(f"{node.name}: dequantizes a non-INT8 initializer "
                                    f"'{src.name}' (a quantized bias?); TensorRT rejects it")
    for fn in model.functions:
        if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in fn.node):
            raise QuantizationError(f"Q/DQ landed inside the lowering of hermes::{fn.name}")
