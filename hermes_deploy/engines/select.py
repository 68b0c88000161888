"""Open the right runner for a model: ``open_runner(model, backend="auto")``.

``model`` is a bundled name (``default``), a checkpoint (``.safetensors``), an exported
graph (``.onnx``) or a TensorRT engine (``.engine``). ``auto`` picks, in order:

- an ``.engine`` file: the TensorRT runner;
- an ``.onnx`` file: onnxruntime when it has a GPU execution provider (TensorRT or
  CUDA); on a CPU with both onnxruntime and OpenVINO installed, the one measured faster
  for this graph on this machine (:mod:`.choose`: measured once, kept in the cache);
  OpenVINO for ``bf16``; otherwise whichever is installed;
- a checkpoint or bundled name: the same choice on its ONNX export (deployed and
  exported once into the cache folder, ``$HERMES_CACHE_DIR`` or
  ``~/.cache/hermes-deploy``, keyed by the checkpoint hash), or torch when neither
  onnxruntime nor OpenVINO is installed.

``precision`` (``f32``, ``bf16``, ``int8``; None = the graph's own) is checked against the
backend and the CPU (:mod:`.precision`); ``--backend auto`` alone keeps that precision.
``precision="auto"`` (with ``backend="auto"``, on a CPU) takes the recommendation for
the FP32 graph on this CPU (:func:`.choose.recommended_runner`: the fastest backend and
precision within the held-out PSNR-Y budget, kept by ``bench --compare`` or measured
once): bf16 where the CPU has bf16 units and it passes, the kept INT8 graph where it
passes. The reason for the choice is returned with the runner, so the CLI can say it.
"""

from __future__ import annotations

from pathlib import Path

from ..cache import cache_dir, cache_key
from ..errors import InputError
from ..optional import has, require

BACKENDS = ("auto", "onnxruntime", "openvino", "torch", "tensorrt")
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def cached_onnx(model: str, say=None) -> Path:
    """Deploy + export ``model`` to ONNX once; later calls reuse the cached graph."""
    from ..export.onnx_export import ExportOptions, export_onnx

    path = cache_dir() / "onnx" / f"{Path(model).stem}-{cache_key(model)}.onnx"
    ctx = path.with_name(path.stem + ".context.onnx")
    if path.is_file() and ctx.is_file():
        if say:
            say(f"using the cached ONNX export {path.name}")
        return path
    if say:
        say(f"deploying and exporting '{model}' to ONNX (once; cached for later runs)")
    export_onnx(model, path, ExportOptions(), progress=say)
    return path


def _gpu_provider() -> str | None:
    """The GPU execution provider of this onnxruntime build, if it has one."""
    if not has("onnxruntime"):
        return None
    import onnxruntime

    return next((p for p in GPU_PROVIDERS if p in onnxruntime.get_available_providers()), None)


def _open_graph(path, backend: str, threads: int, precision: str | None, say=None):
    """``(runner, why)`` for an ONNX graph; ``auto`` as in the module doc."""
    if backend != "auto":
        return graph_runner(path, backend, threads, precision), f"{backend} requested"
    gpu = _gpu_provider()
    if gpu:
        return graph_runner(path, "onnxruntime", threads, precision), f"onnxruntime has the {gpu} here"
    if precision == "bf16" or not has("onnxruntime"):
        why = ("only OpenVINO has bf16 CPU kernels" if precision == "bf16" else
               "onnxruntime is not installed")
        require("openvino", purpose="The OpenVINO backend")
        return graph_runner(path, "openvino", threads, precision), why
    if not has("openvino"):
        return (graph_runner(path, "onnxruntime", threads, precision),
                "onnxruntime on the CPU (OpenVINO, faster on some CPUs, is not installed: "
                "pip install 'hermes-deploy[openvino]')")
    from ..export.ort import context_graph_path
    from ..spec import ModelSpec
    from .choose import measured_choice
    from .precision import resolve_precision

    spec = ModelSpec.from_onnx(path)  # refuse before measuring: a bad precision or graph pair
    resolve_precision(spec, precision, "onnxruntime")
    context_graph_path(path, spec)
    return measured_choice(path, lambda name: graph_runner(path, name, threads, precision), threads,
                           precision, say)


