"""Which nodes of the FP16 pass stay FP32: the node classifier and the island plan.

:func:`plan_islands` turns measured ranges (:mod:`.measure`) into an :class:`Fp16Plan`
with one reason per FP32 node; :func:`structural_fp32` classifies the nodes that stay
FP32 whatever the plan's options; :func:`fp16_report` summarises a plan.

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

Structural FP32 nodes (:func:`structural_fp32`; :func:`~.convert.convert_fp16` keeps
them FP32 whatever the plan says): nodes in a non-default domain (custom ops such as
``hermes``: their kernels fix the type), nodes holding subgraphs (``If``/``Loop``/
``Scan``: the subgraphs are not rewritten), nodes with tensors of unknown type, nodes
reading a constant beyond the FP16 range, and *shape arithmetic* (float math on values
computed from ``Shape``/``Size`` only): FP16 holds integers exactly only up to 2048, so
a size computed in FP16 at 4K resolution would be off by one, and tables built from
sizes (``Range`` -> ``Cos`` DFT bases, position grids) would lose precision; they cost
little in FP32.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import PrecisionError
from ...optional import require
from .graph import (
    F32,
    FP16_MAX,
    NON_TENSOR,
    const_arrays,
    is_default_domain,
    node_keys,
    opset,
    outer_refs,
    param_modes,
    schema,
    subgraphs,
    tensor_types,
)

onnx = require("onnx", purpose="The FP16 pass")

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

_VALUE_BLIND = frozenset({"Shape", "Size"})  # outputs do not depend on input values
# Node metadata where torch.onnx records the module path (``/body/ssm/...``); the
# name rule matches these too, as exported node names are often flat (``node_mul_7``).
_SCOPE_METADATA = ("namespace", "pkg.torch.onnx.name_scopes", "pkg.torch.onnx.class_hierarchy")


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


def structural_fp32(
    model: onnx.ModelProto, types: Mapping[str, int], consts: Mapping[str, np.ndarray]
) -> dict[str, str]:
    """Nodes that must stay FP32 for the result to be valid or exact; key -> reason."""
    graph = model.graph
    opset_version = opset(model)
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
        for sg in subgraphs(node):
            implicit |= outer_refs(sg)
        op_schema = schema(node, opset_version)
        if not is_default_domain(node):
            why.append(f"domain: custom domain '{node.domain}' keeps its declared types")
        elif subgraphs(node):
            why.append("control-flow: subgraphs are not converted")
        elif op_schema is None:
            why.append(f"schema: no schema for {node.op_type} in opset {opset_version}")
        else:
            names = [n for n in list(node.input) + list(node.output) if n]
            unknown = [n for n in names if types.get(n, NON_TENSOR) == NON_TENSOR]
            if unknown:
                why.append(
                    f"type-unknown: no tensor type for '{unknown[0]}' "
                    "(give custom-op outputs value_info)"
                )
            else:
                m_in, m_out = param_modes(node, op_schema, types)
                if "blocked" in m_in + m_out:
                    op = f"{node.op_type}-{op_schema.since_version}"
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
        if node.op_type in ("Shape", "Size") and is_default_domain(node):
            shape_vals.update(o for o in node.output if o)
        elif reads & data_dep:
            data_dep.update(o for o in node.output if o)
        elif reads & shape_vals:
            shape_vals.update(o for o in node.output if o)
            casts_to_float = node.op_type in ("Cast", "CastLike") and any(
                types.get(o) == F32 for o in node.output
            )
            float_math = casts_to_float or any(types.get(i) == F32 for i in reads & shape_vals)
            if float_math and is_default_domain(node):
                why.append("shape-arithmetic: float math on shape values must stay exact")
        if why:
            reasons[key] = why
    return {k: "; ".join(v) for k, v in reasons.items()}


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
    types, _ = tensor_types(model)
    graph = model.graph
    consts = const_arrays(graph)
    structural = structural_fp32(model, types, consts)
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
