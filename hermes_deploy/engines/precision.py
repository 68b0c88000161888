"""The runtime precision of a CPU backend: ``f32``, ``bf16`` or ``int8``.

Precision is a property of the graph and the backend together:

* ``f32`` - an FP32 (or FP16-storage) graph computed in FP32;
* ``bf16`` - the same graph, OpenVINO computing in bfloat16 where the CPU has
  AVX512-BF16/AMX-BF16 (onnxruntime has no bf16 CPU kernels);
* ``int8`` - an INT8 Q/DQ graph from ``hermes-export calibrate``, run by the backend's
  low-precision kernels (OpenVINO needs VNNI/AMX-INT8 for them). The ops left
  unquantized (scan, DFT, attention, the sensitivity islands) run in a float precision
  of their own: on OpenVINO bf16 where the CPU has bf16 units, f32 elsewhere
  (:func:`float_ops`); :func:`describe_precision` says so wherever a choice is printed.

``None`` means the graph's own: ``int8`` for a Q/DQ graph, ``f32`` otherwise. ``auto``
(:data:`AUTO`) is not a precision but a request for the measured recommendation
(:mod:`.choose`), resolved before a runner opens. A choice that cannot hold is a
one-line error, never a silent fallback.
"""

from __future__ import annotations

from ..cpu import PRECISIONS, check_precision, has_precision
from ..errors import InputError
from ..spec import ModelSpec

AUTO = "auto"


def float_ops(precision: str, backend: str, flags: frozenset[str] | None = None) -> str:
    """The precision ``backend`` computes the unquantized ops of an int8 graph in (for
    f32 and bf16: the precision itself). The rule ``OvRunner`` applies on this CPU."""
    if precision != "int8":
        return precision
    return "bf16" if backend == "openvino" and has_precision("bf16", flags) else "f32"


def describe_precision(precision: str, backend: str, flags: frozenset[str] | None = None) -> str:
    """``precision`` as printed: ``int8 (unquantized ops in bf16)`` and the like."""
    if precision != "int8":
        return precision
    return f"int8 (unquantized ops in {float_ops(precision, backend, flags)})"


def check_known(precision: str | None) -> None:
    """Refuse a precision name that is neither one of ``PRECISIONS``, ``auto`` nor None."""
    if precision is not None and precision != AUTO and precision not in PRECISIONS:
        raise InputError(f"unknown precision '{precision}'; choose one of "
                         f"{', '.join(PRECISIONS)} or auto")


def resolve_precision(spec: ModelSpec, precision: str | None, backend: str) -> str:
    """The precision ``backend`` runs ``spec``'s graph at; see the module doc."""
    check_known(precision)
    if precision == AUTO:
        raise InputError("--precision auto is resolved before a runner opens; use it with "
                         "--backend auto")
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
