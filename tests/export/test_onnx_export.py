"""ONNX export: parity with torch through onnxruntime, both targets, TensorRT-RTX.

Exports are slow (tens of seconds each on 2 cores), so each graph is exported once per
module and shared by the tests that read it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from hermes_deploy.export.custom_ops import DOMAIN, PLUGIN_NAMESPACE, PLUGIN_VERSION
from hermes_deploy.export.onnx_export import ExportOptions, export_onnx
from hermes_deploy.checks.verify import verify_onnx
from hermes_deploy.export.ort import ort_session
from hermes_deploy.model.checkpoint import save_checkpoint
from hermes_deploy.model.moe import GENERATIVE
from hermes_deploy.spec import ModelSpec

from ..conftest import make_model

pytestmark = pytest.mark.slow

SIZES = ((64, 64), (97, 131), (256, 192))


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Lazily exported graphs keyed by (scale, target, extra)."""
    root = tmp_path_factory.mktemp("onnx")
    cache: dict = {}

    def get(scale: int, target: str = "portable", **opts):
        key = (scale, target, tuple(sorted(opts.items())))
        if key not in cache:
            model = make_model("tiny", scale, seed=10 + scale)
            if opts.get("keep_generative"):
                with torch.no_grad():
                    model.moe.router.logits.bias[GENERATIVE] += 50.0
                    model.moe.experts[GENERATIVE].noise_strength.fill_(0.3)
            ckpt = save_checkpoint(model, root / f"x{scale}-{len(cache)}.safetensors")
            path = root / f"x{scale}-{target}-{len(cache)}.onnx"
            result = export_onnx(str(ckpt), path, ExportOptions(target=target, **opts))
            cache[key] = (ckpt, result)
        return cache[key]

    return get


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_portable_fp32_matches_torch(exports, scale):
    ckpt, result = exports(scale)
    model = onnx.load(str(result.path))
    assert {n.domain for n in model.graph.node} <= {""}, "portable graph must hold standard ops only"
    assert not model.functions
    report = verify_onnx(result.path, str(ckpt), images=["astronaut"], sizes=SIZES, batches=(1, 3))
    assert report.passed, report.table()
    assert max(c.max_abs for c in report.cases) <= 1e-4
    assert len(report.cases) == len(SIZES) * 2 + len(SIZES)
    spec = ModelSpec.from_onnx(result.path)
    assert spec.scale == scale and spec.size_multiple == 16 and spec.context_channels == 48
    assert spec.tile_overlap >= spec.receptive_radius and spec.source_sha256


