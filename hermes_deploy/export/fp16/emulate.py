"""FP16 storage emulation on CPU: :func:`emulate_fp16`.

Checking FP16 quality on CPU needs :func:`emulate_fp16`: onnxruntime's CPU provider
lacks float16 kernels for most ops, runs them in float32 and drops the float16 round
trips between such nodes, so an FP16 model run directly on CPU does not overflow
where TensorRT does (measured with onnxruntime 1.32: a x1000 / /1000 detour through
65504 comes back intact). The emulation keeps explicit round trips, which onnxruntime
preserves.
"""

from __future__ import annotations

import copy

import numpy as np

from ...optional import require
from .graph import F16, F32, cast, is_default_domain, tensor_types, to_array, unique_namer

onnx = require("onnx", purpose="The FP16 pass")
from onnx import numpy_helper  # noqa: E402 - onnx is present from here on


def emulate_fp16(model16: onnx.ModelProto) -> onnx.ModelProto:
    """A float32 model that stores every float16 tensor of ``model16`` rounded to FP16.

    Why: onnxruntime's CPU provider has no float16 kernels for most ops; it runs them
    in float32 and drops the float16 round trips between such nodes, so an FP16 model
    run on CPU hides intermediate overflow (a x1000 / /1000 detour comes back intact
    where TensorRT gives inf). Here every float16 value becomes float32 followed by an
    explicit ``Cast`` to float16 and back, which onnxruntime keeps: storage rounding
    and overflow happen where a strongly typed engine has them, while arithmetic
    inside an op runs in float32 (as FP16 tensor-core GEMMs accumulate). Float16
    initializers and constants become float32 holding the same (FP16) numbers; float16
    graph inputs and outputs become float32. Use it for CPU quality checks of FP16
    models; deploy ``model16`` itself.
    """
    types, infos = tensor_types(model16)
    out = copy.deepcopy(model16)
    g = out.graph
    unique = unique_namer(out)

    def widen(t: onnx.TensorProto) -> None:
        if t.data_type == F16:
            t.CopyFrom(numpy_helper.from_array(to_array(t).astype(np.float32), t.name))

    for t in g.initializer:
        widen(t)

    nodes: list[onnx.NodeProto] = []
    renamed: dict[str, str] = {}

    def round_trip(src: str, dst: str) -> list[onnx.NodeProto]:
        mid = unique(f"{dst}_as_fp16")
        return [
            cast(src, mid, F16, unique(f"{dst}_round")),
            cast(mid, dst, F32, unique(f"{dst}_widen")),
        ]

    for v in g.input:
        if types.get(v.name) == F16:
            v.type.tensor_type.elem_type = F32
            renamed[v.name] = unique(f"{v.name}_rounded")
            nodes.extend(round_trip(v.name, renamed[v.name]))

    for node in g.node:
        for i, name in enumerate(node.input):
            node.input[i] = renamed.get(name, name)
        if not is_default_domain(node):
            nodes.append(node)
            continue
        for a in node.attribute:
            if a.name in ("to", "dtype") and a.type == onnx.AttributeProto.INT and a.i == F16:
                a.i = F32
            elif a.type == onnx.AttributeProto.TENSOR:
                widen(a.t)
        after: list[onnx.NodeProto] = []
        if node.op_type != "Constant":  # constants already hold FP16 numbers
            for j, name in enumerate(node.output):
                if name and types.get(name) == F16:
                    raw = unique(f"{name}_fp32")
                    node.output[j] = raw
                    after.extend(round_trip(raw, name))
        nodes.append(node)
        nodes.extend(after)

    del g.node[:]
    g.node.extend(nodes)
    for v in g.output:
        if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type == F16:
            v.type.tensor_type.elem_type = F32
    del g.value_info[:]
    for node in g.node:
        if not is_default_domain(node):
            keep_vi = [o for o in node.output if o in infos and types.get(o) != F16]
            g.value_info.extend(copy.deepcopy(infos[o]) for o in keep_vi)
    return onnx.shape_inference.infer_shapes(out, strict_mode=False)
