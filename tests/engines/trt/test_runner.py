"""TrtRunner: what runs without a GPU (manifest refusal, profile choice, the GPU guard);
the engine run itself is a ``gpu`` test that skips here."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hermes_deploy.engines.trt import manifest as mf
from hermes_deploy.engines.trt.build import BuildOptions, build, local_compute_capability
from hermes_deploy.engines.trt.runner import TrtRunner, pick_profile
from hermes_deploy.errors import InputError

from .test_manifest import fp32_graph

pytestmark = pytest.mark.trt
trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed "
                          "(pip install 'hermes-deploy[trt-rtx]')")

PROFILES = [{"x": [[1, 3, 16, 16], [1, 3, 32, 32], [1, 3, 64, 64]]},
            {"x": [[1, 3, 65, 65], [2, 3, 128, 128], [4, 3, 256, 256]]}]


def test_pick_profile_takes_the_first_that_fits():
    assert pick_profile(PROFILES, {"x": (1, 3, 16, 64)}) == 0
    assert pick_profile(PROFILES, {"x": (3, 3, 100, 256)}) == 1
    assert pick_profile([], {"x": (1, 3, 8, 8)}) == 0
    with pytest.raises(InputError) as info:
        pick_profile(PROFILES, {"x": (1, 3, 300, 32)})
    message = str(info.value)
    assert "\n" not in message and "x (1, 3, 300, 32)" in message
    assert "x (1, 3, 16, 16)..(1, 3, 64, 64); x (1, 3, 65, 65)..(4, 3, 256, 256)" in message


@pytest.fixture
def engine(tmp_path):
    onnx_path = fp32_graph(tmp_path / "m.onnx")
    target = local_compute_capability() or "SM89"
    build(onnx_path, tmp_path / "m.engine",
          BuildOptions(tile=(32, 32), compute_capability=target, optimization_level=0))
    return onnx_path, tmp_path / "m.engine"


def test_mismatched_manifest_is_refused_before_deserializing(engine):
    _, path = engine
    stale = dataclasses.replace(mf.read_manifest(path), trt_version="1.0.0.0")
    mf.write_manifest(path, stale)
    with pytest.raises(mf.EngineMismatchError, match="built with TensorRT-RTX 1.0.0.0"):
        TrtRunner(path)


def test_changed_onnx_is_refused(engine):
    onnx_path, path = engine
    fp32_graph(onnx_path, seed=9)
    with pytest.raises(mf.EngineMismatchError, match="changed since engine m.engine"):
        TrtRunner(path, onnx_path=onnx_path)


def test_no_gpu_is_a_one_line_error(engine):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(InputError, match="needs a CUDA GPU"):
        TrtRunner(engine[1])


@pytest.mark.gpu
def test_engine_matches_onnxruntime_on_gpu(engine):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU: TensorRT engines run only on a GPU")
    ort = pytest.importorskip("onnxruntime")
    onnx_path, path = engine
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    expected = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    for graph in (False, True):
        with TrtRunner(path, cuda_graph=graph, contexts=2) as runner:
            for _ in range(2):  # the second call replays the CUDA graph
                got = runner.infer(x, np.zeros((1, 0), np.float32))
                assert np.abs(got - expected).max() < 1e-3
