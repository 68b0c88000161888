"""The two TensorRTs this package builds and runs engines with: one name, one enum.

A *flavour* is ``tensorrt-rtx`` (pip ``tensorrt-rtx``, module ``tensorrt_rtx``: builds
for a chosen GPU architecture, with or without a GPU) or ``tensorrt`` (pip ``tensorrt``:
builds for the local GPU). The CLI's ``--trt``, the build options and the engine
manifest all spell it with these values. "Backend" is kept for the runner choice
(onnxruntime, torch, tensorrt) and nothing else.
"""

from __future__ import annotations

import re
from enum import Enum
from types import ModuleType

from ...errors import InputError
from ...optional import require


class Flavour(str, Enum):
    RTX = "tensorrt-rtx"
    FULL = "tensorrt"

    @classmethod
    def parse(cls, value: "Flavour | str") -> "Flavour":
        """The flavour named ``value``; a one-line error lists the choices otherwise."""
        try:
            return cls(value)
        except ValueError:
            raise InputError(f"unknown TensorRT flavour {value!r}; expected "
                             f"{' or '.join(f.value for f in cls)}") from None

    @property
    def module(self) -> str:
        return "tensorrt_rtx" if self is Flavour.RTX else "tensorrt"

    @property
    def product(self) -> str:
        return "TensorRT-RTX" if self is Flavour.RTX else "TensorRT"

    @property
    def extra(self) -> str:
        """The hermes-deploy extra that installs it."""
        return "trt-rtx" if self is Flavour.RTX else "tensorrt"

    def load(self) -> ModuleType:
        """Import this flavour's module, or a one-line error naming the extra."""
        return require(self.module, extra=self.extra, purpose=f"Building {self.product} engines")

    def __str__(self) -> str:
        return self.value


def normalize_capability(value: str) -> str:
    """``SMxy`` from the spellings people use (``sm_89``, ``89``, ``8.9``); other text
    (``current``) comes back upper-cased."""
    text = re.sub(r"[\s_]", "", str(value)).upper()
    match = re.fullmatch(r"(?:SM)?(\d+)(?:\.(\d+))?", text)
    if match is None:
        return text
    major, minor = match.groups()
    return f"SM{major}{minor or ''}"
