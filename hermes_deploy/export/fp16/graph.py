"""ONNX graph and type helpers shared by the parts of the FP16 pass.

Element types (:data:`F32`, :data:`F16`, :data:`FP16_MAX`), node keys (how plans name
nodes), the default opset and op schemas of a model, subgraphs and the names they read
from outside, the tensor type table, float32 constants, the per-parameter type modes
that op schemas allow, a unique-name generator and ``Cast`` nodes. Only the top-level
graph is looked at; subgraphs matter only through the names they read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np

from ...errors import PrecisionError
from ...optional import require

onnx = require("onnx", purpose="The FP16 pass")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402 - onnx is present from here on

F32 = TensorProto.FLOAT
F16 = TensorProto.FLOAT16
FP16_MAX = float(np.finfo(np.float16).max)  # 65504

_DEFAULT_DOMAINS = ("", "ai.onnx")
NON_TENSOR = -1  # marker in the type table: a value that is a sequence/optional/map


def node_keys(graph: onnx.GraphProto) -> list[str]:
    """Stable key of each top-level node: its name, or ``op_type#index`` when the name
    is empty or not unique. Plans refer to nodes by these keys."""
    counts = Counter(n.name for n in graph.node if n.name)
    return [
        n.name if n.name and counts[n.name] == 1 else f"{n.op_type}#{i}"
        for i, n in enumerate(graph.node)
    ]


def opset(model: onnx.ModelProto) -> int:
    """Version of the default ONNX opset the model imports."""
    for op in model.opset_import:
        if op.domain in _DEFAULT_DOMAINS:
            return op.version
    raise PrecisionError(
        "expected the model to import the default ONNX opset, received opset_import "
        f"{[(o.domain, o.version) for o in model.opset_import]}; re-export the model"
    )


def is_default_domain(node: onnx.NodeProto) -> bool:
    """Whether ``node`` is a standard ONNX op (default domain)."""
    return node.domain in _DEFAULT_DOMAINS


def schema(node: onnx.NodeProto, opset_version: int):
    """The op schema of a default-domain node at ``opset_version``, or ``None``."""
    if not is_default_domain(node):
        return None
    try:
        return onnx.defs.get_schema(node.op_type, opset_version, "")
    except onnx.defs.SchemaError:
        return None


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The subgraphs a node holds in its attributes (``If``/``Loop``/``Scan`` bodies)."""
    out = []
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            out.append(a.g)
        elif a.type == onnx.AttributeProto.GRAPHS:
            out.extend(a.graphs)
    return out


def outer_refs(graph: onnx.GraphProto) -> set[str]:
    """Names a (sub)graph reads from enclosing scopes."""
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    used: set[str] = {v.name for v in graph.output}
    for n in graph.node:
        defined.update(o for o in n.output if o)
        used.update(i for i in n.input if i)
        for sg in subgraphs(n):
            used |= outer_refs(sg)
    return used - defined


def tensor_types(
    model: onnx.ModelProto,
) -> tuple[dict[str, int], dict[str, onnx.ValueInfoProto]]:
    """Element type of every top-level value whose type is known, plus value infos."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # inference is best effort; the declared types still count
        inferred = model
    g = inferred.graph
    types: dict[str, int] = {}
    infos: dict[str, onnx.ValueInfoProto] = {}
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        t = vi.type
        if t.HasField("tensor_type"):
            if t.tensor_type.elem_type:
                types[vi.name] = t.tensor_type.elem_type
                infos[vi.name] = vi
        elif t.WhichOneof("value") is not None:
            types[vi.name] = NON_TENSOR
    for init in g.initializer:
        types[init.name] = init.data_type
    return types, infos


def const_arrays(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Float32 constants: initializers that are not graph inputs, and dense
    ``Constant`` node outputs."""
    inputs = {v.name for v in graph.input}
    out: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        if init.data_type == F32 and init.name not in inputs:
            out[init.name] = to_array(init)
    for n in graph.node:
        if n.op_type == "Constant" and is_default_domain(n):
            arr = _constant_value(n)
            if arr is not None and arr.dtype == np.float32:
                out[n.output[0]] = arr
    return out


def to_array(t: onnx.TensorProto) -> np.ndarray:
    """The tensor's data as an array; :class:`PrecisionError` when it is not in memory."""
    try:
        return numpy_helper.to_array(t)
    except Exception as e:
        raise PrecisionError(
            f"expected tensor '{t.name}' to hold its data in memory, received a tensor "
            f"that cannot be read ({e}); load the model with onnx.load(path) and "
            "load_external_data=True"
        ) from None


def _constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    for a in node.attribute:
        if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
            return to_array(a.t)
        if a.name == "value_float":
            return np.array(a.f, dtype=np.float32)
        if a.name == "value_floats":
            return np.array(list(a.floats), dtype=np.float32)
    return None


def _formal(params, idx: int):
    if idx < len(params):
        return params[idx]
    if params and params[-1].option == onnx.defs.OpSchema.FormalParameterOption.Variadic:
        return params[-1]
    return None


def param_modes(node: onnx.NodeProto, schema, types: Mapping[str, int]):
    """Per input and output of a default-domain node, how its float32 values may change.

    ``na``: empty or not float32 (left alone); ``fp16``: follows the node precision;
    ``free``: the only param of its type variable, which admits float16 and float32
    (``Shape``, ``Cast`` input): any available version will do; ``fp32``: a fixed
    ``tensor(float)`` param; ``blocked``: a type variable that excludes float16.
    """
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    uses = Counter(p.type_str for p in list(schema.inputs) + list(schema.outputs))
    # Without its optional ``dtype`` (EyeLike, RandomNormalLike, Bernoulli) the output
    # takes the input's type, so the input is not free. Converting the input rather
    # than setting ``dtype`` also keeps these ops runnable by onnxruntime on CPU.
    has_dtype = any(a.name == "dtype" for a in node.attribute)
    follows_input = "dtype" in schema.attributes and not has_dtype

    def mode(name: str, param) -> str:
        if not name or types.get(name) != F32:
            return "na"
        if param is None:
            return "fp32"
        ts = param.type_str
        ok = allowed.get(ts, {ts})
        if "tensor(float16)" not in ok:
            return "blocked" if ts in allowed else "fp32"
        if ts in allowed and uses[ts] == 1 and "tensor(float)" in ok and not follows_input:
            return "free"
        return "fp16"

    ins = [mode(n, _formal(schema.inputs, i)) for i, n in enumerate(node.input)]
    outs = [mode(n, _formal(schema.outputs, i)) for i, n in enumerate(node.output)]
    return ins, outs


def unique_namer(model: onnx.ModelProto):
    """A function ``unique(base) -> name`` that returns names unused anywhere in
    ``model`` (subgraphs included), remembering the ones it hands out."""
    taken: set[str] = set()

    def collect(g: onnx.GraphProto) -> None:
        taken.update(v.name for v in list(g.input) + list(g.output) + list(g.value_info))
        taken.update(t.name for t in g.initializer)
        for n in g.node:
            taken.add(n.name)
            taken.update(n.input)
            taken.update(n.output)
            for sg in subgraphs(n):
                collect(sg)

    collect(model.graph)

    def unique(base: str) -> str:
        name, k = base, 1
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        return name

    return unique


def cast(src: str, dst: str, to: int, name: str) -> onnx.NodeProto:
    """A ``Cast`` node from ``src`` to ``dst`` of element type ``to``."""
    return helper.make_node("Cast", [src], [dst], to=to, name=name)
