"""TensorRT plugins for the ``hermes`` custom ops of ``--target tensorrt`` graphs.

- :mod:`.kernels`: Triton kernels of ``hermes::SelectiveScan`` (sequential over the
  sequence, one program per batch x head x state-row) and ``hermes::SpectralLowpass``
  (direct DFT as real matrix products, one program per image plane), tested against the
  torch reference ops under the Triton interpreter (``TRITON_INTERPRET=1``) on CPU.
- :mod:`.qdp`: the quickly deployable plugins (``tensorrt.plugin``: ``register`` for
  shapes/types/attributes, ``aot_impl`` returning the Triton kernels' PTX, so the engine
  embeds the kernels and runs without Python). Written against the TensorRT >= 10.9 API;
  **not run here**.

TensorRT-RTX cannot take these plugins (measured with tensorrt-rtx 1.7.1): its wheel ships
no ``tensorrt_rtx.plugin`` (the shim imports ``tensorrt_rtx_bindings.plugin``, which is
absent), its ``INetworkDefinition`` has no ``add_plugin_v3`` / ``add_plugin_v2``, and
when a Python ``IPluginV3`` creator is registered, its ONNX parser finds and creates the
plugin ("Successfully created plugin: SpectralLowpass") and then calls ``std::terminate``
inside ``libtensorrt_onnxparser_rtx`` ("terminate called without an active exception"),
killing the process. :func:`register_plugins` therefore refuses the RTX flavour with a
one-line error instead of registering anything.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ....contracts import PLUGIN_NAMESPACE, PLUGINS
from ....errors import PluginUnavailableError

__all__ = ["PLUGINS", "PluginUnavailableError", "register_plugins"]




def register_plugins(trt: Any, wanted: Sequence[Mapping[str, str]]) -> list[str]:
    """Make the plugins in ``wanted`` (name/version/namespace dicts) known to ``trt``.

    Full TensorRT: registers the quickly deployable plugins (:mod:`.qdp`) and returns
    their ids. TensorRT-RTX: raises :class:`PluginUnavailableError` (see module doc).
    """
    names = ", ".join(f"{p['namespace']}::{p['name']}" for p in wanted)
    unknown = [p for p in wanted
               if p["namespace"] != PLUGIN_NAMESPACE or PLUGINS.get(p["name"]) != p["version"]]
    if unknown:
        asked = ", ".join(f"{p['namespace']}::{p['name']} v{p['version']}" for p in unknown)
        have = ", ".join(f"{PLUGIN_NAMESPACE}::{n} v{v}" for n, v in PLUGINS.items())
        raise PluginUnavailableError(f"no plugin implements {asked}; this package has {have}")
    if "rtx" in getattr(trt, "__name__", ""):
        raise PluginUnavailableError(
            f"TensorRT-RTX {getattr(trt, '__version__', '')} cannot build plugin nodes ({names}): "
            "it has no tensorrt_rtx.plugin and no plugin layers; export with --target portable "
            "for TensorRT-RTX, or build this graph with --trt tensorrt")
    from . import qdp

    return qdp.register(trt)
