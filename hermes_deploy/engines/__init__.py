"""Engines: run and compile exported HERMES networks.

One runner per backend (torch, onnxruntime, TensorRT, TensorRT-RTX) behind one
interface, the engine builder (:mod:`.trt_build`, and :mod:`.builder` with manifest and
cache), engine manifests (:mod:`.manifest`), TensorRT plugins (:mod:`.plugins`) and the
TensorRT runner (:mod:`.trt_runner`). Importing this package is light: optional backends
(``tensorrt``, ``tensorrt_rtx``, ``onnxruntime``) are imported inside the functions
that need them, and a missing one raises
:class:`hermes_deploy.errors.MissingDependencyError` naming the extra to install.
"""
