"""Where OpenVINO's CPU time goes on one tile: per executed node, from its own counters.

The library side of ``benchmarks/bench_ov_profile.py``. The graph is compiled as the
runner compiles it (same precision hint, threads and static tile shape) with
``PERF_COUNT`` on; each executed node's time is the median over the repeats of the
plugin's ``real_time``. Every node also gets:

- its kernel (``exec_type``, e.g. ``brgconv_avx512_amx_bf16``) and the precision the
  kernel computes in (the suffix: ``bf16``, ``f32``, ``i8``/``u8``);
- its floating-point work, for the ops that carry almost all of it (convolutions,
  matrix products): 2 x multiply-adds from the shapes of the compiled (runtime) graph,
  so the achieved GFLOP/s of each can be set against the matmul peak;
- its block: the model module it belongs to, found from the weights it or the nodes
  before it read (:func:`runtime_nodes`), so time adds up by model part.

Summaries group the nodes by op type, by kernel precision and by block, and list the
slowest nodes; ``Reorder`` nodes are layout or precision conversions the plugin
inserted between nodes.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

# op types (as the CPU plugin names them in its runtime graph) whose FLOPs are counted
COUNTED = ("Convolution", "GroupConvolution", "Deconvolution", "MatMul", "FullyConnected")


def kernel_precision(exec_type: str) -> str:
    """The compute precision in a CPU kernel name (``jit_avx512_bf16`` -> ``bf16``)."""
    m = re.search(r"(bf16|fp16|f16|fp32|f32|i8|u8|i32)$", exec_type.lower())
    if not m:
        return "-"
    return {"fp32": "f32", "fp16": "f16", "u8": "i8"}.get(m.group(1), m.group(1))


def _dims(partial_shape) -> list[int] | None:
    if not partial_shape.is_static:
        return None
    return [int(d) for d in partial_shape.to_shape()]


def node_flops(layer_type: str, inputs: list[list[int] | None], output: list[int] | None) -> int:
    """2 x multiply-adds of one runtime-graph node from its input and output shapes
    (0 for op types not in :data:`COUNTED` or shapes that are not static)."""
    if layer_type not in COUNTED or output is None or len(inputs) < 2 or None in inputs[:2]:
        return 0
    data, weights = inputs[0], inputs[1]
    if layer_type in ("Convolution", "GroupConvolution"):
        # weights [Co, Ci/g, kh, kw] or [g, Co/g, Ci/g, kh, kw]: Co*Ci/g*kh*kw MACs per
        # output position; output [N, Co, *spatial]
        macs_per_pos = int(np.prod(weights))
        return 2 * macs_per_pos * output[0] * int(np.prod(output[2:]))
    if layer_type == "Deconvolution":
        return 2 * int(np.prod(weights)) * data[0] * int(np.prod(data[2:]))
    if layer_type == "FullyConnected":
        return 2 * int(np.prod(output)) * data[-1]
    # MatMul: the contracted size is the dimension of A's last two not in the output's
    m = output[-2] if len(output) >= 2 else 1
    if len(data) >= 2 and data[-1] == m and data[-2] != m:
        k = data[-2]  # A transposed
    else:
        k = data[-1]
    return 2 * int(np.prod(output)) * k


def block_of(weight: str) -> str:
    """The model part a weight belongs to (``net.fusion.0.attn.qkv.weight`` ->
    ``fusion.0``; the INT8 groups' naming), or ``""`` for a constant that is no weight."""
    if not weight.startswith("net."):
        return ""
    from ..export.int8.nodes import weight_group

    return weight_group(weight)


def folded_weights(model, depth: int = 8) -> dict[str, str]:
    """{friendly name: weight name} for the constant subgraphs of ``model`` (the graph
    as read, before compiling) that compute from one model weight: the CPU plugin folds
    e.g. ``Reshape(net....dw.weight)`` of a grouped convolution into a constant named
    after the Reshape, and this finds the weight again."""

    seen: dict[tuple[str, int], str | None] = {}

    def weight(node, left: int) -> str | None:
        key = (node.get_friendly_name(), left)
        if key not in seen:
            seen[key] = _weight(node, left)
        return seen[key]

    def _weight(node, left: int) -> str | None:
        if node.get_type_name() == "Constant":
            name = node.get_friendly_name()
            return name if name.startswith("net.") else ""
        if not left or node.get_input_size() == 0:
            return None
        found = ""
        for i in range(node.get_input_size()):
            w = weight(node.input(i).get_source_output().get_node(), left - 1)
            if w is None:
                return None  # reads an activation: not a constant subgraph
            found = found or w
        return found

    out = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() in ("Constant", "Parameter", "Result"):
            continue
        w = weight(op, depth)
        if w:
            out[op.get_friendly_name()] = w
    return out


def _rt(info, key: str) -> str:
    try:
        return str(info[key].astype(str))
    except (KeyError, AttributeError, RuntimeError):
        return ""


def runtime_nodes(compiled, source_model=None) -> dict[str, dict]:
    """Per friendly name: op type, FLOPs and block, from the compiled (runtime) graph.

    Exported node names are flat (``node_mul_7``), so a node's block is found from
    weights: a node that reads a model weight belongs to that weight's module, and any
    other node to the module of the last weight-reading node executed before it (the
    scan, the DFT and attention then count for the block whose projections feed them).
    """
    ops = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        try:
            order = int(_rt(info, "execOrder"))
        except ValueError:
            order = -1
        ops.append((order, op, info))
    ops.sort(key=lambda item: item[0])
    folded = folded_weights(source_model) if source_model is not None else {}
    nodes = {}
    block = "(input)"
    for _, op, info in ops:
        layer = _rt(info, "layerType") or op.get_type_name()
        inputs = [_dims(op.input(i).get_partial_shape()) for i in range(op.get_input_size())]
        output = _dims(op.output(0).get_partial_shape()) if op.get_output_size() else None
        if layer != "Const":
            for i in range(op.get_input_size()):
                name = op.input(i).get_source_output().get_node().get_friendly_name()
                found = block_of(folded.get(name, name).split("/")[0])
                if found:
                    block = found
                    break
        nodes[op.get_friendly_name()] = {"type": layer, "flops": node_flops(layer, inputs, output),
                                         "block": block, "shape": output}
    return nodes


def profile_requests(compiled, feeds, repeats: int, source_model=None) -> list[dict]:
    """Run ``feeds`` through a PERF_COUNT-compiled model ``repeats`` times (after a
    warm-up); one row per executed node with its median time in seconds."""
    request = compiled.create_infer_request()
    request.infer(feeds)
    times: dict[str, list[float]] = defaultdict(list)
    meta: dict[str, tuple[str, str]] = {}
    for _ in range(max(1, repeats)):
        request.infer(feeds)
        for p in request.profiling_info:
            if str(p.status).endswith(".EXECUTED"):
                times[p.node_name].append(p.real_time.total_seconds())
                meta[p.node_name] = (p.node_type, p.exec_type)
    shapes = runtime_nodes(compiled, source_model)
    rows = []
    for name, samples in times.items():
        node_type, exec_type = meta[name]
        rt = shapes.get(name, {})
        rows.append({"node": name, "type": node_type, "kernel": exec_type,
                     "precision": kernel_precision(exec_type), "seconds": statistics.median(samples),
                     "flops": rt.get("flops", 0), "block": rt.get("block", "(graph)"),
                     "shape": rt.get("shape")})
    return rows


def summarize(rows: list[dict], key: str) -> list[dict]:
    """Rows grouped by ``key`` (type, precision, block, kernel): time, share, FLOPs."""
    total = sum(r["seconds"] for r in rows) or 1.0
    groups: dict[str, dict] = {}
    for r in rows:
        g = groups.setdefault(r[key], {key: r[key], "nodes": 0, "seconds": 0.0, "flops": 0})
        g["nodes"] += 1
        g["seconds"] += r["seconds"]
        g["flops"] += r["flops"]
    out = sorted(groups.values(), key=lambda g: -g["seconds"])
    for g in out:
        g["share"] = g["seconds"] / total
        g["gflops_per_s"] = g["flops"] / g["seconds"] / 1e9 if g["seconds"] and g["flops"] else 0.0
    return out


def profile_openvino(onnx_path: str | Path, precision: str = "bf16", tile: int = 256,
                     threads: int = 2, repeats: int = 3) -> dict:
    """Profile the runner's own compile of ``onnx_path`` on one tile of a photograph."""
    from ..engines.ov_runner import OvRunner
    from ..quality.photos import load_photo
    from ..runtime.runner import model_feeds

    with OvRunner(onnx_path, threads=threads, precision=precision) as runner:
        spec = runner.spec
        photo = load_photo("astronaut")[:tile, :tile]
        x = np.ascontiguousarray(photo.transpose(2, 0, 1)[None], np.float32)
        ctx = runner.context(x)
        compiled, model = runner.compile_static(*x.shape[:1], *x.shape[2:], {"PERF_COUNT": "YES"})
        rows = profile_requests(compiled, model_feeds(spec, x, ctx, None), repeats, model)
        name = runner.name
    return {"runner": name, "tile": tile, "threads": threads, "rows": rows,
            "node_seconds": sum(r["seconds"] for r in rows),
            "counted_gflop": sum(r["flops"] for r in rows) / 1e9}
