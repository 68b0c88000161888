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

Checking FP16 quality on CPU needs :func:`emulate_fp16`: onnxruntime's CPU provider
lacks float16 kernels for most ops, runs them in float32 and drops the float16 round
trips between such nodes, so an FP16 model run directly on CPU does not overflow
where TensorRT does (measured with onnxruntime 1.32: a x1000 / /1000 detour through
65504 comes back intact). The emulation keeps explicit round trips, which onnxruntime
preserves.

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
* Some nodes always stay FP32, whatever the plan says (``structural`` reasons): nodes
  in a non-default domain (custom ops such as ``hermes``: their kernels fix the type),
  nodes holding subgraphs (``If``/``Loop``/``Scan``: the subgraphs are not rewritten),
  nodes with tensors of unknown type, nodes reading a constant beyond the FP16 range,
  and *shape arithmetic* (float math on values computed from ``Shape``/``Size`` only):
  FP16 holds integers exactly only up to 2048, so a size computed in FP16 at 4K
  resolution would be off by one, and tables built from sizes (``Range`` -> ``Cos``
  DFT bases, position grids) would lose precision; they cost little in FP32.

How islands are chosen (:func:`plan_islands`), after ModelOpt AutoCast's node rules
(op type, node-name regex, reference I/O range, initializer range):

* **op type** (:data:`DEFAULT_FP32_OPS`): only ops whose FP16 failure does not show
  in a range measurement - the error happens *inside* the op, or the op explodes on
  inputs slightly outside the calibrated ones:

  - ``Exp`` (overflows for x > 11.09 - a small shift of the input distribution is
    enough), ``Log`` (its small inputs underflow to 0 in FP16 -> -inf),
    ``Softmax``/``LogSoftmax`` (exp plus a normalising sum; the known NaN source of
    FP16 transformer SR models: SwinIR, HAT, DAT);
  - ``CumSum`` (running sums: error and magnitude grow with the length - SSM scans);
  - sum-type reductions ``ReduceSum``/``ReduceMean``/``ReduceSumSquare``/``ReduceL1``/
    ``ReduceL2``/``ReduceLogSum``/``ReduceLogSumExp``/``ReduceProd`` and
    ``GlobalAveragePool`` (the same mean as ``ReduceMean`` over H x W, exported by
    ``adaptive_avg_pool2d``): a sum over a 512 x 512 tile of values near 1 already
    exceeds 65504, and the mean itself is in range, so a range check cannot see it.
    ``ReduceMax``/``ReduceMin``/``ArgMax`` are exact in FP16 and are not listed;
  - normalisation ``LayerNormalization``/``GroupNormalization``/
    ``InstanceNormalization``/``MeanVarianceNormalization``/``LpNormalization``:
    variance by cancellation; ``BatchNormalization`` at inference is an affine map
    (folded into the conv in deploy form) and is not listed;
  - ``Pow``: squares overflow from |x| > 256 (decomposed variance / RMS norms);
  - ``DFT``/``STFT``: long sums of products. DFT written as a matmul is found by name
    (``name_patterns``), as are the SSM scan subgraphs.

  ``Div``, ``Sqrt``, ``Reciprocal``, ``MatMul``/``Conv``, ``Add`` are *not* listed:
  their FP16 hazard is magnitude only, which the range rule measures.
* **range**: a node stays FP32 when one of its float inputs *or* outputs reached
  ``max_abs`` on the calibration feeds (or was non-finite in FP32). Checking inputs
  too is the neighbourhood that matters: the reader of an overflowing tensor must
  read it in FP32, otherwise the border Cast itself overflows. No wider neighbourhood
  is added: everything else about an island (its Casts) follows from the types.
* :data:`DEFAULT_MAX_ABS` = 4096: 16x (4 binades) below the FP16 maximum. Calibration
  images never cover every input (contrast, noise, tile content); activations of an SR
  net scale about linearly with input contrast and attention logits quadratically, so
  16x headroom covers a 4x stronger input even for products. AutoCast's default
  ``data_max`` is 512 (128x headroom), which in a conv SR net keeps many wide,
  harmless residual trunks in FP32 for no accuracy gain (FP16's *relative* precision
  does not depend on magnitude; cancellation-prone ops are islands by op type).
  Pass ``max_abs=512`` to match AutoCast.
* **name**: nodes whose name, or module path in the node metadata written by
  torch.onnx (``namespace``, ``pkg.torch.onnx.name_scopes``), matches one of
  ``name_patterns`` (``re.search``).

