"""What this CPU can compute fast, and the runtime precisions that need it.

``cpu_flags()`` reads the instruction-set flags the kernel reports (``/proc/cpuinfo``;
empty elsewhere). :func:`check_precision` refuses a reduced precision the CPU lacks with
one line that names the missing feature - never a silent fallback to FP32:

* ``bf16`` needs AVX512-BF16 (``avx512_bf16``) or AMX-BF16 (``amx_bf16``);
* ``int8`` (OpenVINO's low-precision kernels) needs VNNI (``avx512_vnni``,
  ``avx_vnni``) or AMX-INT8 (``amx_int8``).

Torch-free, numpy-free.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

from .errors import InputError

PRECISIONS = ("f32", "bf16", "int8")

#: precision -> (any one of these flags, how to name them in a message)
NEEDS = {
    "bf16": (("avx512_bf16", "amx_bf16"), "AVX512-BF16 or AMX-BF16"),
    "int8": (("avx512_vnni", "avx_vnni", "amx_int8"), "AVX512-VNNI, AVX-VNNI or AMX-INT8"),
}

#: flags worth printing next to a benchmark
SHOWN = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16",
         "amx_int8", "amx_tile")


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first value of each ``/proc/cpuinfo`` field (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as the Linux kernel names them (empty if unknown)."""
    return frozenset(_cpuinfo().get("flags", "").split())


def cpu_name() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def describe_cpu(flags: frozenset[str] | None = None) -> str:
    """``name (flag, flag, ...)`` with the flags that matter for inference speed."""
    flags = cpu_flags() if flags is None else flags
    shown = [f for f in SHOWN if f in flags]
    return f"{cpu_name()} ({', '.join(shown) or 'no AVX2/AVX-512/VNNI/AMX flags'})"


def check_precision(precision: str, flags: frozenset[str] | None = None) -> None:
    """Raise :class:`InputError` unless this CPU has the feature ``precision`` needs."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")
    if precision not in NEEDS:
        return
    flags = cpu_flags() if flags is None else flags
    wanted, named = NEEDS[precision]
    if not flags & set(wanted):
        raise InputError(f"--precision {precision} needs a CPU with {named}; this CPU "
                         f"({cpu_name()}) has none of them; use --precision f32")


def has_precision(precision: str, flags: frozenset[str] | None = None) -> bool:
    """Whether :func:`check_precision` accepts ``precision`` on this CPU."""
    try:
        check_precision(precision, flags)
        return True
    except InputError:
        return False

