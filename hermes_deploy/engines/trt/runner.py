"""TensorRT / TensorRT-RTX runner with the interface of :class:`~.ort_runner.OrtRunner`.

``TrtRunner(engine_path)`` reads the engine manifest (``model.engine.json``) and refuses
an engine that does not fit before deserializing it (:func:`.manifest.check_manifest`:
TensorRT flavour and version, the GPU's compute capability, optionally the ONNX), then
needs a CUDA GPU and torch with CUDA for device memory and streams.

- ``context(image)`` runs the companion context graph (per-image statistics, tiny) in
  onnxruntime on CPU, as :class:`OrtRunner` does; the engine computes the tiles.
- ``infer(tiles, context)`` picks the first optimization profile whose min/max shapes
  contain this call's shapes, binds inputs and outputs as torch CUDA tensors, and runs
  ``execute_async_v3`` on the execution context's own CUDA stream. numpy in -> numpy
  out; torch CUDA tensors in -> a torch CUDA tensor out (no host copy).
- ``contexts=k`` makes ``k`` execution contexts per profile, each with its own stream,
  so ``k`` threads can run tiles concurrently (a context is taken from a pool per call).
- ``cuda_graph=True`` captures one CUDA graph per (context, shapes) after a warm-up
  run and replays it for later calls with the same shapes (static buffers).

WRITTEN AGAINST THE DOCUMENTED TensorRT 10 / TensorRT-RTX runtime API, NOT RUN: no GPU
was available where it was written. The load-time checks (manifest, GPU presence) and
the profile choice are tested on CPU.

Ideas from Polygraphy's ``TrtRunner`` (profile selection, output shapes from the
context after input shapes are set) and the TensorRT CUDA-graph guide (one warm-up run
before capture so shape-dependent allocations happen outside the graph).
"""

from __future__ import annotations

import ctypes
import queue
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...errors import HermesError, InputError
from ...optional import require
from . import manifest as mf

__all__ = ["TrtRunner", "pick_profile"]


def pick_profile(profiles: Sequence[dict[str, Sequence[Sequence[int]]]],
                 shapes: dict[str, Sequence[int]]) -> int:
    """Index of the first profile whose [min, max] contains every shape in ``shapes``.

    Raises :class:`InputError` listing the profiles when none fits. An engine with no
    dynamic input has no profiles; then 0 is returned.
    """
    if not profiles:
        return 0
    for index, profile in enumerate(profiles):
        if all(name in profile and len(shape) == len(profile[name][0]) and all(
                lo <= d <= hi for d, lo, hi in zip(shape, profile[name][0], profile[name][2]))
               for name, shape in shapes.items() if name in profile):
            return index
    shown = "; ".join(", ".join(f"{n} {tuple(t[0])}..{tuple(t[2])}" for n, t in p.items())
                      for p in profiles)
    wanted = ", ".join(f"{n} {tuple(s)}" for n, s in shapes.items())
    raise InputError(f"no optimization profile of the engine takes {wanted}; profiles: {shown}; "
                     "use tiles inside a profile or rebuild with hermes-export build --tile/--max")


def _torch_cuda() -> Any:
    torch = require("torch", purpose="Running TensorRT engines")
    if not torch.cuda.is_available():
        raise InputError("running a TensorRT engine needs a CUDA GPU and torch with CUDA; none is "
                         "visible here: on this machine pass the ONNX graph the engine was built "
                         "from instead (--model model.onnx --backend auto)")
    return torch


class _Slot:
    """One execution context with its stream, bound to one optimization profile."""

    def __init__(self, engine: Any, profile: int, torch: Any) -> None:
        self.context = engine.create_execution_context()
        if self.context is None:
            raise HermesError("TensorRT could not create an execution context (out of GPU memory?)")
        self.stream = torch.cuda.Stream()
        self.profile = profile
        if engine.num_optimization_profiles > 1:
            self.context.set_optimization_profile_async(profile, self.stream.cuda_stream)
        self.graphs: dict[tuple, tuple[Any, dict[str, Any], Any]] = {}


def _with_static_tile(spec, profiles):
    """An engine whose only profile fixes the input's height and width takes only that
    tile: tell the tiled runtime through the spec (the ONNX may have been dynamic)."""
    if spec is None or spec.tile is not None or len(profiles or []) != 1:
        return spec
    shapes = profiles[0].get(spec.input_name)
    if not shapes or len(shapes[0]) != 4:
        return spec
    lo, hi = shapes[0], shapes[2]
    if lo[2:] != hi[2:]:
        return spec
    return spec.replace(tile=(int(lo[2]), int(lo[3])))


