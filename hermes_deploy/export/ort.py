"""onnxruntime sessions for exported HERMES graphs: the one place that opens them.

* :func:`ort_session` - a session for any graph of this package: ``tensorrt``-target
  graphs get their lowerings attached, FP16 graphs run through the FP16 storage
  emulation (onnxruntime's CPU kernels would silently compute them in FP32), denormals
  flush to zero.
* :class:`GraphPair` - a main graph with its companion context graph, fed by the input
  names its :class:`~hermes_deploy.spec.ModelSpec` carries (``input``, ``context``,
  ``noise``), so no caller builds a feed by hand; a single graph (``single_graph`` in its
  spec) has no companion and computes its context inside.
* :func:`context_fn` - a context graph alone, as a function (calibration).

A leaf of :mod:`hermes_deploy.export`: it imports only the lowering and FP16 emulation
helpers, so runners, calibration and the checks can all use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError
from ..optional import require
from ..runtime.runner import model_feeds
from ..spec import ModelSpec

ContextFn = Callable[[np.ndarray], np.ndarray]  # (B, C, H, W) float32 -> (B, K) float32


def runnable_on_cpu(model):
    """FP16 graphs are checked on CPU through the round-trip emulation (see .fp16)."""
    from onnx import TensorProto

    from .fp16 import emulate_fp16

    fp16 = TensorProto.FLOAT16
    has_fp16 = any(i.data_type == fp16 for i in model.graph.initializer) or any(
        v.type.tensor_type.elem_type == fp16 for v in model.graph.value_info)
    return emulate_fp16(model) if has_fp16 else model


def ort_session(model_or_path, threads: int = 0, providers: list[str] | None = None):
    """An onnxruntime session (CPU unless ``providers`` says otherwise);
    ``tensorrt``-target graphs get their lowerings."""
    onnx = require("onnx", purpose="Reading ONNX graphs")
    ort = require("onnxruntime", purpose="Running ONNX graphs")
    from .lowering import has_hermes_nodes, with_lowerings

    model = onnx.load(str(model_or_path)) if not hasattr(model_or_path, "graph") else model_or_path
    if has_hermes_nodes(model):
        model = with_lowerings(model)
    model = runnable_on_cpu(model)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    # Flush denormals to zero: exp() of the scan's long decays lands in the denormal
    # range, where x86 arithmetic is slow; the change is below 1.2e-38 per value.
    opts.add_session_config_entry("session.set_denormal_as_zero", "1")
    return ort.InferenceSession(model.SerializeToString(), opts, providers=providers or ["CPUExecutionProvider"])


def context_graph_path(onnx_path: Path, spec: ModelSpec) -> Path | None:
    """The companion context graph named in ``spec``, which must sit next to the main graph
    (``None`` for a single graph, which computes its context inside).

    The pair is checked against each other first: ``onnx_path`` must be a main graph (a
    context graph given in its place is named as such), and the companion must be a
    context graph of the same model - same source checkpoint hash and context width - so
    a main graph beside another model's context graph fails here, in one line, instead
    of deep in a backend or, worse, running with the wrong context.
    """
    onnx_path = Path(onnx_path)
    inputs, outputs, _ = _graph_io(onnx_path)
    if spec.single_graph:
        if spec.context_name in inputs:
            raise InputError(f"'{onnx_path.name}' says it is a single graph but takes a "
                             f"'{spec.context_name}' input; re-export it with hermes-export onnx")
        return None
    if spec.context_name in outputs or spec.context_name not in inputs:
        main = (f"'{onnx_path.name[:-len('.context.onnx')]}.onnx'"
                if onnx_path.name.endswith(".context.onnx") else "the main graph exported with it")
        raise InputError(f"'{onnx_path.name}' is a per-image context graph, not a main graph; "
                         f"pass {main} instead")
    path = onnx_path.with_name(spec.context_graph or "")
    if not spec.context_graph or not path.is_file():
        raise InputError(f"context graph '{path.name}' is missing next to '{onnx_path.name}'; "
                         "keep it beside the main graph or re-export with hermes-export onnx")
    _check_companion(onnx_path, spec, path)
    return path


def _graph_io(path: Path) -> tuple[list[str], list[str], dict[str, int]]:
    """(input names, output names, {output name: size of dim 1 when fixed}) of a graph."""
    onnx = require("onnx", purpose="Reading ONNX graphs")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises several types for corrupt files
        raise InputError(f"'{path.name}' is not a readable ONNX file ({exc}); re-export it") from None
    widths = {}
    for out in model.graph.output:
        dims = out.type.tensor_type.shape.dim
        if len(dims) > 1 and dims[1].dim_value:
            widths[out.name] = dims[1].dim_value
    return [i.name for i in model.graph.input], [o.name for o in model.graph.output], widths


def _check_companion(main: Path, spec: ModelSpec, path: Path) -> None:
    _, outputs, widths = _graph_io(path)
    if spec.context_name not in outputs:
        raise InputError(f"'{path.name}' beside '{main.name}' is not a context graph (it has no "
                         f"'{spec.context_name}' output); re-export the pair with hermes-export onnx")
    other = ModelSpec.from_onnx(path)
    width = widths.get(spec.context_name, other.context_channels)
    same_source = not (spec.source_sha256 and other.source_sha256) or \
        spec.source_sha256 == other.source_sha256
    if not same_source or width != spec.context_channels or other.scale != spec.scale:
        why = (f"exported from checkpoint {other.source_sha256[:12]}, the main graph from "
               f"{spec.source_sha256[:12]}" if not same_source else
               f"{width} context values, the main graph takes {spec.context_channels}"
               if width != spec.context_channels else f"x{other.scale}, the main graph x{spec.scale}")
        raise InputError(f"context graph '{path.name}' belongs to another model than '{main.name}' "
                         f"({why}); re-export the pair with hermes-export onnx, or keep each "
                         "graph beside its own context graph")


def context_fn(context_graph: str | Path, threads: int = 0) -> ContextFn:
    """A context graph as a function ``(B, C, H, W) -> (B, K)``, run by onnxruntime."""
    session = ort_session(Path(context_graph), threads)
    name = session.get_inputs()[0].name

    def context(images: np.ndarray) -> np.ndarray:
        return session.run(None, {name: np.ascontiguousarray(images, np.float32)})[0]

    return context


def no_context(images: np.ndarray) -> np.ndarray:
    """The context of a single graph, which computes its own: (B, 0), fed to nothing."""
    return np.zeros((images.shape[0], 0), np.float32)


class GraphPair:
    """An exported main graph and its context graph, opened together.

    ``providers`` apply to the main graph; the context graph is small and runs once
    per image, so it stays on the CPU.
    """

    def __init__(self, path: str | Path, threads: int = 0, providers: list[str] | None = None) -> None:
        require("onnxruntime", purpose="Running ONNX graphs")
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"'{self.path}' does not exist; export it with hermes-export onnx")
        self.spec = ModelSpec.from_onnx(self.path)
        self.context_path = context_graph_path(self.path, self.spec)
        self.main = ort_session(self.path, threads, providers)
        self.context = (context_fn(self.context_path, threads) if self.context_path else
                        no_context)

    def feeds(self, tiles: np.ndarray, context: np.ndarray, noise: np.ndarray | None = None
              ) -> dict[str, np.ndarray]:
        """The main graph's feed; a graph that takes noise gets zeros unless given some."""
        return model_feeds(self.spec, tiles, context, noise)

    def run(self, tiles: np.ndarray, context: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        """(B, C, h, w) tiles and (B, K) context -> (B, C_out, s*h, s*w)."""
        return self.main.run(None, self.feeds(tiles, context, noise))[0]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Whole images: the context graph, then the main graph."""
        images = np.ascontiguousarray(images, np.float32)
        return self.run(images, self.context(images))
