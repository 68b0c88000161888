"""The C++ toolchain check both C++ test modules start with."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import cpp_build  # noqa: E402


def unavailable(why: str) -> None:
    """A tool the C++ tests need is missing: skip, saying why (under CI, which installs
    every one of them, the conftest's skip policy turns this into a failure)."""
    pytest.skip(why)


def toolchain_or_skip() -> None:
    """Skip, saying what to install, where the C++ toolchain is missing; under CI fail."""
    missing = cpp_build.missing_tools()
    if missing:
        unavailable(f"missing {', '.join(missing)}; {cpp_build.DEPS_HINT}")
