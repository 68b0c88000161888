"""OpenVINO runner for exported HERMES graphs (main graph + context graph), CPU.

``OvRunner(path, threads, precision)`` reads the same ONNX pair and ModelSpec as
:class:`~.ort_runner.OrtRunner` and implements the runner interface of
:mod:`hermes_deploy.runtime.runner`. A ``tensorrt``-target graph runs through its
standard-op lowerings (inlined before OpenVINO reads it).

Each tile shape is compiled once more as a static-shape graph and kept (up to
``MAX_SHAPES`` per runner; later shapes run on the dynamic graph): every tile of an
image has the same shape, and OpenVINO's CPU plugin runs a static graph much faster
(measured on an AMX Xeon, two threads, one 256x256 tile: f32 0.448 -> 0.329 s, bf16
0.263 -> 0.187 s; onnxruntime f32 0.513 s). The dynamic graph is compiled at load, so
a graph OpenVINO cannot compile fails there.

The inference precision is always set explicitly (:mod:`.precision`): OpenVINO's CPU
plugin silently computes in bf16 on CPUs that have bf16 units when no precision is
given (measured here: an AVX512-BF16 CPU reports ``INFERENCE_PRECISION_HINT`` bfloat16
by default), which costs about 1e-2 of accuracy. The context graph always runs in f32:
it runs once per image and decides the routing of every tile. Torch-free.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..optional import require
from ..runtime.runner import checked_inputs, model_feeds, whole_image_restorer
from ..spec import ModelSpec
from .precision import resolve_precision


def float_hint(precision: str) -> str:
    """OpenVINO's inference precision hint for our precision (f32, bf16: same names).

    For int8 it is the precision of the ops left unquantized - the scan, the DFT,
    attention and the sensitivity islands. Where the CPU has bf16 units they run in
    bf16: on an AMX Xeon, two threads, one 256x256 tile of the default model with its
    sensitivity islands, 0.261 -> 0.156 s (onnxruntime f32: 0.452 s), and the held-out
    PSNR-Y loss against f32 went from 0.011 to 0.019 dB (bound 0.1 dB; BENCHMARKS.md).
    Without bf16 units they stay f32.
    """
    if precision != "int8":
        return precision
    from ..cpu import has_precision

    return "bf16" if has_precision("bf16") else "f32"


def _read(core, path: Path, quantized: bool):
    """An OpenVINO model from an exported ONNX file, custom ops lowered if present.

    The lowerings are inlined and constant-folded, as the portable export does (left
    unfolded, the inlined graph ran slower than the portable one in one contended
    measurement here: 1.14 against 0.96 s per 256x256 tile); a Q/DQ graph is not folded,
    which would turn its ``DQ(int8 weight)`` back into float weights.
    """
    onnx = require("onnx", purpose="Reading ONNX graphs")
    from ..export.lowering import has_hermes_nodes, inline_lowerings

    model = onnx.load(str(path))
    if not has_hermes_nodes(model):
        return core.read_model(str(path))
    with tempfile.TemporaryDirectory(prefix="hermes-ov-") as tmp:
        lowered = Path(tmp) / path.name
        onnx.save(inline_lowerings(model, fold=not quantized), str(lowered))
        return core.read_model(str(lowered))


MAX_SHAPES = 8  # static-shape compiles kept per runner (about a second and a few MB each)


class OvRunner:
    def __init__(self, path: str | Path, threads: int = 0, precision: str | None = None) -> None:
        ov = require("openvino", purpose="The OpenVINO backend")
        from ..export.ort import context_graph_path

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"'{self.path}' does not exist; export it with hermes-export onnx")
        self.spec = ModelSpec.from_onnx(self.path)
        self.precision = resolve_precision(self.spec, precision, "openvino")
        core = ov.Core()
        base = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}
        if threads:
            base["INFERENCE_NUM_THREADS"] = str(threads)
        quantized = self.precision == "int8"
        self._core = core
        self._config = {**base, "INFERENCE_PRECISION_HINT": float_hint(self.precision)}
        self._model = _read(core, self.path, quantized)
        self._main = core.compile_model(self._model, "CPU", self._config)
        self._by_shape: dict[tuple[int, int, int], object] = {}
        context_path = context_graph_path(self.path, self.spec)
        self._ctx = self._ctx_req = None  # a single graph computes its context inside
        if context_path is not None:
            self._ctx = core.compile_model(_read(core, context_path, False), "CPU",
                                           {**base, "INFERENCE_PRECISION_HINT": "f32"})
            self._ctx_req = self._ctx.create_infer_request()
        self._main_req = self._main.create_infer_request()
        self._lock = threading.Lock()  # one infer request each: callers take turns
        self.name = (f"openvino (CPU, {self.precision}"
                     + (f", float ops {float_hint('int8')})" if quantized else ")"))

    def __enter__(self) -> "OvRunner":
        return self

    def __exit__(self, *exc) -> None:
        self._main_req = self._ctx_req = self._main = self._ctx = self._model = None
        self._by_shape = {}

    def context(self, image: np.ndarray) -> np.ndarray:
        """(B, C, H, W) float32 [0, 1] -> (B, context_channels)."""
        if self._ctx_req is None:
            return np.zeros((image.shape[0], 0), np.float32)
        with self._lock:
            out = self._ctx_req.infer([np.ascontiguousarray(image, np.float32)])
            return np.array(next(iter(out.values())), np.float32)

    def infer(self, tiles: np.ndarray, context: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        tiles, context = checked_inputs(self.spec, tiles, context)
        feeds = model_feeds(self.spec, tiles, context, noise)
        with self._lock:
            out = self._request(tiles.shape).infer(feeds)
            return np.array(next(iter(out.values())), np.float32)

    def _request(self, shape):
        """The infer request of the static graph for this tile shape (see module doc)."""
        b, _, h, w = (int(v) for v in shape)
        key = (b, h, w)
        request = self._by_shape.get(key)
        if request is None:
            if len(self._by_shape) >= MAX_SHAPES:
                return self._main_req
            request = self.compile_static(b, h, w)[0].create_infer_request()
            self._by_shape[key] = request
        return request

    def compile_static(self, batch: int, height: int, width: int, extra: dict | None = None):
        """``(compiled model, model)`` of the main graph reshaped to one static tile
        shape, compiled with this runner's config (plus ``extra``, e.g. PERF_COUNT)."""
        model = self._model.clone()
        shapes = {self.spec.input_name: [batch, self.spec.in_channels, height, width]}
        if not self.spec.single_graph:
            shapes[self.spec.context_name] = [batch, self.spec.context_channels]
        if self.spec.noise_name:
            shapes[self.spec.noise_name] = [batch, 1, height, width]
        model.reshape(shapes)
        return self._core.compile_model(model, "CPU", {**self._config, **(extra or {})}), model

    def restorer(self):
        """HxWxC -> sHxsWxC on the whole image (for the quality harness)."""
        return whole_image_restorer(self)
