"""Open the right runner for a model: ``open_runner(model, backend="auto")``.

``model`` is a bundled name (``default``), a checkpoint (``.safetensors``), an exported
graph (``.onnx``) or a TensorRT engine (``.engine``). ``auto`` picks, in order:

- an ``.engine`` file: the TensorRT runner;
- an ``.onnx`` file: onnxruntime with the best execution provider present
  (TensorRT, CUDA, then CPU);
- a checkpoint or bundled name: onnxruntime when installed (the model is deployed and
  exported once into the cache folder, ``$HERMES_CACHE_DIR`` or
  ``~/.cache/hermes-deploy``, keyed by the checkpoint hash), otherwise torch.

The reason for the choice is returned with the runner, so the CLI can say it.
"""

from __future__ import annotations

from pathlib import Path

from ..cache import cache_dir, cache_key
from ..errors import InputError
from ..optional import has, require

BACKENDS = ("auto", "onnxruntime", "torch", "tensorrt")


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


def open_runner(model: str, backend: str = "auto", threads: int = 0, say=None):
    """Return ``(runner, reason)`` for ``model`` on ``backend`` (see module doc)."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    suffix = Path(model).suffix.lower()
    if suffix in (".engine", ".plan", ".trt"):
        if backend not in ("auto", "tensorrt"):
            raise InputError(f"'{Path(model).name}' is a TensorRT engine; use --backend tensorrt")
        from .trt.runner import TrtRunner

        return TrtRunner(model), "a TensorRT engine runs on TensorRT"
    if suffix == ".onnx":
        if backend in ("torch", "tensorrt"):
            raise InputError(f"'{Path(model).name}' is an ONNX graph; use --backend onnxruntime "
                             "(or build an engine with hermes-export build)")
        from .ort_runner import OrtRunner

        runner = OrtRunner(model, threads=threads)
        return runner, "an ONNX graph runs on onnxruntime"
    if backend == "torch" or (backend == "auto" and not has("onnxruntime")):
        from .torch_runner import TorchRunner

        runner = TorchRunner(model, threads=threads)
        why = "requested" if backend == "torch" else "onnxruntime is not installed"
        return runner, f"torch ({why})"
    if backend == "tensorrt":
        raise InputError("the tensorrt backend needs an engine; build one with hermes-export "
                         "build and pass the .engine file")
    require("onnxruntime", purpose="The onnxruntime backend")
    from .ort_runner import OrtRunner

    path = cached_onnx(model, say=say)
    runner = OrtRunner(path, threads=threads)
    return runner, "onnxruntime is the fastest backend installed here (exported ONNX)"
