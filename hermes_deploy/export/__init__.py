"""torch -> ONNX: custom-op translations, lowerings, graph surgery, precision passes.

* :mod:`.custom_ops` - ONNX schemas of the ``hermes`` domain and the translations that
  keep the custom ops as plugin nodes (``tensorrt`` target).
* :mod:`.lowering` - the custom ops' standard-op lowerings and the one set of helpers
  that attach, strip and inline them.
* :mod:`.onnx_export` - :func:`export_onnx`, the library side of ``hermes-export onnx``.
* :mod:`.graph` - onnx-graphsurgeon hygiene and metadata.
* :mod:`.fp16` - the strongly typed FP16 pass with FP32 islands.
* :mod:`.int8` - calibrated INT8 Q/DQ graphs.
* :mod:`.ort` - onnxruntime sessions and the main + context :class:`~.ort.GraphPair`.

Checking a graph against the torch model lives above, in :mod:`hermes_deploy.checks`.
"""
