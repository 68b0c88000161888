"""The contract of the ``hermes`` custom ops, in one place (torch-free, numpy-free).

The torch ops (:mod:`hermes_deploy.ops`), their ONNX schemas and translations
(:mod:`hermes_deploy.export.custom_ops`) and the TensorRT plugins
(:mod:`hermes_deploy.engines.trt.plugins`) all read names, domain, versions, inputs and
attributes from here, so the three cannot drift apart.

| node | inputs | attributes | output |
|---|---|---|---|
| ``hermes::SelectiveScan`` | x (b,l,h,p), dt (b,l,h), A (h), B (b,l,g,n), C (b,l,g,n) | chunk:int | y (b,l,h,p) |
| ``hermes::SpectralLowpass`` | x (b,c,h,w), cutoff (c), sharpness (c) | - | low (b,c,h,w) |

All tensors of one node share one float type (float32 or float16).
"""

from __future__ import annotations

from dataclasses import dataclass

DOMAIN = "hermes"  # ONNX domain of the custom nodes
DOMAIN_VERSION = 1  # ONNX opset version of that domain
PLUGIN_NAMESPACE = "hermes"  # TensorRT plugin namespace (node attribute plugin_namespace)
PLUGIN_VERSION = "1"  # TensorRT plugin version (node attribute plugin_version)
PLUGIN_ATTRIBUTES = ("plugin_version", "plugin_namespace")  # lookup fields, not op parameters
FLOAT_TYPES = ("tensor(float)", "tensor(float16)")


@dataclass(frozen=True)
class OpContract:
    """One custom op: its ONNX op type (= TensorRT plugin name) and I/O."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: tuple[str, ...]  # int attributes that parameterize the op
    doc: str

    @property
    def plugin_id(self) -> str:
        """``namespace::name``, the id TensorRT's plugin registry knows it by."""
        return f"{PLUGIN_NAMESPACE}::{self.name}"


SELECTIVE_SCAN = OpContract("SelectiveScan", ("x", "dt", "A", "B", "C"), ("y",), ("chunk",),
                            "SSD selective scan, scalar decay per head.")
SPECTRAL_LOWPASS = OpContract("SpectralLowpass", ("x", "cutoff", "sharpness"), ("low",), (),
                              "rFFT2 radial low-pass gate, irFFT2.")
OPS = (SELECTIVE_SCAN, SPECTRAL_LOWPASS)

SCAN_OP = SELECTIVE_SCAN.name
SPECTRAL_OP = SPECTRAL_LOWPASS.name

#: plugin name -> plugin version, as the ONNX nodes carry them
PLUGINS = {op.name: PLUGIN_VERSION for op in OPS}
