"""Which nodes the INT8 pass quantizes, and the groups they belong to.

* **Op types**: ``Conv`` by default (:data:`DEFAULT_OP_TYPES`). ``MatMul`` (the attention
  products, activation x activation; on the default model they cost nothing measurable)
  can be added (:data:`QUANTIZABLE_OP_TYPES`).
* Only top-level nodes of the chosen op types are candidates (:func:`candidate_nodes`),
  so everything inside the ``hermes`` lowerings stays float by construction.
* Layers are grouped by module (:func:`node_group`: the weight's module path: ``head``,
  ``upsample``, ``fusion.0``, ``moe.experts.1``, ...); a group is what ``exclude`` and
  the sensitivity analysis keep float as a whole.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from ...errors import QuantizationError

DEFAULT_OP_TYPES = ("Conv",)
QUANTIZABLE_OP_TYPES = ("Conv", "MatMul")


def node_group(node, initializers: set[str]) -> str:
    """The module a quantizable node belongs to, from its weight's name (``net.`` dropped).

    ``net.fusion.0.attn.qkv.weight`` -> ``fusion.0``; ``net.moe.experts.1.ssm.inp.weight``
    -> ``moe.experts.1``; ``net.head.2.fused.weight`` -> ``head``; a node without a
    weight initializer (attention MatMul) -> ``<op_type>`` in lower case.
    """
    weights = [i for i in node.input[1:2] if i in initializers]
    if not weights:
        return node.op_type.lower()
    return weight_group(weights[0])


def weight_group(name: str) -> str:
    """The module a weight belongs to (see :func:`node_group`)."""
    parts = name.split(".")
    if parts and parts[0] == "net":
        parts = parts[1:]
    parts = parts[:-1] or parts
    if len(parts) >= 3 and parts[0] == "moe" and parts[1] == "experts":
        return ".".join(parts[:3])
    if len(parts) >= 2 and parts[1].isdigit() and parts[0] not in ("head", "kernel_prior"):
        return ".".join(parts[:2])
    return parts[0]


def candidate_nodes(model, op_types: Sequence[str], exclude: Iterable[str] = ()) -> dict[str, str]:
    """{node name: group} of the top-level nodes to quantize.

    ``exclude`` matches a node name, an op type or a group name. Groups whose nodes read
    the same activation are merged (``global_stem+kernel_prior+local_stem``): they share
    that tensor's quantization, so only together can they keep it float.
    """
    initializers = {i.name for i in model.graph.initializer}
    excluded = {part for item in exclude for part in item.split("+")}
    out: dict[str, str] = {}
    first_input: dict[str, str] = {}
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in op_types:
            continue
        if not node.name:
            raise QuantizationError(f"an unnamed {node.op_type} node cannot be selected; re-export "
                                    "the model with hermes-export onnx")
        group = node_group(node, initializers)
        if excluded & {node.name, node.op_type, group}:
            continue
        out[node.name] = group
        first_input[node.name] = node.input[0]
    parent = {g: g for g in out.values()}

    def root(g: str) -> str:
        while parent[g] != g:
            g = parent[g]
        return g

    by_tensor: dict[str, str] = {}
    for name, tensor in first_input.items():
        g = root(out[name])
        if tensor in by_tensor:
            parent[root(by_tensor[tensor])] = g
        by_tensor[tensor] = g
    members: dict[str, set[str]] = {}
    for g in parent:
        members.setdefault(root(g), set()).add(g)
    merged = {g: "+".join(sorted(members[root(g)])) for g in parent}
    return {name: merged[g] for name, g in out.items()}
