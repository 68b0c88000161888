"""Lowerings of the ``hermes`` custom ops to standard ONNX ops, and the helpers that
attach, strip and inline them.

A lowering is an ONNX FunctionProto named like its op, whose body is the standard-op
graph of the torch lowering (:mod:`hermes_deploy.ops`), exported once per attribute
value and size. Attaching the functions lets onnxruntime run a ``tensorrt``-target graph
(how that target is verified and calibrated); inlining them gives the ``portable``
target. One set of helpers for every pass (export, FP16, INT8, sessions):

* :func:`with_lowerings` - a copy with the functions attached (plugin attributes dropped);
* :func:`runnable` - the same, only where the graph needs it;
* :func:`strip_lowerings` - a copy without them, plugin attributes restored;
* :func:`inline_lowerings` - ``hermes`` nodes replaced by their bodies.
"""

from __future__ import annotations

import functools

from ..contracts import DOMAIN, PLUGIN_ATTRIBUTES, SCAN_OP
from ..errors import ExportError


def has_hermes_nodes(model) -> bool:
    """Whether ``model``'s main graph holds ``hermes`` custom nodes."""
    return any(n.domain == DOMAIN for n in model.graph.node)


def _graph_to_function(graph, name: str, opset: int):
    """Wrap an exported graph as a FunctionProto (initializers become Constant nodes)."""
    from onnx import helper

    nodes = [helper.make_node("Constant", [], [init.name], value=init) for init in graph.initializer]
    nodes += list(graph.node)
    return helper.make_function(DOMAIN, name, [i.name for i in graph.input], [o.name for o in graph.output],
                                nodes, opset_imports=[helper.make_opsetid("", opset)])


@functools.cache
def _lowering_function_bytes(op: str, chunk: int, opset: int, dims: tuple[int, ...]) -> bytes:
    """Export the torch lowering of ``op`` as a function; batch and length stay dynamic.

    ``dims`` are the static sizes of the node in its graph - (heads, head width, groups,
    state) for the scan - which the exported lowering specializes on.
    """
    import torch

    from .. import ops
    from ..ops.scan import selective_scan_lowered
    from ..ops.spectral import spectral_lowpass_lowered

    dim = torch.export.Dim
    if op == SCAN_OP:
        class Scan(torch.nn.Module):
            def forward(self, x, dt, A, B, C):
                return selective_scan_lowered(x, dt, A, B, C, chunk)

        b, l = 2, 70
        h, p, g, n = dims
        args = (torch.rand(b, l, h, p), torch.rand(b, l, h), -torch.rand(h), torch.rand(b, l, g, n),
                torch.rand(b, l, g, n))
        B_, L_ = dim("b", min=1, max=4096), dim("l", min=1, max=1 << 26)
        shapes = {"x": {0: B_, 1: L_}, "dt": {0: B_, 1: L_}, "A": None,
                  "B": {0: B_, 1: L_}, "C": {0: B_, 1: L_}}
        module = Scan().eval()
    else:
        class Spectral(torch.nn.Module):
            def forward(self, x, cutoff, sharpness):
                return spectral_lowpass_lowered(x, cutoff, sharpness)

        args = (torch.rand(2, 3, 20, 24), torch.rand(3), torch.rand(3))
        shapes = {"x": {0: dim("b", min=1, max=4096), 2: dim("h", min=1, max=1 << 15),
                        3: dim("w", min=1, max=1 << 15)}, "cutoff": None, "sharpness": None}
        module = Spectral().eval()
    with ops.lowered_ops(), torch.no_grad():
        program = torch.onnx.export(module, args, dynamo=True, opset_version=opset,
                                    dynamic_shapes=shapes, verbose=False)
    return _graph_to_function(program.model_proto.graph, op, opset).SerializeToString()


