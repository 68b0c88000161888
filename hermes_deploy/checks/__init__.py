"""Checks of what the toolkit produced, against the torch model it came from.

* :mod:`.verify` - ``hermes-export verify``: an exported graph (with its context graph)
  in onnxruntime against the torch deploy model, max abs error and PSNR per case.
* :mod:`.evaluate` - ``hermes-export eval``: the quality harness on a model or a graph.

They sit above ``export`` and ``engines`` because they use both sides.
"""