def test_context_graph_matches_torch(exports):
    ckpt, result = exports(2)
    from hermes_deploy.model.checkpoint import load_checkpoint
    from hermes_deploy.model.deploy import deploy

    model = deploy(load_checkpoint(ckpt), fidelity=True)
    sess = ort_session(result.context_path)
    for shape in [(1, 3, 1, 1), (2, 3, 45, 300)]:
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        got = sess.run(None, {"input": x})[0]
        with torch.no_grad():
            want = model.compute_context(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_tensorrt_target_keeps_plugin_nodes_and_runs_through_lowering(exports):
    ckpt, result = exports(2, "tensorrt")
    model = onnx.load(str(result.path))
    custom = [n for n in model.graph.node if n.domain == DOMAIN]
    assert sorted(n.op_type for n in custom) == ["SelectiveScan", "SelectiveScan", "SpectralLowpass"]
    for node in custom:
        attrs = {a.name: a for a in node.attribute}
        assert attrs["plugin_version"].s.decode() == PLUGIN_VERSION
        assert attrs["plugin_namespace"].s.decode() == PLUGIN_NAMESPACE
    assert not model.functions  # TensorRT must see plugin nodes, not inlinable functions
    report = verify_onnx(result.path, str(ckpt), images=[], sizes=SIZES[:2], batches=(1, 3))
    assert report.passed, report.table()


def test_lowerings_export_without_torch_warnings(exports):
    """Lowering the plugin nodes (calibrate, verify) exports the lowerings in eval mode:
    no "Exporting a model while it is in training mode" warning reaches a CLI user.
    A fresh process, because the lowerings are cached per process."""
    _, result = exports(2, "tensorrt")
    code = ("import warnings, onnx\n"
            "from hermes_deploy.export.lowering import inline_lowerings\n"
            "with warnings.catch_warnings(record=True) as seen:\n"
            "    warnings.simplefilter('always')\n"
            f"    inline_lowerings(onnx.load({str(result.path)!r}))\n"
            "print('\\n'.join(str(w.message) for w in seen))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "training mode" not in res.stdout + res.stderr, res.stdout


def test_generative_export_takes_noise_input(exports):
    ckpt, result = exports(2, keep_generative=True)
    model = onnx.load(str(result.path))
    assert [i.name for i in model.graph.input] == ["input", "context", "noise"]
    from hermes_deploy.model.checkpoint import load_checkpoint

    torch_model = load_checkpoint(ckpt)
    sess, ctx_sess = ort_session(result.path), ort_session(result.context_path)
    rng = np.random.default_rng(1)
    x = rng.random((1, 3, 40, 24), dtype=np.float32)
    outs = []
    for _ in range(2):
        noise = rng.standard_normal((1, 1, 40, 24)).astype(np.float32)
        got = sess.run(None, {"input": x, "context": ctx_sess.run(None, {"input": x})[0],
                              "noise": noise})[0]
        with torch.no_grad():
            want = torch_model(torch.from_numpy(x), noise=torch.from_numpy(noise)).numpy()
        np.testing.assert_allclose(got, want, atol=1e-4)
        outs.append(got)
    assert np.abs(outs[0] - outs[1]).max() > 1e-3  # the noise input is live


def test_fixed_tile_and_batch_export(exports):
    ckpt, result = exports(2, tile=(48, 40), batch=2)
    model = onnx.load(str(result.path))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 3, 48, 40]
    assert ModelSpec.from_onnx(result.path).tile == (48, 40)
    assert verify_onnx(result.path, str(ckpt), images=["coffee"]).passed


@pytest.mark.trt
def test_trt_rtx_builds_portable_and_rejects_tensorrt_target_only_for_plugins(exports):
    trt_build = pytest.importorskip("hermes_deploy.engines.trt.compile")
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install tensorrt-rtx)")
    _, portable = exports(2)
    assert trt_build.parse_onnx(portable.path) == []
    profiles = trt_build.default_profiles(portable.path, tile=(64, 64), batch=1)
    report = trt_build.build_engine(portable.path, None, profiles=profiles)
    assert report.engine_bytes > 100_000
    _, plugin = exports(2, "tensorrt")
    issues = trt_build.parse_onnx(plugin.path)
    assert issues and {i.op_type for i in issues} <= {"SelectiveScan", "SpectralLowpass"}
    assert all("plugin" in i.reason.lower() for i in issues)


def test_cli_verify_fails_against_the_wrong_reference(exports, tmp_path):
    _, result = exports(2)
    other = save_checkpoint(make_model("tiny", 2, seed=99), tmp_path / "other.safetensors")
    cmd = [sys.executable, "-m", "hermes_deploy.cli.app", "verify", str(result.path), "-r"]
    bad = subprocess.run(cmd + [str(other), "--json"], capture_output=True, text=True)
    assert bad.returncode == 1 and json.loads(bad.stdout)["passed"] is False
    gone = subprocess.run([sys.executable, "-m", "hermes_deploy.cli.app", "verify",
                           str(tmp_path / "nope.onnx"), "-r", str(other)], capture_output=True, text=True)
    assert gone.returncode == 2 and "nope.onnx" in gone.stderr and "Traceback" not in gone.stderr
