"""The runtime precision of a CPU backend: ``f32``, ``bf16`` or ``int8``.

Precision is a property of the graph and the backend together:

* ``f32`` - an FP32 (or FP16-storage) graph computed in FP32;
* ``bf16`` - the same graph, OpenVINO computing in bfloat16 where the CPU has
  AVX512-BF16/AMX-BF16 (onnxruntime has no bf16 CPU kernels);
* ``int8`` - an INT8 Q/DQ graph from ``hermes-export calibrate``, run by the backend's
  low-precision kernels (OpenVINO needs VNNI/AMX-INT8 for them).

``None`` means the graph's own: ``int8`` for a Q/DQ graph, ``f32`` otherwise. A choice
that cannot hold is a one-line error, never a silent fallback.
"""

from __future__ import annotations

from ..cpu import PRECISIONS, check_precision
from ..errors import InputError
from ..spec import ModelSpec


def resolve_precision(spec: ModelSpec, precision: str | None, backend: str) -> str:
    """The precision ``backend`` runs ``spec``'s graph at; see the module doc."""
    if precision is not None and precision not in PRECISIONS:
        raise InputError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")
    graph_int8 = spec.precision == "int8"
    chosen = precision or ("int8" if graph_int8 else "f32")
    if chosen == "int8" and not graph_int8:
        raise InputError(f"--precision int8 runs an INT8 Q/DQ graph, and this one is {spec.precision}; "
                         "make one with hermes-export calibrate MODEL -o model.int8.onnx and pass it")
    if graph_int8 and chosen != "int8":
        raise InputError(f"this is an INT8 Q/DQ graph; it cannot run at --precision {chosen}: "
                         "pass the FP32 graph it was calibrated from")
    if chosen == "bf16" and backend != "openvino":
        raise InputError(f"{backend} has no bf16 CPU kernels; use --backend openvino for --precision bf16")
    if backend == "openvino" or chosen == "bf16":
        check_precision(chosen)
    return chosen