ModelOpt (checked with nvidia-modelopt 0.47.0): the wheel is pure
Python (2 MB) and its base requirements are small (torch>=2.8 is met by our CPU
torch), but ``modelopt.onnx`` refuses to import without the ``[onnx]`` extra, and that
extra pins ``onnx~=1.21`` (we use 1.23), replaces CPU onnxruntime with
``onnxruntime-gpu~=1.24`` and pulls ``cupy-cuda12x``: CUDA wheels, hundreds of MB, and
a downgrade. Installing only the extra's pure-Python pieces by hand (outside the
environment) made ``modelopt.onnx.autocast.convert_to_mixed_precision`` run on CPU
with our onnx/onnxruntime on a toy graph - so it works, but only as an unsupported
install. This module is therefore our own pass; AutoCast remains the reference for
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

import copy
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import HermesError, MissingDependencyError

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("onnx", "onnx", "The FP16 pass") from None

F32 = TensorProto.FLOAT
F16 = TensorProto.FLOAT16
FP16_MAX = float(np.finfo(np.float16).max)  # 65504

#: Largest activation magnitude (inputs and outputs of a node) allowed in FP16;
#: 16x headroom below the FP16 maximum. See the module docstring.
DEFAULT_MAX_ABS = 4096.0

#: Op types kept in FP32 regardless of measured ranges. See the module docstring.
DEFAULT_FP32_OPS: frozenset[str] = frozenset(
    {
        "Exp",
        "Log",
        "Softmax",
        "LogSoftmax",
        "CumSum",
        "ReduceSum",
        "ReduceMean",
        "ReduceSumSquare",
        "ReduceL1",
        "ReduceL2",
        "ReduceLogSum",
        "ReduceLogSumExp",
        "ReduceProd",
        "GlobalAveragePool",
        "LayerNormalization",
        "GroupNormalization",
        "InstanceNormalization",
        "MeanVarianceNormalization",
        "LpNormalization",
        "Pow",
        "DFT",
        "STFT",
    }
)

_DEFAULT_DOMAINS = ("", "ai.onnx")
_VALUE_BLIND = frozenset({"Shape", "Size"})  # outputs do not depend on input values
# Node metadata where torch.onnx records the module path (``/body/ssm/...``); the
# name rule matches these too, as exported node names are often flat (``node_mul_7``).
_SCOPE_METADATA = ("namespace", "pkg.torch.onnx.name_scopes", "pkg.torch.onnx.class_hierarchy")
_NON_TENSOR = -1  # marker in the type table: a value that is a sequence/optional/map

__all__ = [
    "DEFAULT_FP32_OPS",
    "DEFAULT_MAX_ABS",
    "Fp16Plan",
    "PrecisionError",
    "convert_fp16",
    "emulate_fp16",
    "fp16_report",
    "measure_ranges",
    "node_keys",
    "plan_islands",
    "to_fp16",
]


class PrecisionError(HermesError):
    """A precision pass (FP16 islands) cannot run on the given model or inputs."""


@dataclass
class Fp16Plan:
    """Which top-level nodes stay FP32, and why.

    Nodes are identified by :func:`node_keys` (the node name, or ``op_type#index`` for
    unnamed or duplicated names). ``reasons`` maps each kept key to ``"; "``-joined
    ``rule: detail`` strings (rules: ``op-type``, ``range``, ``name``, and the
    structural ``domain``, ``control-flow``, ``schema``, ``type-unknown``,
    ``const-range``, ``shape-arithmetic``). ``op_types`` maps every node key to its op
    type (for reports); a hand-made plan may leave it empty.
    """

    keep_fp32_nodes: set[str]
    reasons: dict[str, str]
    op_types: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def node_keys(graph: onnx.GraphProto) -> list[str]:
    """Stable key of each top-level node: its name, or ``op_type#index`` when the name
    is empty or not unique. Plans refer to nodes by these keys."""
    counts = Counter(n.name for n in graph.node if n.name)
    return [
        n.name if n.name and counts[n.name] == 1 else f"{n.op_type}#{i}"
        for i, n in enumerate(graph.node)
    ]


def _opset(model: onnx.ModelProto) -> int:
    for op in model.opset_import:
        if op.domain in _DEFAULT_DOMAINS:
            return op.version
    raise PrecisionError(
        "expected the model to import the default ONNX opset, received opset_import "
        f"{[(o.domain, o.version) for o in model.opset_import]}; re-export the model"
    )