class TrtRunner:
    def __init__(self, engine_path: str | Path, *, onnx_path: str | Path | None = None,
                 contexts: int = 1, cuda_graph: bool = False, context_threads: int = 0) -> None:
        self.engine_path = Path(engine_path)
        if not self.engine_path.is_file():
            raise InputError(f"engine '{self.engine_path}' does not exist; build it with "
                             "hermes-export build")
        self.manifest = mf.read_manifest(self.engine_path)
        trt, version = mf.running_trt(self.manifest.flavour)
        from .build import local_compute_capability

        mf.check_manifest(self.manifest, self.engine_path, flavour=self.manifest.flavour,
                          trt_version=version, compute_capability=local_compute_capability(),
                          onnx_path=onnx_path)
        torch = _torch_cuda()
        if contexts < 1:
            raise InputError(f"contexts must be >= 1, got {contexts}")
        self.spec = _with_static_tile(self.manifest.model_spec(), self.manifest.profiles)
        self.name = (f"{self.manifest.product} engine ({self.manifest.compute_capability or 'local GPU'}, "
                     f"{getattr(self.spec, 'precision', '?')})")
        self._torch, self._trt = torch, trt
        self._cuda_graph = cuda_graph
        from .compile import trt_logger

        self._runtime = trt.Runtime(trt_logger(trt, self.manifest.flavour))
        for lib in self.manifest.plugin_libraries:  # checked (exists, sha256) above
            # loaded into the process like trtexec --staticPlugins: the library registers
            # its creators with the TensorRT already loaded (cpp/plugins/README.md)
            ctypes.CDLL(mf.plugin_library_path(self.engine_path, lib["path"]), mode=ctypes.RTLD_GLOBAL)
        self._engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self._engine is None:
            raise mf.EngineMismatchError(
                f"{self.manifest.product} could not deserialize {self.engine_path.name}; "
                f"rebuild it: {mf.rebuild_command(self.manifest, self.engine_path)}")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        mode = trt.TensorIOMode
        self._inputs = [n for n in names if self._engine.get_tensor_mode(n) == mode.INPUT]
        self._outputs = [n for n in names if self._engine.get_tensor_mode(n) == mode.OUTPUT]
        n_profiles = max(1, self._engine.num_optimization_profiles)
        self._pools: list[queue.SimpleQueue] = []
        for profile in range(n_profiles):
            pool: queue.SimpleQueue = queue.SimpleQueue()
            for _ in range(contexts):
                pool.put(_Slot(self._engine, profile, torch))
            self._pools.append(pool)
        self._ctx_fn = None
        self._ctx_lock = threading.Lock()
        # the ONNX (and its context graph) named in the manifest sits beside the engine
        self._onnx_path = Path(onnx_path) if onnx_path else (
            self.engine_path.with_name(Path(self.manifest.onnx_name).name)
            if self.manifest.onnx_name else None)
        self._context_threads = context_threads

    def __enter__(self) -> "TrtRunner":
        return self

    def __exit__(self, *exc) -> None:
        self._pools = []
        self._engine = self._runtime = self._ctx_fn = None

    # ------------------------------------------------------------------ context graph

    def context(self, image: np.ndarray) -> np.ndarray:
        """(B, C, H, W) float32 [0, 1] -> (B, context_channels), via onnxruntime on CPU
        ((B, 0) for an engine built from a single graph, which computes its own)."""
        if self.spec is not None and self.spec.single_graph:
            return np.zeros((image.shape[0], 0), np.float32)
        with self._ctx_lock:
            if self._ctx_fn is None:
                from ...export.ort import context_fn, context_graph_path

                if self._onnx_path is None or self.spec is None:
                    raise InputError("the engine manifest names no ONNX with a context graph; "
                                     "pass onnx_path= to TrtRunner")
                self._ctx_fn = context_fn(context_graph_path(self._onnx_path, self.spec),
                                          self._context_threads)
        return self._ctx_fn(image)

    # ------------------------------------------------------------------ tiles

    def infer(self, tiles: Any, context: Any, noise: Any = None) -> Any:
        torch = self._torch
        numpy_in = isinstance(tiles, np.ndarray)
        s = self.spec
        x = self._device(tiles)
        if s is not None and (x.ndim != 4 or x.shape[1] != s.in_channels):
            raise InputError(f"expected (B, {s.in_channels}, H, W) tiles, got {tuple(x.shape)}")
        ctx = self._device(context)
        if ctx.shape[0] != x.shape[0]:
            ctx = ctx[:1].expand(x.shape[0], *ctx.shape[1:]).contiguous()
        feeds = {(s.input_name if s else self._inputs[0]): x}
        if s is not None and s.context_name in self._inputs:
            feeds[s.context_name] = ctx
        if s is not None and s.noise_name and s.noise_name in self._inputs:
            feeds[s.noise_name] = (self._device(noise) if noise is not None else
                                   torch.zeros((x.shape[0], 1, *x.shape[2:]), device=x.device))
        missing = [n for n in self._inputs if n not in feeds]
        if missing:
            raise InputError(f"engine inputs {missing} have no value; the manifest spec names "
                             f"{sorted(feeds)}")
        shapes = {n: tuple(t.shape) for n, t in feeds.items()}
        profile = pick_profile(self.manifest.profiles, shapes)
        slot = self._pools[profile].get()
        try:
            out = self._run(slot, feeds, shapes)
        finally:
            self._pools[profile].put(slot)
        return out.cpu().numpy() if numpy_in else out

    def _device(self, value: Any) -> Any:
        torch = self._torch
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.ascontiguousarray(value, np.float32))
        return value.to(device="cuda", dtype=torch.float32).contiguous()

    def _run(self, slot: _Slot, feeds: dict[str, Any], shapes: dict[str, tuple]) -> Any:
        torch, ctx = self._torch, slot.context
        key = tuple(sorted(shapes.items()))
        if self._cuda_graph and key in slot.graphs:
            graph, static_in, static_out = slot.graphs[key]
            with torch.cuda.stream(slot.stream):
                for name, tensor in feeds.items():
                    static_in[name].copy_(tensor, non_blocking=True)
                graph.replay()
                result = static_out.clone()
            slot.stream.synchronize()
            return result
        slot.stream.wait_stream(torch.cuda.current_stream())
        for name, tensor in feeds.items():
            if not ctx.set_input_shape(name, tensor.shape):
                raise InputError(f"engine refused shape {tuple(tensor.shape)} for input '{name}'")
            ctx.set_tensor_address(name, tensor.data_ptr())
        outputs = {}
        for name in self._outputs:
            shape = tuple(ctx.get_tensor_shape(name))
            outputs[name] = torch.empty(shape, dtype=self._torch_dtype(name), device="cuda")
            ctx.set_tensor_address(name, outputs[name].data_ptr())
        if not ctx.execute_async_v3(slot.stream.cuda_stream):
            raise HermesError(f"TensorRT failed to run {self.engine_path.name} on shapes {shapes}")
        slot.stream.synchronize()
        main = outputs[self.spec.output_name if self.spec else self._outputs[0]]
        if self._cuda_graph:
            self._capture(slot, key, feeds, outputs)
        return main

    def _capture(self, slot: _Slot, key: tuple, feeds: dict[str, Any], outputs: dict[str, Any]
                 ) -> None:
        """Capture this shape's run (after the warm-up just done) into a CUDA graph."""
        torch, ctx = self._torch, slot.context
        static_in = {n: t.clone() for n, t in feeds.items()}
        static_outs = {n: torch.empty_like(t) for n, t in outputs.items()}
        for name, tensor in static_in.items():
            ctx.set_tensor_address(name, tensor.data_ptr())
        for name, tensor in static_outs.items():
            ctx.set_tensor_address(name, tensor.data_ptr())
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=slot.stream):
            ctx.execute_async_v3(slot.stream.cuda_stream)
        main = self.spec.output_name if self.spec else self._outputs[0]
        slot.graphs[key] = (graph, static_in, static_outs[main])

    def _torch_dtype(self, name: str) -> Any:
        trt, torch = self._trt, self._torch
        mapping = {trt.float32: torch.float32, trt.float16: torch.float16,
                   trt.int32: torch.int32, trt.int64: torch.int64, trt.bool: torch.bool}
        return mapping[self._engine.get_tensor_dtype(name)]
