"""Shared fixtures (seeded RNG, tiny models built in code) and the test tiers.

Markers (strict; see pyproject): ``slow`` - longer than a few seconds on 2 cores, left
out of the development loop ``pytest -m "not slow"`` and run by CI; ``trt`` - needs
TensorRT or TensorRT-RTX; ``gpu`` - needs a CUDA device. ``trt`` and ``gpu`` tests are
skipped, with the reason, where their requirement is missing.

Under ``CI=true`` a skip is a failure unless it names something no CI machine has (a GPU,
full TensorRT, a CPU feature: ``tests/skips.py``); every run ends with one line listing
what was not run and why.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from hermes_deploy.model.config import preset
from hermes_deploy.model.network import Hermes

from .skips import beyond_ci, reason_of, summary_line, under_ci

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def pytest_collection_modifyitems(config, items):
    no_trt = not (_has("tensorrt_rtx") or _has("tensorrt"))
    no_gpu = not torch.cuda.is_available()
    for item in items:
        if "trt" in getattr(item, "fixturenames", ()):  # the TensorRT-RTX module fixture
            item.add_marker(pytest.mark.trt)
        if no_trt and "trt" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="needs TensorRT or TensorRT-RTX "
                                                    "(pip install 'hermes-deploy[trt-rtx]')"))
        if no_gpu and "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))


def _fail_under_ci(report) -> None:
    """Under CI, turn a skip for a missing tool (one CI installs) into a failure."""
    if not (report.skipped and under_ci()) or hasattr(report, "wasxfail"):
        return
    reason = reason_of(report.longrepr)
    if beyond_ci(reason) is None:
        report.outcome = "failed"
        report.longrepr = (f"skipped under CI, where every tool the suite uses is installed: {reason} "
                           "(fix scripts/install-test-deps.sh, or word the reason as one of tests/skips.py's "
                           "BEYOND_CI if no CI machine can have it)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_under_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_under_ci(outcome.get_result())


def pytest_terminal_summary(terminalreporter):
    reasons = [reason_of(r.longrepr) for r in terminalreporter.stats.get("skipped", [])
               if not hasattr(r, "wasxfail")]
    terminalreporter.write_line(summary_line(reasons))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial statistics and affine weights (eval mode)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=g))
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.4 * torch.rand(n, generator=g) - 0.2)
    return model.eval()


def make_model(name: str = "tiny", scale: int = 2, seed: int = 0, **overrides) -> Hermes:
    """A training-form model with random weights everywhere.

    The last head conv is zero-initialized in the library (an untrained model is exactly
    bicubic); tests re-randomize it so every part of the network reaches the output.
    """
    torch.manual_seed(seed)
    model = Hermes(preset(name, scale=scale, **overrides))
    model.head[-1].reset_parameters()
    return randomize_batchnorm(model, seed)


@pytest.fixture(scope="session")
def shared_library(tmp_path_factory):
    """A real (tiny) ELF shared library, built here with the C compiler (a stand-in plugin
    library for the manifest and ``--plugins`` checks, which look at the file only)."""
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build a shared library with")
    folder = tmp_path_factory.mktemp("plugin-lib")
    (folder / "p.c").write_text("int hermes_test_plugin(void) { return 1; }\n")
    lib = folder / "libtest_plugins.so"
    subprocess.run([cc, "-shared", "-fPIC", str(folder / "p.c"), "-o", str(lib)], check=True)
    return lib


@pytest.fixture(scope="session")
def default_onnx(tmp_path_factory):
    """The bundled default model exported once per session (portable FP32)."""
    from hermes_deploy.export.onnx_export import ExportOptions, export_onnx

    path = tmp_path_factory.mktemp("default-onnx") / "default.onnx"
    export_onnx("default", path, ExportOptions())
    return path


@pytest.fixture(scope="session")
def default_single_onnx(tmp_path_factory):
    """The bundled default model exported once per session as one graph
    (``--single-graph``: input -> output, the context computed inside)."""
    from hermes_deploy.export.onnx_export import ExportOptions, export_onnx

    path = tmp_path_factory.mktemp("default-single") / "default.single.onnx"
    export_onnx("default", path, ExportOptions(single_graph=True))
    return path


@pytest.fixture(scope="session")
def routing_onnx(tmp_path_factory):
    """A random tiny x2 model whose output moves with its context (the default's barely
    does): the per-shot context tests' model."""
    from hermes_deploy.export.onnx_export import ExportOptions, export_onnx
    from hermes_deploy.model.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("routing")
    ckpt = save_checkpoint(make_model("tiny", 2, seed=5), root / "random.safetensors")
    return export_onnx(str(ckpt), root / "random.onnx", ExportOptions()).path


@pytest.fixture(scope="session")
def default_runner(default_onnx):
    from hermes_deploy.engines.ort_runner import OrtRunner

    with OrtRunner(default_onnx, threads=2) as runner:
        yield runner
