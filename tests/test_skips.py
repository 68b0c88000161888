"""The CI skip policy (``tests/skips.py`` and the conftest hooks), run on a small suite
of its own in a subprocess: under ``CI=true`` a skip for a missing tool fails, a skip for
what no CI machine has stays a skip, and the run ends with one line naming those."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SUITE = '''
import pytest

def test_missing_tool():
    pytest.skip("needs foo (pip install foo)")

def test_cpu_feature():
    pytest.skip("this CPU lacks AVX512-BF16 and AMX-BF16")

@pytest.mark.skipif(True, reason="needs a CUDA GPU")
def test_gpu():
    pass

def test_plain():
    pass
'''


def _run(folder: Path, ci: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                           "--rootdir", str(folder), str(folder)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def suite(tmp_path):
    (tmp_path / "test_suite.py").write_text(SUITE)
    return tmp_path


def test_under_ci_a_missing_tool_fails_and_the_rest_is_listed(suite):
    res = _run(suite, ci=True)
    assert res.returncode == 1, res.stdout[-2000:]
    assert "FAILED" in res.stdout and "test_missing_tool - skipped under CI" in res.stdout
    assert "not run here: 2 tests need a CPU feature (1), a CUDA GPU (1)" in res.stdout
    assert "1 failed, 1 passed, 2 skipped" in res.stdout


def test_outside_ci_every_skip_stays_a_skip(suite):
    res = _run(suite, ci=False)
    assert res.returncode == 0, res.stdout[-2000:]
    assert "1 passed, 3 skipped" in res.stdout
    assert "a tool that is not installed (1)" in res.stdout
