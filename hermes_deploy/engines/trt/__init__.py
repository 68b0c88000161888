"""Everything TensorRT, in one folder (after Polygraphy's ``backend/trt/``).

- :mod:`.flavour`: :class:`Flavour` - ``tensorrt-rtx`` or ``tensorrt``, the one name of
  a TensorRT variant everywhere (CLI ``--trt``, build options, manifests).
- :mod:`.compile`: parse an ONNX and compile it into an engine (both flavours).
- :mod:`.build`: ``hermes-export build`` - compile with a manifest and an engine cache.
- :mod:`.manifest`: the facts an engine was built from, and the checks that refuse a
  stale or mismatched engine.
- :mod:`.runner`: :class:`~.runner.TrtRunner`, engines behind the runner interface.
- :mod:`.plugins`: TensorRT plugins for the ``hermes`` custom ops.

Importing this package imports no TensorRT: each flavour's module is loaded by the
code that needs it (:meth:`Flavour.load`).
"""

from .flavour import Flavour, normalize_capability

__all__ = ["Flavour", "normalize_capability"]
