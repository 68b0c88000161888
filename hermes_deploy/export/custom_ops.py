"""The ONNX side of the ``hermes`` custom ops.

For each op (see :mod:`hermes_deploy.ops` for the torch side and the contracts):

* an ``onnx.defs.OpSchema`` in domain ``hermes`` (so ``onnx.checker`` accepts the node);
* a translation for ``torch.onnx.export(custom_translation_table=...)`` that emits one
  node shaped for TensorRT's plugin lookup: op type = plugin name, attributes
  ``plugin_version`` and ``plugin_namespace`` (the fields TensorRT's ONNX parser uses to
  find a registered plugin creator);
* a lowering: an ONNX FunctionProto of the same name whose body is the standard-op
  graph of the torch lowering, exported once per attribute value. Attaching the
  functions lets onnxruntime run a ``tensorrt``-target graph, which is how that target
  is verified; the ``portable`` target inlines the same lowerings at export time.

| node | inputs | attributes | output |
|---|---|---|---|
| ``hermes::SelectiveScan`` | x (b,l,h,p), dt (b,l,h), A (h), B (b,l,g,n), C (b,l,g,n) | chunk:int | y (b,l,h,p) |
| ``hermes::SpectralLowpass`` | x (b,c,h,w), cutoff (c), sharpness (c) | - | low (b,c,h,w) |

All tensors of one node share one float type (float32 or float16).
"""

from __future__ import annotations

import functools

DOMAIN = "hermes"
DOMAIN_VERSION = 1
PLUGIN_VERSION = "1"
PLUGIN_NAMESPACE = "hermes"
SCAN_OP = "SelectiveScan"
SPECTRAL_OP = "SpectralLowpass"
FLOAT_TYPES = ["tensor(float)", "tensor(float16)"]


@functools.cache
def register_schemas() -> None:
    """Register the ``hermes`` op schemas with onnx (idempotent)."""
    import onnx
    from onnx.defs import OpSchema

    def params(names):
        return [OpSchema.FormalParameter(n, "T") for n in names]

    def plugin_attrs():
        return [OpSchema.Attribute("plugin_version", OpSchema.AttrType.STRING, "TensorRT plugin version",
                                   required=False),
                OpSchema.Attribute("plugin_namespace", OpSchema.AttrType.STRING,
                                   "TensorRT plugin namespace", required=False)]

    schemas = [
        OpSchema(SCAN_OP, DOMAIN, DOMAIN_VERSION, "SSD selective scan, scalar decay per head.",
                 inputs=params(["x", "dt", "A", "B", "C"]), outputs=params(["y"]),
                 type_constraints=[("T", FLOAT_TYPES, "float tensors")],
                 attributes=[OpSchema.Attribute("chunk", OpSchema.AttrType.INT, "SSD chunk length")]
                 + plugin_attrs()),
        OpSchema(SPECTRAL_OP, DOMAIN, DOMAIN_VERSION, "rFFT2 radial low-pass gate, irFFT2.",
                 inputs=params(["x", "cutoff", "sharpness"]), outputs=params(["low"]),
                 type_constraints=[("T", FLOAT_TYPES, "float tensors")], attributes=plugin_attrs()),
    ]
    for schema in schemas:
        try:
            onnx.defs.get_schema(schema.name, DOMAIN_VERSION, DOMAIN)
        except onnx.defs.SchemaError:
            onnx.defs.register_schema(schema)


def translation_table() -> dict:
    """custom_translation_table entries that keep the ops as single plugin nodes."""
    import torch
    from onnxscript import values

    register_schemas()  # onnxscript resolves the op through its schema
    hermes = values.Opset(DOMAIN, DOMAIN_VERSION)

    def scan(x, dt, A, B, C, chunk: int):
        return hermes.SelectiveScan(x, dt, A, B, C, chunk=chunk, plugin_version=PLUGIN_VERSION,
                                    plugin_namespace=PLUGIN_NAMESPACE)

    def spectral(x, cutoff, sharpness):
        return hermes.SpectralLowpass(x, cutoff, sharpness, plugin_version=PLUGIN_VERSION,
                                      plugin_namespace=PLUGIN_NAMESPACE)

    return {torch.ops.hermes.selective_scan.default: scan,
            torch.ops.hermes.spectral_lowpass.default: spectral}


def _graph_to_function(graph, name: str, opset: int):
    """Wrap an exported graph as a FunctionProto (initializers become Constant nodes)."""
    import onnx
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
        module = Scan()
    else:
        class Spectral(torch.nn.Module):
            def forward(self, x, cutoff, sharpness):
                return spectral_lowpass_lowered(x, cutoff, sharpness)

        args = (torch.rand(2, 3, 20, 24), torch.rand(3), torch.rand(3))
        shapes = {"x": {0: dim("b", min=1, max=4096), 2: dim("h", min=1, max=1 << 15),
                        3: dim("w", min=1, max=1 << 15)}, "cutoff": None, "sharpness": None}
        module = Spectral()
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
            raise ValueError(f"no shape recorded for '{name}'; run onnx shape inference first")
        shape = infos[name].type.tensor_type.shape.dim
        tail = [d.dim_value for d in shape[2:]]
        if len(tail) != 2 or not all(tail):
            raise ValueError(f"'{name}' must have static trailing dims, got {shape}")
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
        raise ValueError(f"one lowering per op type, but the graph mixes configurations: {mixed}")
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
            keep = [a for a in node.attribute if a.name not in ("plugin_version", "plugin_namespace", "chunk")]
            del node.attribute[:]
            node.attribute.extend(keep)
    return out