def _recommended(path, threads: int, say=None):
    """``(runner, why)`` for ``--precision auto`` on the FP32 graph ``path``."""
    gpu = _gpu_provider()
    if gpu:
        return (graph_runner(path, "onnxruntime", threads, None),
                f"onnxruntime has the {gpu} here (--precision auto measures CPU backends; "
                "the graph's own precision runs)")
    from ..spec import ModelSpec
    from .choose import recommended_runner

    if ModelSpec.from_onnx(path).precision == "int8":
        raise InputError("--precision auto starts from the FP32 graph and picks int8 itself (from "
                         "the INT8 graph bench --compare keeps); pass the FP32 graph, or drop "
                         "--precision to run this INT8 graph")
    return recommended_runner(path, lambda name, prec, graph: graph_runner(graph, name, threads, prec),
                              threads, say)


def graph_runner(path, backend: str, threads: int, precision: str | None):
    """The runner of ``backend`` for the graph ``path`` at ``precision``."""
    if backend == "openvino":
        from .ov_runner import OvRunner

        return OvRunner(path, threads=threads, precision=precision)
    require("onnxruntime", purpose="The onnxruntime backend")
    from .ort_runner import OrtRunner

    return OrtRunner(path, threads=threads, precision=precision)


def open_runner(model: str, backend: str = "auto", threads: int = 0, say=None,
                precision: str | None = None):
    """Return ``(runner, reason)`` for ``model`` on ``backend`` (see module doc)."""
    from .precision import AUTO, check_known

    if backend not in BACKENDS:
        raise InputError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    if threads < 0:
        raise InputError(f"--threads must be 0 (all cores) or more, got {threads}")
    check_known(precision)
    auto = precision == AUTO
    if auto and backend != "auto":
        raise InputError(f"--precision auto picks the backend too; use --backend auto with it "
                         f"(or name a precision for --backend {backend}: f32, bf16 or int8)")
    suffix = Path(model).suffix.lower()
    if suffix in (".engine", ".plan", ".trt"):
        if backend not in ("auto", "tensorrt"):
            raise InputError(f"'{Path(model).name}' is a TensorRT engine; use --backend tensorrt")
        if precision is not None:
            raise InputError("an engine's precision is fixed when it is built; drop --precision")
        from .trt.runner import TrtRunner

        return TrtRunner(model), "a TensorRT engine runs on TensorRT"
    if suffix == ".onnx":
        if backend in ("torch", "tensorrt"):
            raise InputError(f"'{Path(model).name}' is an ONNX graph; use --backend openvino or "
                             "onnxruntime (or build an engine with hermes-export build)")
        if auto:
            runner, why = _recommended(model, threads, say)
        else:
            runner, why = _open_graph(model, backend, threads, precision, say)
        return runner, f"an ONNX graph: {why}"
    if auto and not (has("onnxruntime") or has("openvino")):
        raise InputError("--precision auto chooses among onnxruntime and OpenVINO and neither is "
                         "installed; pip install 'hermes-deploy[openvino]'")
    if backend == "torch" or (backend == "auto" and not (has("onnxruntime") or has("openvino"))):
        if precision not in (None, "f32"):
            raise InputError(f"the torch backend runs f32 only; use --backend openvino for "
                             f"--precision {precision}")
        from .torch_runner import TorchRunner

        runner = TorchRunner(model, threads=threads)
        why = "requested" if backend == "torch" else "neither onnxruntime nor OpenVINO is installed"
        return runner, f"torch ({why})"
    if backend == "tensorrt":
        raise InputError("the tensorrt backend needs an engine; build one with hermes-export "
                         "build and pass the .engine file")
    graph = cached_onnx(model, say=say)
    if auto:
        runner, why = _recommended(graph, threads, say)
    else:
        runner, why = _open_graph(graph, backend, threads, precision, say)
    return runner, f"the exported ONNX: {why}"
