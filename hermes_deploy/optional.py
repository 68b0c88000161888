"""One guard for optional packages (after Polygraphy's ``mod/importer.py``).

``require("onnxruntime", extra="onnx", purpose="Running ONNX models")`` imports and
returns the module, or raises :class:`~hermes_deploy.errors.MissingDependencyError`
whose one-line message names the extra to install. ``has(module)`` asks without
importing. Every extra named here exists in ``pyproject.toml`` (tested); a core
dependency (torch, pyvips) names no extra.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import MissingDependencyError

# the extra that provides each optional top-level package
EXTRAS = {
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "onnxscript": "onnx",
    "onnx_graphsurgeon": "onnx",
    "tensorrt_rtx": "trt-rtx",
    "tensorrt": "tensorrt",
    "triton": "plugins",
    "openvino": "openvino",
    "ray": "ray",  # Ray Data batch inference (hermes-export infer --ray)
    "tritonclient": "triton-server",  # Triton Inference Server: client and model-config protobuf
    "av": "video",  # PyAV: decoding, encoding and remuxing video
    "pyvips": "",  # core dependencies: "" = no extra, the install itself is incomplete
    "torch": "",
}

# pip distribution names where they differ from the module name
PACKAGES = {"onnx_graphsurgeon": "onnx-graphsurgeon", "tensorrt_rtx": "tensorrt-rtx",
            "ray": "ray[data]"}


def has(module: str) -> bool:
    """Whether ``module`` can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, *, extra: str | None = None, purpose: str) -> ModuleType:
    """Import ``module`` or raise a one-line error naming the extra that installs it.

    ``purpose`` is what needs it ("Building TensorRT-RTX engines"). A package that is
    present but fails to load its native library counts as missing too (pyvips does
    that with ``OSError``).
    """
    try:
        return importlib.import_module(module)
    except (ImportError, OSError):
        top = module.split(".")[0]
        raise MissingDependencyError(PACKAGES.get(top, top), EXTRAS[top] if extra is None else extra, purpose) from None
