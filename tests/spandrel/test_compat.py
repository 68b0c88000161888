"""The torchvision guard: it handles exactly the missing-op error of a torchvision built
for another torch, and nothing else. Stand-in torchvision packages, each in its own
interpreter, fail the way the real one does (torch's own ``register_fake`` on an op that
was never defined) or in other ways."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MISMATCHED = """
    import torch
    __version__ = "0.0+standin"
    for op in ("nms", "qnms"):  # what torchvision/_meta_registrations.py does, unguarded
        torch.library.register_fake(f"torchvision::{op}")(lambda dets, scores, iou: dets)
    from . import transforms
"""


def run_with(tmp_path: Path, init: str, code: str) -> subprocess.CompletedProcess:
    pkg = tmp_path / "torchvision"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(init))
    (pkg / "transforms.py").write_text("LOADED = True\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=300)


IMPORT = """
    import logging, torch
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from hermes_deploy.spandrel.compat import import_torchvision
    tv = import_torchvision()
    tv2 = import_torchvision()
    print("imported", tv.__version__, tv.transforms.LOADED, tv is tv2)
    try:
        torch.ops.torchvision.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
    except RuntimeError as exc:
        print("nms:", exc)
"""


def test_a_torchvision_built_for_another_torch_imports_after_the_guard(tmp_path):
    out = run_with(tmp_path, MISMATCHED, IMPORT)
    assert out.returncode == 0, out.stderr
    assert "imported 0.0+standin True True" in out.stdout
    assert "nms: torchvision::nms is a placeholder defined by hermes_deploy" in out.stdout
    said = [line for line in out.stderr.splitlines() if "placeholder schemas" in line]
    assert len(said) == 1 and "torchvision::nms, qnms" in said[0]  # said once, both ops named


@pytest.mark.parametrize("error", ["RuntimeError('CUDA driver version is insufficient')",
                                   "RuntimeError('operator torchvision::roi_align does not exist')",
                                   "ImportError('libjpeg.so.8: cannot open shared object file')"])
def test_every_other_import_failure_is_left_alone(tmp_path, error):
    out = run_with(tmp_path, f"raise {error}\n", IMPORT)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    if error.startswith("ImportError"):  # present but unloadable: the one-line missing-package error
        assert "MissingDependencyError" in last and "hermes-deploy[spandrel]" in last
    else:
        assert last == f"RuntimeError: {error.split(chr(39))[1]}"
    assert "placeholder" not in out.stderr


def test_the_installed_spandrel_imports_and_the_package_stays_light():
    code = """
        import sys
        import hermes_deploy.spandrel
        assert "torch" not in sys.modules and "spandrel" not in sys.modules
        from hermes_deploy.spandrel.compat import import_spandrel
        spandrel = import_spandrel()
        print("spandrel", spandrel.__version__, "torchvision" in sys.modules)
    """
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("spandrel 0.4") and out.stdout.strip().endswith("True")
