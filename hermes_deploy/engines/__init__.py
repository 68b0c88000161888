"""Engines: run and compile exported HERMES networks.

One runner per backend (torch, onnxruntime, TensorRT, TensorRT-RTX) behind one
interface, the engine builder (:mod:`hermes_deploy.engines.trt_build`), engine
manifests and TensorRT plugins. Importing this package is light: optional backends
(``tensorrt``, ``tensorrt_rtx``, ``onnxruntime``) are imported inside the functions
that need them, and a missing one raises
:class:`hermes_deploy.errors.MissingDependencyError` naming the extra to install.
"""
