"""Engines: run and compile exported HERMES networks.

One runner per backend behind the runner interface of :mod:`hermes_deploy.runtime.runner`:
OpenVINO (:mod:`.ov_runner`), onnxruntime (:mod:`.ort_runner`), torch
(:mod:`.torch_runner`) and TensorRT (:mod:`.trt.runner`); :func:`.select.open_runner`
picks one (on a CPU by measurement, :mod:`.choose`) at a precision checked against the
backend and the CPU (:mod:`.precision`). Everything TensorRT -
compiling, the engine builder with its cache, manifests, plugins - lives in :mod:`.trt`.
Importing this package is light: optional backends (``tensorrt``, ``tensorrt_rtx``,
``onnxruntime``) are imported inside the functions that need them, and a missing one
raises :class:`hermes_deploy.errors.MissingDependencyError` naming the extra to install.
"""
