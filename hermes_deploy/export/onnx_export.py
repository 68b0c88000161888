"""``export_onnx``: a HERMES model -> main ONNX graph + companion context graph.

Two graphs are written (the pair):

* ``NAME.onnx`` - inputs ``input`` (B, C, H, W) in [0, 1] and ``context``
  (B, context_channels) [+ ``noise`` (B, 1, H, W) when the generative expert is kept];
  output ``output`` (B, C, sH, sW).
* ``NAME.context.onnx`` - input ``input`` (any size; a downscaled copy of a large image
  is fine), output ``context``. The runtime computes it once per image and feeds it to
  every tile, so all tiles of an image route the same way.

``single_graph=True`` (``--single-graph``) writes one graph instead, for tools that call a
network with one image and take one image back (vs-mlrt, chaiNNer's ONNX nodes,
hand-written onnxruntime/OpenVINO scripts): input ``input`` [+ ``noise``], output
``output``, the context computed inside the graph from the input it receives. On a whole
image it equals the pair; a caller that tiles gets one routing per tile instead of one per
image. Its ModelSpec says ``single_graph: true`` and names no context graph.

Targets: ``portable`` exports the custom ops through their standard-op lowerings (the
graph holds only default-domain ops); ``tensorrt`` keeps them as ``hermes`` plugin nodes
(:mod:`.custom_ops`). Opset 18 by default (ORT's DFT misbehaves with dynamic shapes at
20, and nothing here needs more). Uses the dynamo exporter (``torch.onnx.export(...,
dynamo=True)``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..cache import source_hash
from ..errors import InputError
from ..spec import ModelSpec
from . import custom_ops
from .graph import ExportError, attach_spec, clean_graph, save_models

TARGETS = ("portable", "tensorrt")
PRECISIONS = ("fp32", "fp16")


@dataclass(frozen=True)
class ExportOptions:
    target: str = "portable"
    opset: int = 18
    tile: tuple[int, int] | None = None  # fixed input H, W; None = dynamic
    batch: int | None = None  # fixed batch; None = dynamic
    precision: str = "fp32"
    keep_generative: bool = False
    fp16_islands: bool = True  # False: only structural FP32 nodes (to show what breaks)
    single_graph: bool = False  # one graph, context computed inside (module doc)

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise InputError(f"unknown target '{self.target}'; choose one of {TARGETS}")
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown precision '{self.precision}'; choose one of {PRECISIONS} "
                             "(INT8 comes from hermes-export calibrate)")
        if not 17 <= self.opset <= 21:
            raise InputError(f"opset {self.opset} is not supported; use 17-21 (18 recommended)")
        if self.tile is not None and (len(self.tile) != 2 or min(self.tile) < 1):
            raise InputError(f"tile must be two positive sizes HxW, got {self.tile}")
        if self.batch is not None and self.batch < 1:
            raise InputError(f"batch must be >= 1, got {self.batch}")


@dataclass
class ExportResult:
    path: Path
    context_path: Path | None  # None for a single graph
    spec: ModelSpec
    seconds: float
    node_counts: dict[str, int] = field(default_factory=dict)
    fp16_report: dict | None = None



@contextlib.contextmanager
def _quiet():
    """The exporter prints progress lines and warnings; keep the CLI output ours."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _export(module, args, names_in, names_out, dynamic_shapes, options: ExportOptions):
    import torch

    from .. import ops

    table = custom_ops.translation_table() if options.target == "tensorrt" else None
    mode = ops.lowered_ops() if options.target == "portable" else contextlib.nullcontext()
    try:
        with mode, torch.no_grad(), _quiet():
            program = torch.onnx.export(module, args, dynamo=True, opset_version=options.opset,
                                        dynamic_shapes=dynamic_shapes, input_names=names_in,
                                        output_names=names_out, custom_translation_table=table,
                                        verbose=False)
    except Exception as exc:  # the exporter raises many types; one line for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"torch.onnx export failed: {first}") from exc
    model = program.model_proto
    if options.target == "tensorrt":
        custom_ops.register_schemas()
        if not any(o.domain == custom_ops.DOMAIN for o in model.opset_import):
            model.opset_import.append(_opset(custom_ops.DOMAIN, custom_ops.DOMAIN_VERSION))
    return clean_graph(model)


def _opset(domain: str, version: int):
    from onnx import helper

    return helper.make_opsetid(domain, version)


