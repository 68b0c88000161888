"""The ONNX side of the ``hermes`` custom ops.

For each op (see :mod:`hermes_deploy.ops` for the torch side and the contracts):

* an ``onnx.defs.OpSchema`` in domain ``hermes`` (so ``onnx.checker`` accepts the node);
* a translation for ``torch.onnx.export(custom_translation_table=...)`` that emits one
  node shaped for TensorRT's plugin lookup: op type = plugin name, attributes
  ``plugin_version`` and ``plugin_namespace`` (the fields TensorRT's ONNX parser uses to
  find a registered plugin creator);
* its lowering to standard ops lives in :mod:`.lowering`.

Names, domain, versions and I/O come from :mod:`hermes_deploy.contracts`.
"""

from __future__ import annotations

import functools

from ..contracts import (
    DOMAIN,
    DOMAIN_VERSION,
    FLOAT_TYPES,
    PLUGIN_NAMESPACE,
    PLUGIN_VERSION,
    SCAN_OP,
    SELECTIVE_SCAN,
    SPECTRAL_LOWPASS,
    SPECTRAL_OP,
)

__all__ = ["DOMAIN", "DOMAIN_VERSION", "PLUGIN_NAMESPACE", "PLUGIN_VERSION", "SCAN_OP", "SPECTRAL_OP",
           "register_schemas", "translation_table"]


@functools.cache
def register_schemas() -> None:
    """Register the ``hermes`` op schemas with onnx (idempotent)."""
    import onnx
    from onnx.defs import OpSchema

    def params(names):
        return [OpSchema.FormalParameter(n, "T") for n in names]

    def plugin_attrs():
        return [OpSchema.Attribute("plugin_version", OpSchema.AttrType.STRING, "TensorRT plugin version",
                                   required=False),
                OpSchema.Attribute("plugin_namespace", OpSchema.AttrType.STRING,
                                   "TensorRT plugin namespace", required=False)]

    schemas = [
        OpSchema(SCAN_OP, DOMAIN, DOMAIN_VERSION, SELECTIVE_SCAN.doc,
                 inputs=params(SELECTIVE_SCAN.inputs), outputs=params(SELECTIVE_SCAN.outputs),
                 type_constraints=[("T", list(FLOAT_TYPES), "float tensors")],
                 attributes=[OpSchema.Attribute("chunk", OpSchema.AttrType.INT, "SSD chunk length")]
                 + plugin_attrs()),
        OpSchema(SPECTRAL_OP, DOMAIN, DOMAIN_VERSION, SPECTRAL_LOWPASS.doc,
                 inputs=params(SPECTRAL_LOWPASS.inputs), outputs=params(SPECTRAL_LOWPASS.outputs),
                 type_constraints=[("T", list(FLOAT_TYPES), "float tensors")], attributes=plugin_attrs()),
    ]
    for schema in schemas:
        try:
            onnx.defs.get_schema(schema.name, DOMAIN_VERSION, DOMAIN)
        except onnx.defs.SchemaError:
            onnx.defs.register_schema(schema)


def translation_table() -> dict:
    """custom_translation_table entries that keep the ops as single plugin nodes."""
    import torch
    from onnxscript import values

    register_schemas()  # onnxscript resolves the op through its schema
    hermes = values.Opset(DOMAIN, DOMAIN_VERSION)

    def scan(x, dt, A, B, C, chunk: int):
        return hermes.SelectiveScan(x, dt, A, B, C, chunk=chunk, plugin_version=PLUGIN_VERSION,
                                    plugin_namespace=PLUGIN_NAMESPACE)

    def spectral(x, cutoff, sharpness):
        return hermes.SpectralLowpass(x, cutoff, sharpness, plugin_version=PLUGIN_VERSION,
                                      plugin_namespace=PLUGIN_NAMESPACE)

    return {torch.ops.hermes.selective_scan.default: scan,
            torch.ops.hermes.spectral_lowpass.default: spectral}
