"""FP16 conversion of a planned model: explicit Casts at the borders of FP32 islands.

:func:`convert_fp16` writes the precision of an :class:`~.plan.Fp16Plan` into the graph:
tensor types, float16 copies of constants, ``Cast`` nodes at island borders, and the
type-deciding attributes of the converted nodes.

Guarantees of :func:`convert_fp16`:

* Every float32 tensor produced by a converted node becomes float16, every float32
  initializer or ``Constant`` read by a converted node gets a float16 copy (the float32
  original is dropped when nothing else reads it), and every edge that crosses an
  island border gets exactly one ``Cast`` per (tensor, type), shared by its readers.
* Types follow the op schemas of the model's opset: an input whose schema type does
  not admit float16 (``Resize`` scales, ``tensor(float)`` params) stays float32; a node
  whose type variable excludes float16 (``Range``, opset-13 ``QuantizeLinear``) stays
  FP32 as a whole. ``to`` / ``dtype`` attributes and ``ConstantOfShape`` values follow
  the node's new output type (ops whose output type follows the input when ``dtype``
  is absent - ``EyeLike``, ``RandomNormalLike`` - get that input converted), so the
  result passes ``onnx.checker.check_model(full_check=True)`` and onnxruntime's type
  checks.
* ``Constant`` nodes and initializers take the precision of each reader (a copy per
  type); plans do not list them.
* Float32 graph inputs and outputs stay float32 by default (``keep_io_fp32``).
* Some nodes always stay FP32, whatever the plan says (``structural`` reasons, see
  :func:`~.plan.structural_fp32`): custom-domain nodes, nodes holding subgraphs, nodes
  with tensors of unknown type, nodes reading a constant beyond the FP16 range, and
  shape arithmetic.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np

from ...errors import PrecisionError
from ...optional import require
from .graph import (
    F16,
    F32,
    cast,
    const_arrays,
    is_default_domain,
    node_keys,
    opset,
    outer_refs,
    param_modes,
    schema,
    subgraphs,
    tensor_types,
    to_array,
    unique_namer,
)
from .plan import Fp16Plan, structural_fp32

onnx = require("onnx", purpose="The FP16 pass")
from onnx import helper, numpy_helper  # noqa: E402 - onnx is present from here on


def convert_fp16(
    model: onnx.ModelProto, plan: Fp16Plan, keep_io_fp32: bool = True
) -> onnx.ModelProto:
    """A new model: FP16 except the plan's nodes and the structural FP32 nodes.

    ``plan`` must come from the same (unmodified) model: nodes are matched by
    :func:`node_keys`. The input model is not modified. See the module docstring for
    the guarantees.
    """
    types, infos = tensor_types(model)
    opset_version = opset(model)
    consts = const_arrays(model.graph)
    keep = set(plan.keep_fp32_nodes) | set(structural_fp32(model, types, consts))

    out = copy.deepcopy(model)
    g = out.graph
    keys = node_keys(g)
    unknown = sorted(set(plan.keep_fp32_nodes) - set(keys))
    if unknown:
        raise PrecisionError(
            f"expected the plan's nodes to exist in the model, received unknown keys "
            f"{unknown[:5]}; plan and convert the same unmodified model (keys: node_keys())"
        )
    unique = unique_namer(out)
    inits = {t.name: t for t in g.initializer}

    sub_refs: set[str] = set()
    for n in g.node:
        for sg in subgraphs(n):
            sub_refs |= outer_refs(sg)

    # Names whose dtype is fixed by the outside world: graph outputs, subgraph reads.
    pinned: dict[str, int] = {}
    for v in g.output:
        if types.get(v.name) == F32:
            pinned[v.name] = F32 if keep_io_fp32 else F16
    for n in sub_refs:
        if types.get(n) == F32:
            pinned[n] = F32

    avail: dict[str, dict[int, str]] = {}  # float32 tensor -> {dtype: name holding it}
    for v in g.input:
        if types.get(v.name) == F32:
            if keep_io_fp32 or v.name in sub_refs:
                avail[v.name] = {F32: v.name}
            else:
                avail[v.name] = {F16: v.name}
                v.type.tensor_type.elem_type = F16
    for name in consts:
        avail[name] = {F32: name}

    new_nodes: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    twins: dict[str, str] = {}  # float32 constant -> its float16 copy

    def version(name: str, want: int, free: bool = False) -> str:
        if not name or types.get(name) != F32 or name not in avail:
            return name
        have = avail[name]
        if want in have:
            return have[want]
        if free:
            return next(iter(have.values()))
        if want == F16 and name in consts and have.get(F32) == name:
            twin = unique(f"{name}_fp16")
            arr = consts[name].astype(np.float16)
            if name in inits:
                new_inits.append(numpy_helper.from_array(arr, twin))
            else:
                new_nodes.append(
                    helper.make_node("Constant", [], [twin], name=unique(f"{twin}_const"),
                                     value=numpy_helper.from_array(arr, twin))
                )
            twins[name] = twin
        else:
            src = next(iter(have.values()))
            twin = unique(f"{name}_{'fp16' if want == F16 else 'fp32'}")
            new_nodes.append(cast(src, twin, want, unique(f"{twin}_cast")))
        have[want] = twin
        return twin

    for key, node in zip(keys, list(g.node)):
        if node.op_type == "Constant" and is_default_domain(node) and node.output[0] in consts:
            new_nodes.append(node)  # float16 copies are made on demand by readers
            continue
        op_schema = schema(node, opset_version)
        fp16 = key not in keep and op_schema is not None
        if op_schema is not None:
            m_in, m_out = param_modes(node, op_schema, types)
        else:
            m_in, m_out = ["fp32"] * len(node.input), ["fp32"] * len(node.output)

        for i, name in enumerate(node.input):
            mode = m_in[i]
            if mode == "free":
                node.input[i] = version(name, F16 if fp16 else F32, free=True)
            else:
                node.input[i] = version(name, F16 if fp16 and mode == "fp16" else F32)

        converted = False
        after: list[onnx.NodeProto] = []
        for j, name in enumerate(node.output):
            if not name or types.get(name) != F32:
                continue
            dt = F16 if fp16 and m_out[j] in ("fp16", "free") else F32
            converted |= dt == F16
            want = pinned.get(name, dt)
            if want == dt:
                avail[name] = {dt: name}
            else:  # produce under a new name, Cast back to the pinned name
                inner = unique(f"{name}_{'fp16' if dt == F16 else 'fp32'}")
                node.output[j] = inner
                after.append(cast(inner, name, want, unique(f"{name}_cast")))
                avail[name] = {dt: inner, want: name}
        if op_schema is not None:
            _fix_type_attributes(node, F16 if converted else F32, types)
        new_nodes.append(node)
        new_nodes.extend(after)

    del g.node[:]
    g.node.extend(new_nodes)
    g.initializer.extend(new_inits)
    _drop_replaced_constants(g, twins, sub_refs)

    final: dict[str, int] = {}
    for name, have in avail.items():
        for dt, holder in have.items():
            if holder == name:
                final[name] = dt
    for v in g.output:
        if v.name in final and v.type.HasField("tensor_type"):
            v.type.tensor_type.elem_type = final[v.name]

    # Inferred types are stale; keep only what inference cannot recover (custom ops,
    # whose nodes are never converted, so their types are unchanged).
    del g.value_info[:]
    for node in g.node:
        if not is_default_domain(node):
            keep_vi = [o for o in node.output if o in infos and o not in pinned]
            g.value_info.extend(copy.deepcopy(infos[o]) for o in keep_vi)
    try:
        out = onnx.shape_inference.infer_shapes(
            out, check_type=True, strict_mode=False, data_prop=True
        )
    except Exception as e:
        raise PrecisionError(
            f"expected the FP16 model to pass ONNX type inference, received: {e}; "
            "report this with the model, or keep the offending node in FP32 via name_patterns"
        ) from None
    return out


def _fix_type_attributes(
    node: onnx.NodeProto, out_dtype: int, types: Mapping[str, int]
) -> None:
    """Make attributes that decide the output type agree with ``out_dtype``."""
    if not any(types.get(o) == F32 for o in node.output if o):
        return
    names = {a.name: a for a in node.attribute}
    for attr in ("to", "dtype"):
        a = names.get(attr)
        if a is not None and a.type == onnx.AttributeProto.INT and a.i == F32:
            a.i = out_dtype
    if node.op_type == "ConstantOfShape":
        a = names.get("value")
        np_dt = np.float16 if out_dtype == F16 else np.float32
        if a is None:
            zero = numpy_helper.from_array(np.zeros(1, np_dt))
            node.attribute.append(helper.make_attribute("value", zero))
        elif a.t.data_type in (F32, F16):
            a.t.CopyFrom(numpy_helper.from_array(to_array(a.t).astype(np_dt), a.t.name))


def _drop_replaced_constants(
    g: onnx.GraphProto, twins: Mapping[str, str], sub_refs: set[str]
) -> None:
    """Remove float32 constants nobody reads any more; their float16 copy takes the name."""
    read = {i for n in g.node for i in n.input} | {v.name for v in g.output} | sub_refs
    gone = {name for name in twins if name not in read}
    if not gone:
        return
    renames = {twins[name]: name for name in gone}
    kept_inits = [t for t in g.initializer if t.name not in gone]
    for t in kept_inits:
        if t.name in renames:
            t.name = renames[t.name]
    del g.initializer[:]
    g.initializer.extend(kept_inits)
    kept_nodes = [
        n for n in g.node if not (n.op_type == "Constant" and n.output and n.output[0] in gone)
    ]
    for n in kept_nodes:
        for i, name in enumerate(n.input):
            if name in renames:
                n.input[i] = renames[name]
        for i, name in enumerate(n.output):
            if name in renames:
                n.output[i] = renames[name]
    del g.node[:]
    g.node.extend(kept_nodes)