def _static_dims(model, names: list[str]) -> tuple[int, ...]:
    """Trailing static dims of the scan inputs x (h, p) and B (g, n) from value_info."""
    infos = {v.name: v for v in list(model.graph.value_info) + list(model.graph.input)}
    dims: list[int] = []
    for name in names:
        if name not in infos:
            raise ExportError(f"no shape recorded for '{name}'; run onnx shape inference first")
        shape = infos[name].type.tensor_type.shape.dim
        tail = [d.dim_value for d in shape[2:]]
        if len(tail) != 2 or not all(tail):
            raise ExportError(f"'{name}' must have static trailing dims, got {shape}")
        dims += tail
    return tuple(dims)


def lowering_functions(model) -> list:
    """FunctionProtos lowering every ``hermes`` node type present in ``model``.

    One lowering per op type: every scan node of a graph must share chunk and sizes
    (true of HERMES, whose SSM blocks share one configuration).
    """
    import onnx

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 18)
    wanted = set()
    for node in model.graph.node:
        if node.domain != DOMAIN:
            continue
        if node.op_type == SCAN_OP:
            chunk = next((a.i for a in node.attribute if a.name == "chunk"), 64)
            wanted.add((node.op_type, chunk, _static_dims(model, [node.input[0], node.input[3]])))
        else:
            wanted.add((node.op_type, 0, ()))
    by_op: dict[str, set] = {}
    for op, chunk, dims in wanted:
        by_op.setdefault(op, set()).add((chunk, dims))
    mixed = {op: v for op, v in by_op.items() if len(v) > 1}
    if mixed:
        raise ExportError(f"one lowering per op type, but the graph mixes configurations: {mixed}")
    funcs = []
    for op, chunk, dims in sorted(wanted):
        f = onnx.FunctionProto()
        f.ParseFromString(_lowering_function_bytes(op, chunk, opset, dims))
        funcs.append(f)
    return funcs


def with_lowerings(model):
    """A copy of a ``tensorrt``-target model that onnxruntime can run (functions attached)."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    existing = {(f.domain, f.name) for f in out.functions}
    for f in lowering_functions(model):
        if (f.domain, f.name) not in existing:
            out.functions.append(f)
    # plugin attributes are not parameters of the lowering: drop them on this copy
    for node in out.graph.node:
        if node.domain == DOMAIN:
            keep = [a for a in node.attribute if a.name not in (*PLUGIN_ATTRIBUTES, "chunk")]
            del node.attribute[:]
            node.attribute.extend(keep)
    return out


def runnable(model):
    """``model`` with the lowerings attached where it has ``hermes`` nodes and no
    functions yet (onnxruntime can run it); otherwise ``model`` itself."""
    if has_hermes_nodes(model) and not model.functions:
        return with_lowerings(model)
    return model


def strip_lowerings(model, original=None):
    """A copy without the attached lowerings; with ``original``, the plugin attributes
    that :func:`with_lowerings` dropped from the ``hermes`` nodes come back."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.functions[:]
    if original is not None:
        attrs = {n.name: list(n.attribute) for n in original.graph.node if n.domain == DOMAIN}
        for node in out.graph.node:
            if node.domain == DOMAIN and node.name in attrs:
                del node.attribute[:]
                node.attribute.extend(attrs[node.name])
    return out


def inline_lowerings(model, fold: bool = True):
    """Replace ``hermes`` nodes by their standard-op lowerings (the portable form).

    ``fold=True`` then cleans the graph (constant folding, see :func:`.graph.clean_graph`);
    ``fold=False`` only infers shapes - for Q/DQ graphs, where folding would turn
    ``DQ(int8 weight)`` back into a float weight.
    """
    import onnx
    from onnx import inliner

    attached = with_lowerings(strip_lowerings(model))
    inlined = inliner.inline_local_functions(attached)
    keep = [o for o in inlined.opset_import if o.domain != DOMAIN]
    del inlined.opset_import[:]
    inlined.opset_import.extend(keep)
    if not fold:
        return onnx.shape_inference.infer_shapes(inlined)
    from .graph import clean_graph

    return clean_graph(inlined)
