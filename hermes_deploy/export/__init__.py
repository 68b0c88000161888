"""torch -> ONNX: custom-op translations, graph surgery, precision passes, verification.

* :mod:`.custom_ops` - ONNX schemas of the ``hermes`` domain, translations for the
  ``tensorrt`` target, lowering functions used to run such graphs.
* :mod:`.onnx_export` - :func:`export_onnx`, the library side of ``hermes-export onnx``.
* :mod:`.graph` - onnx-graphsurgeon hygiene and metadata.
* :mod:`.fp16` - the strongly typed FP16 pass with FP32 islands.
* :mod:`.verify` - onnxruntime against the torch deploy model.
"""
