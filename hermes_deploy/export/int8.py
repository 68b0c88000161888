"""INT8 Q/DQ ONNX: calibration, quantization with float islands, saved ranges.

TensorRT 10/11 takes INT8 from explicit ``QuantizeLinear``/``DequantizeLinear`` pairs in
the ONNX (strongly typed networks; the implicit calibrators are gone in 11). This pass
writes them with onnxruntime's static QDQ quantizer, configured for TensorRT:

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
* **Never inside the scan or the DFT**: quantization runs on the graph that still holds
  the ``hermes::SelectiveScan`` / ``hermes::SpectralLowpass`` nodes (a ``tensorrt``
  target export; their lowerings are attached as ONNX functions so onnxruntime can run
  the graph). Only top-level nodes of the chosen op types are quantized, so everything
  inside the lowerings stays float by construction; the ``portable`` target then
  inlines the float lowerings. A portable ``.onnx`` given as input has no such marks
  (its MatMuls may be DFT or scan matmuls), so only ``Conv`` - an op the lowerings do
  not contain - is quantized there.
* **Op types**: ``Conv`` by default. ``MatMul`` (the attention products, activation x
  activation; on the default model they cost nothing measurable) can be added.

Ranges (``calibrate_ranges``) come from onnxruntime's calibrators (``minmax``,
``entropy``: KL-divergence threshold, ``percentile``) over a
:class:`~hermes_deploy.calibration.TileReader`; they are saved as JSON with the reader's
description, so a rebuild reuses them without images (``--ranges``). Same images, tiles
and seed give the same ranges (the reader is deterministic and the calibrators are).

Sensitivity (``sensitivity=True``): layers are grouped by module (the weight's module
path: ``head``, ``upsample``, ``fusion.0``, ``moe.experts.1``, ...). Each group is
quantized alone and its PSNR-Y cost against ground truth is measured on held-back
calibration tiles (a second reader stream, never the evaluation photos); then the most
costly groups become float islands, one at a time, until the fully quantized rest is
within ``budget_db`` of FP32. Idea of one-group-at-a-time sensitivity and float islands
from NVIDIA's TensorRT Model Optimizer and PyTorch-Quantization docs (layer-wise
sensitivity analysis, partial quantization); the code here is our own.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..errors import HermesError, InputError
from ..spec import ModelSpec
from . import custom_ops

METHODS = ("minmax", "entropy", "percentile")
DEFAULT_OP_TYPES = ("Conv",)
QUANTIZABLE_OP_TYPES = ("Conv", "MatMul")
RANGES_FORMAT = "hermes-int8-ranges"
RANGES_VERSION = 1

Progress = Callable[[str], None]


class QuantizationError(HermesError):
    """INT8 calibration or Q/DQ insertion failed."""


@dataclass(frozen=True)
class Int8Options:
    method: str = "minmax"
    samples: int = 32  # calibration tiles
    seed: int = 0
    tile: tuple[int, int] = (64, 64)  # input pixels, as the runtime cuts them
    batch: int = 4
    op_types: tuple[str, ...] = DEFAULT_OP_TYPES
    exclude: tuple[str, ...] = ()  # node names, op types or group names kept float
    percentile: float = 99.999
    sensitivity: bool = False
    budget_db: float = 0.1  # allowed PSNR-Y drop on the sensitivity tiles
    sensitivity_samples: int = 16
    target: str | None = None  # of the written graph; None: portable for a model, else the input's

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"unknown calibration method '{self.method}'; choose one of {METHODS}")
        if self.samples < 1 or self.batch < 1 or self.sensitivity_samples < 1:
            raise InputError("--samples, --batch and the sensitivity samples must be >= 1")
        bad = [t for t in self.op_types if t not in QUANTIZABLE_OP_TYPES]
        if bad or not self.op_types:
            raise InputError(f"op types {bad or '(none)'} cannot be quantized here; choose from "
                             f"{QUANTIZABLE_OP_TYPES}")
        if not 90.0 < self.percentile <= 100.0:
            raise InputError(f"percentile must be in (90, 100], got {self.percentile}")
        if self.budget_db < 0:
            raise InputError(f"the quality budget must be >= 0 dB, got {self.budget_db}")
        if self.target not in (None, "portable", "tensorrt"):
            raise InputError(f"unknown target '{self.target}'; choose portable or tensorrt")
        if len(self.tile) != 2 or min(self.tile) < 16:
            raise InputError(f"--tile must be two sizes >= 16 (HxW), got {self.tile}")


@dataclass
class Int8Result:
    path: Path
    context_path: Path
    ranges_path: Path
    spec: ModelSpec
    report: dict = field(default_factory=dict)
    seconds: float = 0.0


# --------------------------------------------------------------------------- graph


def node_group(node, initializers: set[str]) -> str:
    """The module a quantizable node belongs to, from its weight's name (``net.`` dropped).

    ``net.fusion.0.attn.qkv.weight`` -> ``fusion.0``; ``net.moe.experts.1.ssm.inp.weight``
    -> ``moe.experts.1``; ``net.head.2.fused.weight`` -> ``head``; a node without a
    weight initializer (attention MatMul) -> ``<op_type>`` in lower case.
    """
    weights = [i for i in node.input[1:2] if i in initializers]
    if not weights:
        return node.op_type.lower()
    parts = weights[0].split(".")
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


def _has_hermes_nodes(model) -> bool:
    return any(n.domain == custom_ops.DOMAIN for n in model.graph.node)


def _runnable(model):
    """The model with the ``hermes`` lowerings attached (onnxruntime can run it)."""
    if _has_hermes_nodes(model) and not model.functions:
        return custom_ops.with_lowerings(model)
    return model


def _strip_functions(model, original=None):
    """A copy without the attached lowerings; with ``original``, the plugin attributes
    that :func:`custom_ops.with_lowerings` dropped from the ``hermes`` nodes come back."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.functions[:]
    if original is not None:
        attrs = {n.name: list(n.attribute) for n in original.graph.node if n.domain == custom_ops.DOMAIN}
        for node in out.graph.node:
            if node.domain == custom_ops.DOMAIN and node.name in attrs:
                del node.attribute[:]
                node.attribute.extend(attrs[node.name])
    return out