def _is_default_domain(node: onnx.NodeProto) -> bool:
    return node.domain in _DEFAULT_DOMAINS


def _schema(node: onnx.NodeProto, opset: int):
    if not _is_default_domain(node):
        return None
    try:
        return onnx.defs.get_schema(node.op_type, opset, "")
    except onnx.defs.SchemaError:
        return None


def _subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    out = []
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            out.append(a.g)
        elif a.type == onnx.AttributeProto.GRAPHS:
            out.extend(a.graphs)
    return out


def _outer_refs(graph: onnx.GraphProto) -> set[str]:
    """Names a (sub)graph reads from enclosing scopes."""
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    used: set[str] = {v.name for v in graph.output}
    for n in graph.node:
        defined.update(o for o in n.output if o)
        used.update(i for i in n.input if i)
        for sg in _subgraphs(n):
            used |= _outer_refs(sg)
    return used - defined


def _tensor_types(
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
            types[vi.name] = _NON_TENSOR
    for init in g.initializer:
        types[init.name] = init.data_type
    return types, infos


def _const_arrays(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Float32 constants: initializers that are not graph inputs, and dense
    ``Constant`` node outputs."""
    inputs = {v.name for v in graph.input}
    out: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        if init.data_type == F32 and init.name not in inputs:
            out[init.name] = _to_array(init)
    for n in graph.node:
        if n.op_type == "Constant" and _is_default_domain(n):
            arr = _constant_value(n)
            if arr is not None and arr.dtype == np.float32:
                out[n.output[0]] = arr
    return out


def _to_array(t: onnx.TensorProto) -> np.ndarray:
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
            return _to_array(a.t)
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


def _param_modes(node: onnx.NodeProto, schema, types: Mapping[str, int]):
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


def _structural_fp32(
    model: onnx.ModelProto, types: Mapping[str, int], consts: Mapping[str, np.ndarray]
) -> dict[str, str]:
    """Nodes that must stay FP32 for the result to be valid or exact; key -> reason."""
    graph = model.graph
    opset = _opset(model)
    # +-inf and NaN survive the conversion exactly (masks); finite values past 65504 do not.
    big_consts = {
        k for k, v in consts.items() if v.size and np.any(np.abs(v[np.isfinite(v)]) > FP16_MAX)
    }
    reasons: dict[str, list[str]] = {}
    data_dep = {v.name for v in graph.input} - {t.name for t in graph.initializer}
    shape_vals: set[str] = set()

    for key, node in zip(node_keys(graph), graph.node):
        why: list[str] = []
        ins = [i for i in node.input if i]
        implicit: set[str] = set()
        for sg in _subgraphs(node):
            implicit |= _outer_refs(sg)
        schema = _schema(node, opset)
        if not _is_default_domain(node):
            why.append(f"domain: custom domain '{node.domain}' keeps its declared types")
        elif _subgraphs(node):
            why.append("control-flow: subgraphs are not converted")
        elif schema is None:
            why.append(f"schema: no schema for {node.op_type} in opset {opset}")
        else:
            names = [n for n in list(node.input) + list(node.output) if n]
            unknown = [n for n in names if types.get(n, _NON_TENSOR) == _NON_TENSOR]
            if unknown:
                why.append(
                    f"type-unknown: no tensor type for '{unknown[0]}' "
                    "(give custom-op outputs value_info)"
                )
            else:
                m_in, m_out = _param_modes(node, schema, types)
                if "blocked" in m_in + m_out:
                    op = f"{node.op_type}-{schema.since_version}"
                    why.append(f"schema: {op} does not admit float16 here")
            for a in node.attribute:
                if (
                    a.type == onnx.AttributeProto.SPARSE_TENSOR
                    or (a.type == onnx.AttributeProto.TENSOR and a.t.data_type == F32
                        and node.op_type not in ("Constant", "ConstantOfShape"))
                ):
                    why.append(f"schema: float32 tensor attribute '{a.name}' is left alone")
            big = [i for i in ins if i in big_consts]
            if big:
                why.append(f"const-range: constant '{big[0]}' exceeds the float16 range")

        # Value flow: what depends on input *values*, what only on shapes.
        reads = set(ins) | implicit
        if node.op_type in ("Shape", "Size") and _is_default_domain(node):
            shape_vals.update(o for o in node.output if o)
        elif reads & data_dep:
            data_dep.update(o for o in node.output if o)
        elif reads & shape_vals:
            shape_vals.update(o for o in node.output if o)
            casts_to_float = node.op_type in ("Cast", "CastLike") and any(
                types.get(o) == F32 for o in node.output
            )
            float_math = casts_to_float or any(types.get(i) == F32 for i in reads & shape_vals)
            if float_math and _is_default_domain(node):
                why.append("shape-arithmetic: float math on shape values must stay exact")
        if why:
            reasons[key] = why
    return {k: "; ".join(v) for k, v in reasons.items()}


def _unique_namer(model: onnx.ModelProto):
    taken: set[str] = set()

    def collect(g: onnx.GraphProto) -> None:
        taken.update(v.name for v in list(g.input) + list(g.output) + list(g.value_info))
        taken.update(t.name for t in g.initializer)
        for n in g.node:
            taken.add(n.name)
            taken.update(n.input)
            taken.update(n.output)
            for sg in _subgraphs(n):
                collect(sg)

    collect(model.graph)

    def unique(base: str) -> str:
        name, k = base, 1
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        return name

    return unique


# ------------------------------------------------------------------------- measuring


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
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("onnxruntime", "onnx", "Range measurement") from None

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


# -------------------------------------------------------------------------- planning


def plan_islands(
    model: onnx.ModelProto,
    ranges: Mapping[str, float],
    op_types_fp32: Iterable[str] = DEFAULT_FP32_OPS,
    max_abs: float = DEFAULT_MAX_ABS,
    name_patterns: Iterable[str] = (),
) -> Fp16Plan:
    """Choose the top-level nodes that stay FP32 (see the module docstring).

    ``ranges`` comes from :func:`measure_ranges` (an empty mapping disables the range
    rule). Structural reasons (custom domain, control flow, schema, shape arithmetic,
    constants beyond FP16) are always included.
    """
    if not max_abs > 0:
        raise PrecisionError(f"expected max_abs > 0, received {max_abs}; try {DEFAULT_MAX_ABS}")
    try:
        patterns = [re.compile(p) for p in name_patterns]
    except re.error as e:
        raise PrecisionError(
            "expected valid regular expressions in name_patterns, "
            f"received {list(name_patterns)} ({e})"
        ) from None
    op_types_fp32 = set(op_types_fp32)
    types, _ = _tensor_types(model)
    graph = model.graph
    consts = _const_arrays(graph)
    structural = _structural_fp32(model, types, consts)
    keys = node_keys(graph)

    reasons: dict[str, str] = {}
    op_types: dict[str, str] = {}
    for key, node in zip(keys, graph.node):
        if node.op_type == "Constant" and node.output and node.output[0] in consts:
            continue  # a constant takes the precision of each reader (a copy per type)
        op_types[key] = node.op_type
        why = [structural[key]] if key in structural else []
        if node.op_type in op_types_fp32:
            why.append(f"op-type: {node.op_type}")
        over = []
        io = (("input", node.input), ("output", node.output))
        for role, names in () if node.op_type in _VALUE_BLIND else io:
            for n in names:
                v = ranges.get(n) if n else None
                if v is not None and (not np.isfinite(v) or v > max_abs):
                    over.append(f"{role} '{n}' max|x|={v:.4g}")
        if over:
            why.append(f"range: {', '.join(over)} > {max_abs:g}")
        labels = [node.name or key] + [
            p.value for p in node.metadata_props if p.key in _SCOPE_METADATA
        ]
        hits = [p.pattern for p in patterns if any(p.search(label) for label in labels)]
        if hits:
            why.append(f"name: matches {hits[0]!r}")
        if why:
            reasons[key] = "; ".join(why)
    return Fp16Plan(keep_fp32_nodes=set(reasons), reasons=reasons, op_types=op_types)


# ------------------------------------------------------------------------ converting


def convert_fp16(
    model: onnx.ModelProto, plan: Fp16Plan, keep_io_fp32: bool = True
) -> onnx.ModelProto:
    """A new model: FP16 except the plan's nodes and the structural FP32 nodes.

    ``plan`` must come from the same (unmodified) model: nodes are matched by
    :func:`node_keys`. The input model is not modified. See the module docstring for
    the guarantees.
    """
    types, infos = _tensor_types(model)
    opset = _opset(model)
    consts = _const_arrays(model.graph)
    keep = set(plan.keep_fp32_nodes) | set(_structural_fp32(model, types, consts))

    out = copy.deepcopy(model)
    g = out.graph
    keys = node_keys(g)
    unknown = sorted(set(plan.keep_fp32_nodes) - set(keys))
    if unknown:
        raise PrecisionError(
            f"expected the plan's nodes to exist in the model, received unknown keys "
            f"{unknown[:5]}; plan and convert the same unmodified model (keys: node_keys())"
        )
    unique = _unique_namer(out)
    inits = {t.name: t for t in g.initializer}

    sub_refs: set[str] = set()
    for n in g.node:
        for sg in _subgraphs(n):
            sub_refs |= _outer_refs(sg)

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
            new_nodes.append(_cast(src, twin, want, unique(f"{twin}_cast")))
        have[want] = twin
        return twin

    for key, node in zip(keys, list(g.node)):
        if node.op_type == "Constant" and _is_default_domain(node) and node.output[0] in consts:
            new_nodes.append(node)  # float16 copies are made on demand by readers
            continue
        schema = _schema(node, opset)
        fp16 = key not in keep and schema is not None
        if schema is not None:
            m_in, m_out = _param_modes(node, schema, types)
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
                after.append(_cast(inner, name, want, unique(f"{name}_cast")))
                avail[name] = {dt: inner, want: name}
        if schema is not None:
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
        if not _is_default_domain(node):
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


def _cast(src: str, dst: str, to: int, name: str) -> onnx.NodeProto:
    return helper.make_node("Cast", [src], [dst], to=to, name=name)


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
            a.t.CopyFrom(numpy_helper.from_array(_to_array(a.t).astype(np_dt), a.t.name))


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


# ------------------------------------------------------------------------- emulating


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
    types, infos = _tensor_types(model16)
    out = copy.deepcopy(model16)
    g = out.graph
    unique = _unique_namer(out)

    def widen(t: onnx.TensorProto) -> None:
        if t.data_type == F16:
            t.CopyFrom(numpy_helper.from_array(_to_array(t).astype(np.float32), t.name))

    for t in g.initializer:
        widen(t)

    nodes: list[onnx.NodeProto] = []
    renamed: dict[str, str] = {}

    def round_trip(src: str, dst: str) -> list[onnx.NodeProto]:
        mid = unique(f"{dst}_as_fp16")
        return [
            _cast(src, mid, F16, unique(f"{dst}_round")),
            _cast(mid, dst, F32, unique(f"{dst}_widen")),
        ]

    for v in g.input:
        if types.get(v.name) == F16:
            v.type.tensor_type.elem_type = F32
            renamed[v.name] = unique(f"{v.name}_rounded")
            nodes.extend(round_trip(v.name, renamed[v.name]))

    for node in g.node:
        for i, name in enumerate(node.input):
            node.input[i] = renamed.get(name, name)
        if not _is_default_domain(node):
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
        if not _is_default_domain(node):
            keep_vi = [o for o in node.output if o in infos and types.get(o) != F16]
            g.value_info.extend(copy.deepcopy(infos[o]) for o in keep_vi)
    return onnx.shape_inference.infer_shapes(out, strict_mode=False)


# ----------------------------------------------------------------- one call, reports


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


def fp16_report(plan: Fp16Plan) -> dict[str, Any]:
    """JSON-ready summary: node counts per precision and op type, counts per rule, and
    the reason of every FP32 node."""
    keys = set(plan.op_types) | set(plan.keep_fp32_nodes)
    by_op: dict[str, dict[str, int]] = {}
    for k in sorted(keys):
        op = plan.op_types.get(k, "?")
        slot = by_op.setdefault(op, {"fp16": 0, "fp32": 0})
        slot["fp32" if k in plan.keep_fp32_nodes else "fp16"] += 1
    rules: Counter[str] = Counter()
    for k in plan.keep_fp32_nodes:
        for part in plan.reasons.get(k, "").split("; "):
            if part:
                rules[part.split(":", 1)[0]] += 1
    n32 = len(plan.keep_fp32_nodes)
    why = ", ".join(f"{k} {v}" for k, v in sorted(rules.items())) or "none"
    return {
        "summary": f"{len(keys) - n32} of {len(keys)} nodes FP16, {n32} FP32 ({why})",
        "nodes": len(keys),
        "fp16": len(keys) - n32,
        "fp32": n32,
        "by_op_type": dict(sorted(by_op.items())),
        "fp32_by_rule": dict(sorted(rules.items())),
        "fp32_nodes": {k: plan.reasons.get(k, "") for k in sorted(plan.keep_fp32_nodes)},
    }
