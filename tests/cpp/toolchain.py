"""The C++ toolchain check both C++ test modules start with."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import cpp_build  # noqa: E402


def toolchain_or_skip() -> None:
    """Skip, saying what to install, where the C++ toolchain is missing; under CI fail."""
    missing = cpp_build.missing_tools()
    if missing:
        why = f"missing {', '.join(missing)}; {cpp_build.DEPS_HINT}"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