def inline_float_lowerings(model):
    """``hermes`` nodes -> their float standard-op lowerings, without constant folding
    (folding would turn ``DQ(int8 weight)`` back into a float weight)."""
    import onnx
    from onnx import inliner

    attached = custom_ops.with_lowerings(_strip_functions(model))
    inlined = inliner.inline_local_functions(attached)
    keep = [o for o in inlined.opset_import if o.domain != custom_ops.DOMAIN]
    del inlined.opset_import[:]
    inlined.opset_import.extend(keep)
    return onnx.shape_inference.infer_shapes(inlined)


# --------------------------------------------------------------------------- ranges


def _ort_method(method: str):
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile}[method]


def _ort_reader(reader):
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def get_next(self):
            return reader.get_next()

        def rewind(self):
            reader.rewind()

    return _Reader()


def calibrate_ranges(model, reader, method: str = "entropy", op_types: Sequence[str] = DEFAULT_OP_TYPES,
                     percentile: float = 99.999) -> dict[str, tuple[float, float]]:
    """{tensor: (low, high)} for the float inputs/outputs of ``op_types`` nodes, measured
    by onnxruntime's ``method`` calibrator over every batch of ``reader`` (rewound first).
    Ranges are symmetric (``low == -high``), as TensorRT's INT8 needs."""
    import onnx
    from onnxruntime.quantization.calibrate import create_calibrator

    if method not in METHODS:
        raise InputError(f"unknown calibration method '{method}'; choose one of {METHODS}")
    custom_ops.register_schemas()
    runnable = onnx.shape_inference.infer_shapes(_runnable(model))
    extra: dict = {"symmetric": True}
    if method == "percentile":
        extra["percentile"] = float(percentile)
    if method == "entropy":
        # onnxruntime's default of 128 histogram bins equals its 128 quantized bins, which
        # leaves the KL search one candidate - the max - so "entropy" silently equals minmax
        extra["num_bins"] = 2048
    with tempfile.TemporaryDirectory(prefix="hermes-int8-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(runnable, str(path))
        calibrator = create_calibrator(path, list(op_types),
                                       augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=_ort_method(method), extra_options=extra)
        reader.rewind()
        with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print
            calibrator.collect_data(_ort_reader(reader))
            data = calibrator.compute_data()
        del calibrator
    ranges = {}
    for name, value in sorted(data.data.items()):
        lo, hi = (float(np.asarray(v).reshape(-1)[0]) for v in value.range_value)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise QuantizationError(f"tensor '{name}' reached a non-finite value during calibration; "
                                    "check the model in FP32 first (hermes-export verify)")
        m = max(abs(lo), abs(hi))
        ranges[name] = (-m, m)  # what the symmetric quantizer uses either way
    return ranges


def save_ranges(path: str | os.PathLike, ranges: dict[str, tuple[float, float]], method: str,
                calibration: dict, op_types: Sequence[str]) -> Path:
    from ..atomic import atomic_path

    path = Path(path)
    doc = {"format": RANGES_FORMAT, "version": RANGES_VERSION, "method": method,
           "op_types": list(op_types), "calibration": calibration,
           "ranges": {k: [float(lo), float(hi)] for k, (lo, hi) in sorted(ranges.items())}}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
    return path


def load_ranges(path: str | os.PathLike) -> tuple[dict[str, tuple[float, float]], dict]:
    """(ranges, document) from :func:`save_ranges` JSON."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != RANGES_FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}, expected {RANGES_FORMAT!r}")
        ranges = {str(k): (float(v[0]), float(v[1])) for k, v in doc["ranges"].items()}
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise InputError(f"cannot read calibration ranges '{path}' ({exc}); pass a file written by "
                         "hermes-export calibrate, or calibrate again with --images") from None
    return ranges, doc


# --------------------------------------------------------------------------- Q/DQ


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
    work = onnx.shape_inference.infer_shapes(_runnable(model))
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


# --------------------------------------------------------------------------- quality


def _outputs(model, pairs) -> list[np.ndarray]:
    from .verify import ort_session

    session = ort_session(_runnable(model))
    return [session.run(None, feed)[0] for feed, _ in pairs]


def _y(batch: np.ndarray, crop: int) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> BT.601 Y (B, H', W') on 0..255, ``crop`` border removed."""
    from ..quality.metrics import rgb_to_y

    y = np.stack([rgb_to_y(np.clip(b, 0.0, 1.0).transpose(1, 2, 0)) for b in batch])
    return y[:, crop:y.shape[1] - crop, crop:y.shape[2] - crop] if crop else y


def noise_mse(outputs: list[np.ndarray], reference: list[np.ndarray], crop: int) -> float:
    """Mean squared Y difference (0..255 scale) of ``outputs`` from ``reference``; inf when
    an output is not finite."""
    if not all(np.isfinite(o).all() for o in outputs):
        return float("inf")
    return float(np.mean([np.mean((_y(o, crop) - _y(r, crop)) ** 2) for o, r in zip(outputs, reference)]))


def predicted_cost_db(mse_noise: float, reference_psnr_db: float) -> float:
    """PSNR-Y drop (dB) that quantization noise of Y-MSE ``mse_noise`` causes on an image the
    FP32 model restores at ``reference_psnr_db``: the noise is independent of the model's
    own error, so the MSEs add (checked on the held-out photos: INT8 noise of ~0.73
    costs 0.09 dB at 32.5 dB and 0.21 dB at 36.5 dB)."""
    if not math.isfinite(mse_noise):
        return float("inf")
    mse_ref = 255.0 ** 2 * 10 ** (-reference_psnr_db / 10)
    return 10 * math.log10(1 + mse_noise / mse_ref)


REFERENCE_PSNR_DB = 38.0  # an easy photograph: costs are largest where the model is best


def sensitivity(model, ranges, groups: dict[str, str], pairs, scale: int, budget_db: float,
                op_types: Sequence[str], progress: Progress | None = None,
                reference_psnr_db: float = REFERENCE_PSNR_DB) -> dict:
    """Per-group quantization noise and the float islands that keep the rest within
    ``budget_db`` (predicted PSNR-Y cost at ``reference_psnr_db``, see
    :func:`predicted_cost_db`).

    The cost of a group is measured against the FP32 outputs on ``pairs`` (noise, not
    error against ground truth: a PSNR drop against ground truth depends on how well the
    model already does on those tiles, which hides the noise on hard textures). Greedy:
    the noisiest group becomes float until the fully quantized rest is within budget.
    """
    say = progress or (lambda m: None)
    reference = _outputs(model, pairs)
    gts = [gt for _, gt in pairs]
    fp32_err = noise_mse(reference, gts, scale)
    by_group: dict[str, list[str]] = {}
    for node, group in groups.items():
        by_group.setdefault(group, []).append(node)
    noise = {}
    for group, nodes in sorted(by_group.items()):
        noise[group] = noise_mse(_outputs(quantize_qdq(model, ranges, nodes, op_types), pairs), reference, scale)
        say(f"sensitivity {group:<16} {len(nodes):3d} nodes  noise MSE {noise[group]:.4f}  "
            f"cost {predicted_cost_db(noise[group], reference_psnr_db):.4f} dB")
    order = sorted(noise, key=lambda g: -noise[g])
    islands: list[str] = []
    steps = []
    while True:
        nodes = [n for n, g in groups.items() if g not in islands]
        outs = _outputs(quantize_qdq(model, ranges, nodes, op_types), pairs)
        q = noise_mse(outs, reference, scale)
        cost = predicted_cost_db(q, reference_psnr_db)
        steps.append({"float_islands": list(islands), "quantized_nodes": len(nodes), "noise_mse": q,
                      "cost_db": cost, "tile_psnr_drop_db": _psnr_drop(fp32_err, noise_mse(outs, gts, scale))})
        say(f"float islands {islands or '[]'}: noise MSE {q:.4f}, cost {cost:.4f} dB")
        if cost <= budget_db or len(islands) == len(order):
            break
        islands.append(order[len(islands)])
    return {"reference_psnr_db": reference_psnr_db, "budget_db": budget_db,
            "tiles_fp32_psnr_y": 10 * math.log10(255.0 ** 2 / fp32_err) if fp32_err else float("inf"),
            "group_noise_mse": noise,
            "group_cost_db": {g: predicted_cost_db(v, reference_psnr_db) for g, v in noise.items()},
            "group_nodes": {g: len(v) for g, v in by_group.items()},
            "steps": steps, "float_islands": islands, "within_budget": steps[-1]["cost_db"] <= budget_db}


def _psnr_drop(mse_fp32: float, mse_int8: float) -> float:
    if not math.isfinite(mse_int8):
        return float("inf")
    return 10 * math.log10(mse_int8 / mse_fp32) if mse_fp32 > 0 else 0.0


# --------------------------------------------------------------------------- driver


def _load_source(source: str | os.PathLike, workdir: Path, say: Progress):
    """(graph to quantize, context graph path, spec, input kind)."""
    import onnx

    path = Path(source)
    if path.suffix == ".onnx":
        if not path.is_file():
            raise InputError(f"'{path}' does not exist; export it with hermes-export onnx")
        from .verify import context_graph_path

        spec = ModelSpec.from_onnx(path)
        if spec.precision != "fp32":
            raise InputError(f"'{path.name}' is a {spec.precision} graph; calibrate the FP32 export "
                             "(hermes-export onnx without --precision)")
        model = onnx.load(str(path))
        kind = "tensorrt-onnx" if _has_hermes_nodes(model) else "portable-onnx"
        return model, context_graph_path(path, spec), spec, kind
    from .onnx_export import ExportOptions, export_onnx

    say("exporting the FP32 graph with the hermes nodes in place (tensorrt target)")
    result = export_onnx(source, workdir / "fp32.onnx", ExportOptions(target="tensorrt"))
    return onnx.load(str(result.path)), result.context_path, result.spec, "model"


def calibrate_int8(source: str | os.PathLike, output: str | os.PathLike, options: Int8Options = Int8Options(),
                   images=None, ranges_path: str | os.PathLike | None = None,
                   report_path: str | os.PathLike | None = None,
                   progress: Progress | None = None) -> Int8Result:
    """Write ``output`` (INT8 Q/DQ graph), its context graph beside it and the ranges JSON.

    ``images``: calibration images (folder, files or photo names; ``None`` = the bundled
    training photographs). ``ranges_path``: reuse saved ranges (no images needed).
    """
    import onnx

    from ..atomic import atomic_path
    from ..calibration import TileReader, load_calibration_images, onnx_context_fn
    from .graph import attach_spec, save_model
    from .onnx_export import check

    say = progress or (lambda m: None)
    start = time.perf_counter()
    output = Path(output)
    if output.suffix != ".onnx":
        raise InputError(f"output must end in .onnx, got '{output.name}'")
    with tempfile.TemporaryDirectory(prefix="hermes-int8-") as tmp:
        model, ctx_path, spec, kind = _load_source(source, Path(tmp), say)
        op_types = tuple(options.op_types)
        if kind == "portable-onnx" and op_types != ("Conv",):
            raise InputError("a portable .onnx has the scan and DFT lowered to plain MatMuls that "
                             "cannot be told apart; quantize only Conv there (--op-types Conv) or "
                             "pass the model name/checkpoint or a --target tensorrt export")
        want = options.target or ("tensorrt" if kind == "tensorrt-onnx" else "portable")
        if want == "tensorrt" and kind == "portable-onnx":
            raise InputError("a portable .onnx cannot become a tensorrt-target graph; pass the model "
                             "name/checkpoint or a --target tensorrt export")
        ctx_fn = onnx_context_fn(ctx_path)

        def reader(seed: int, samples: int):
            return TileReader(load_calibration_images(images), ctx_fn, tile=options.tile,
                              samples=samples, batch=options.batch, scale=spec.scale, seed=seed,
                              multiple=spec.size_multiple, input_name=spec.input_name, context_name=spec.context_name)

        if ranges_path is not None:
            say(f"reusing calibration ranges from {ranges_path}")
            ranges, doc = load_ranges(ranges_path)
            calibration = doc.get("calibration", {})
            method = doc.get("method", options.method)
        else:
            calib = reader(options.seed, options.samples)
            say(f"calibrating ({options.method}) on {len(calib.plan)} tiles of "
                f"{options.tile[0]}x{options.tile[1]} from {len(calib.names)} images")
            ranges = calibrate_ranges(model, calib, options.method, op_types, options.percentile)
            calibration, method = calib.describe(), options.method
        groups = candidate_nodes(model, op_types, options.exclude)
        report: dict = {"source": str(source), "source_kind": kind, "method": method,
                        "op_types": list(op_types), "calibration": calibration,
                        "excluded": list(options.exclude)}
        islands: list[str] = []
        if options.sensitivity:
            held = reader(options.seed + 1_000_003, options.sensitivity_samples)
            pairs = list(held.pairs())
            say(f"sensitivity on {len(held.plan)} held-back tiles, budget {options.budget_db} dB")
            report["sensitivity"] = sensitivity(model, ranges, groups, pairs, spec.scale,
                                                options.budget_db, op_types, say)
            islands = report["sensitivity"]["float_islands"]
        nodes = [n for n, g in groups.items() if g not in islands]
        quantized = quantize_qdq(model, ranges, nodes, op_types)
        report["quantized_nodes"] = len(nodes)
        report["float_islands"] = islands
        report["groups"] = sorted(set(groups.values()))
        final = (inline_float_lowerings(quantized) if _has_hermes_nodes(quantized) and want == "portable"
                 else _strip_functions(quantized, model))
        target = "tensorrt" if _has_hermes_nodes(final) else "portable"
        context_name = output.stem + ".context.onnx"
        ranges_out = output.with_name(output.stem + ".ranges.json")
        new_spec = spec.replace(precision="int8", target=target, context_graph=context_name,
                                extra={**spec.extra, "int8": {"method": method, "op_types": list(op_types),
                                                              "float_islands": islands,
                                                              "quantized_nodes": len(nodes),
                                                              "ranges": ranges_out.name}})
        attach_spec(final, new_spec)
        final.producer_name = "hermes-deploy"
        check(final)
        ctx_model = onnx.load(str(ctx_path))
        save_ranges(ranges_out, ranges, method, calibration, op_types)
        if output.with_name(context_name).resolve() != Path(ctx_path).resolve():
            save_model(ctx_model, output.with_name(context_name))
        save_model(final, output)
    report["seconds"] = time.perf_counter() - start
    if report_path is not None:
        with atomic_path(Path(report_path)) as t:
            t.write_text(json.dumps(report, indent=2, default=float))
    return Int8Result(path=output, context_path=output.with_name(context_name), ranges_path=ranges_out,
                      spec=new_spec, report=report, seconds=report["seconds"])