def describe_model(model, source: str = "") -> ModelSpec:
    """The ModelSpec of a deploy-form torch model (FP32, dynamic shapes, no graph yet)."""
    from ..model.stats import effective_receptive_radius

    cfg = model.config
    radius = effective_receptive_radius(model)
    overlap = max(cfg.size_multiple, -(-radius // 8) * 8)
    return ModelSpec(
        scale=cfg.scale, in_channels=cfg.in_channels, out_channels=cfg.in_channels,
        size_multiple=cfg.size_multiple, min_size=1, tile_overlap=overlap,
        receptive_radius=radius, context_channels=cfg.context_channels,
        precision="fp32", io_dtype="float32", target="portable", opset=18,
        fidelity=cfg.fidelity, noise_name=None, source_sha256=source_hash(source) if source else "",
        package_version=__version__, preset=cfg.preset)


def export_onnx(source: str | os.PathLike, output: str | os.PathLike,
                options: ExportOptions = ExportOptions(), progress=None) -> ExportResult:
    """Export ``source`` (bundled name, checkpoint or preset) to ONNX; see module doc."""
    import torch

    from ..model.api import load_model
    from ..model.deploy import deploy

    say = progress or (lambda msg: None)
    start = time.perf_counter()
    output = Path(output)
    if output.suffix != ".onnx":
        raise InputError(f"output must end in .onnx, got '{output.name}'")
    model = load_model(str(source))
    fidelity = not options.keep_generative
    if not model.config.deploy:
        model = deploy(model, fidelity=fidelity)
    elif model.config.fidelity and options.keep_generative:
        raise InputError("this deploy checkpoint has no generative expert; export the training "
                         "checkpoint to use --keep-generative")
    cfg = model.config
    say("measuring the receptive field")
    base_spec = describe_model(model, str(source))

    class Main(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, input, context, noise=None):
            return self.net(input, context=context, noise=noise)

    class Single(torch.nn.Module):
        """Context from the input it is given: one graph, one image in, one image out."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, input, noise=None):
            return self.net(input, noise=noise)

    class Context(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, input):
            return self.net.compute_context(input)

    # Example sizes avoid 0/1, which torch.export would specialize.
    b = options.batch or 2
    h, w = options.tile or (64, 48)
    x = torch.rand(b, cfg.in_channels, h, w)
    ctx = model.compute_context(x)
    dim = torch.export.Dim
    batch_dim = None if options.batch else dim("batch", min=1, max=1024)
    hw = {} if options.tile else {2: dim("height", min=1, max=16384), 3: dim("width", min=1, max=16384)}
    img_dims = {**({0: batch_dim} if batch_dim else {}), **hw}
    if options.single_graph:
        names_in, args = ["input"], (x,)
        shapes: dict = {"input": img_dims or None}
        module = Single(model)
    else:
        names_in, args = ["input", "context"], (x, ctx)
        shapes = {"input": img_dims or None, "context": ({0: batch_dim} if batch_dim else None)}
        module = Main(model)
    if not fidelity:
        names_in.append("noise")
        args = (*args, torch.zeros(b, 1, h, w))
        shapes["noise"] = img_dims or None
    # FP16 is planned on the graph that still holds the hermes nodes (FP32 islands by
    # construction); the portable target inlines their lowerings afterwards.
    graph_target = "tensorrt" if options.precision == "fp16" else options.target
    say(f"exporting the {'single' if options.single_graph else 'main'} graph ({graph_target})")
    main = _export(module.eval(), args, names_in, ["output"], shapes,
                   ExportOptions(target=graph_target, opset=options.opset))
    context_model = context_path = None
    if not options.single_graph:
        say("exporting the context graph")
        ctx_dims = {0: dim("batch", min=1, max=1024), 2: dim("height", min=1, max=16384),
                    3: dim("width", min=1, max=16384)}
        context_model = _export(Context(model).eval(), (torch.rand(2, cfg.in_channels, 40, 56),),
                                ["input"], ["context"], {"input": ctx_dims},
                                ExportOptions(target="portable", opset=options.opset))
        context_path = output.with_name(output.stem + ".context.onnx")
    spec = base_spec.replace(
        precision=options.precision, target=options.target, opset=options.opset,
        fidelity=fidelity, noise_name=None if fidelity else "noise",
        tile=tuple(options.tile) if options.tile else None, batch=options.batch,
        context_graph=context_path.name if context_path else None,
        single_graph=options.single_graph)
    fp16_report = None
    if options.precision == "fp16":
        say("converting to FP16 with FP32 islands (measuring activation ranges)")
        from .fp16 import make_fp16

        main, fp16_report = make_fp16(main, model, options, islands=options.fp16_islands)
    attach_spec(main, spec)
    check(main)
    if context_model is None:
        save_models((main, output))
    else:
        attach_spec(context_model, spec.replace(precision="fp32", target="portable"))
        check(context_model)
        save_models((context_model, context_path), (main, output))
    counts: dict[str, int] = {}
    for node in main.graph.node:
        key = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
        counts[key] = counts.get(key, 0) + 1
    return ExportResult(path=output, context_path=context_path, spec=spec,
                        seconds=time.perf_counter() - start, node_counts=counts,
                        fp16_report=fp16_report)


def check(model) -> None:
    """onnx.checker full check (with the ``hermes`` schemas registered)."""
    import onnx

    custom_ops.register_schemas()
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ExportError(f"exported graph fails onnx.checker: {first}") from None
