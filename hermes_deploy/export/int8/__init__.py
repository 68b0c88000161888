"""INT8 Q/DQ ONNX: calibration, quantization with float islands, saved ranges.

TensorRT 10/11 takes INT8 from explicit ``QuantizeLinear``/``DequantizeLinear`` pairs in
the ONNX (strongly typed networks; the implicit calibrators are gone in 11). This pass
writes them with onnxruntime's static QDQ quantizer, configured for TensorRT (symmetric
INT8, weights per output channel, biases float, Q/DQ only on the inputs of the
quantized ops: see :mod:`.qdq`), and:

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

Ranges come from onnxruntime's calibrators over a
:class:`~hermes_deploy.calibration.TileReader` and are saved as JSON, so a rebuild
reuses them without images (``--ranges``; see :mod:`.ranges`).

One module per concern; this package is the thin driver (:func:`calibrate_int8`, with
:class:`Int8Options` and :class:`Int8Result`) that loads the source and chains them:

* :mod:`.nodes` - which nodes are quantized (op types) and their module groups;
* :mod:`.ranges` - calibration ranges (onnxruntime's calibrators), saved as JSON;
* :mod:`.qdq` - Q/DQ insertion configured for TensorRT, and its checks;
* :mod:`.sensitivity` - per-group quantization cost and the float islands.

Sensitivity (``sensitivity=True``): each module group is quantized alone and measured
on held-back calibration tiles; the most costly groups become float islands until the
rest is within ``budget_db`` of FP32 (see :mod:`.sensitivity`). Idea of
one-group-at-a-time sensitivity and float islands from NVIDIA's TensorRT Model
Optimizer and PyTorch-Quantization docs (layer-wise sensitivity analysis, partial
quantization); the code here is our own.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import InputError
from ...spec import ModelSpec
from ..lowering import has_hermes_nodes, inline_lowerings, strip_lowerings
from .nodes import DEFAULT_OP_TYPES, QUANTIZABLE_OP_TYPES, candidate_nodes, node_group
from .qdq import check_qdq, quantize_qdq
from .ranges import METHODS, RANGES_FORMAT, RANGES_VERSION, calibrate_ranges, load_ranges, save_ranges
from .sensitivity import REFERENCE_PSNR_DB, Progress, noise_mse, predicted_cost_db, sensitivity

__all__ = [
    "DEFAULT_OP_TYPES",
    "METHODS",
    "QUANTIZABLE_OP_TYPES",
    "RANGES_FORMAT",
    "RANGES_VERSION",
    "REFERENCE_PSNR_DB",
    "Int8Options",
    "Int8Result",
    "Progress",
    "calibrate_int8",
    "calibrate_ranges",
    "candidate_nodes",
    "check_qdq",
    "load_ranges",
    "node_group",
    "noise_mse",
    "predicted_cost_db",
    "quantize_qdq",
    "save_ranges",
    "sensitivity",
]


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
    single_graph: bool = False  # a model source is exported as one graph (no context graph)

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
    context_path: Path | None  # None for a single graph
    ranges_path: Path
    spec: ModelSpec
    report: dict = field(default_factory=dict)
    seconds: float = 0.0


def _load_source(source: str | os.PathLike, workdir: Path, say: Progress, single_graph: bool = False):
    """(graph to quantize, context graph path (None for a single graph), spec, input kind)."""
    import onnx

    path = Path(source)
    if path.suffix == ".onnx":
        if not path.is_file():
            raise InputError(f"'{path}' does not exist; export it with hermes-export onnx")
        from ..ort import context_graph_path

        spec = ModelSpec.from_onnx(path)
        if spec.precision != "fp32":
            raise InputError(f"'{path.name}' is a {spec.precision} graph; calibrate the FP32 export "
                             "(hermes-export onnx without --precision)")
        model = onnx.load(str(path))
        kind = "tensorrt-onnx" if has_hermes_nodes(model) else "portable-onnx"
        return model, context_graph_path(path, spec), spec, kind
    from ..onnx_export import ExportOptions, export_onnx

    say("exporting the FP32 graph with the hermes nodes in place (tensorrt target)")
    result = export_onnx(source, workdir / "fp32.onnx",
                         ExportOptions(target="tensorrt", single_graph=single_graph))
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

    from ...atomic import write_text
    from ...calibration import TileReader, load_calibration_images
    from ..ort import context_fn
    from ..graph import attach_spec, save_models
    from ..onnx_export import check

    say = progress or (lambda m: None)
    start = time.perf_counter()
    output = Path(output)
    if output.suffix != ".onnx":
        raise InputError(f"output must end in .onnx, got '{output.name}'")
    with tempfile.TemporaryDirectory(prefix="hermes-int8-") as tmp:
        model, ctx_path, spec, kind = _load_source(source, Path(tmp), say, options.single_graph)
        op_types = tuple(options.op_types)
        if kind == "portable-onnx" and op_types != ("Conv",):
            raise InputError("a portable .onnx has the scan and DFT lowered to plain MatMuls that "
                             "cannot be told apart; quantize only Conv there (--op-types Conv) or "
                             "pass the model name/checkpoint or a --target tensorrt export")
        want = options.target or ("tensorrt" if kind == "tensorrt-onnx" else "portable")
        if want == "tensorrt" and kind == "portable-onnx":
            raise InputError("a portable .onnx cannot become a tensorrt-target graph; pass the model "
                             "name/checkpoint or a --target tensorrt export")
        ctx_fn = context_fn(ctx_path) if ctx_path else None  # a single graph computes its own

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
        final = (inline_lowerings(quantized, fold=False) if has_hermes_nodes(quantized) and want == "portable"
                 else strip_lowerings(quantized, model))
        target = "tensorrt" if has_hermes_nodes(final) else "portable"
        context_name = output.stem + ".context.onnx" if ctx_path else None
        ranges_out = output.with_name(output.stem + ".ranges.json")
        new_spec = spec.replace(precision="int8", target=target, context_graph=context_name,
                                extra={**spec.extra, "int8": {"method": method, "op_types": list(op_types),
                                                              "float_islands": islands,
                                                              "quantized_nodes": len(nodes),
                                                              "ranges": ranges_out.name}})
        attach_spec(final, new_spec)
        final.producer_name = "hermes-deploy"
        check(final)
        save_ranges(ranges_out, ranges, method, calibration, op_types)
        pair = [(final, output)]
        if ctx_path and output.with_name(context_name).resolve() != Path(ctx_path).resolve():
            pair.insert(0, (onnx.load(str(ctx_path)), output.with_name(context_name)))
        save_models(*pair)
    report["seconds"] = time.perf_counter() - start
    if report_path is not None:
        write_text(Path(report_path), json.dumps(report, indent=2, default=float),
                   what="the calibration report")
    return Int8Result(path=output, context_path=output.with_name(context_name) if context_name else None,
                      ranges_path=ranges_out,
                      spec=new_spec, report=report, seconds=report["seconds"])
