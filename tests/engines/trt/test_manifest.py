"""Engine manifest, load-time checks and the engine cache, on TensorRT-RTX engines built here.

Graphs are tiny and built in code (FP32 conv, FP16 with casts, INT8 Q/DQ conv) so each
build takes well under a second; the exported HERMES graph is covered by test_build_cli.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from hermes_deploy.engines.trt import manifest as mf
from hermes_deploy.engines.trt.build import BuildOptions, build
from hermes_deploy.engines.trt.manifest import EngineMismatchError, check_manifest, read_manifest
from hermes_deploy.engines.trt.plugins import PluginUnavailableError
from hermes_deploy.errors import HermesError
from hermes_deploy.spec import METADATA_KEY, ModelSpec

onnx = pytest.importorskip("onnx", reason="onnx is needed to build the test graphs")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

pytestmark = pytest.mark.trt
trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed "
                          "(pip install 'hermes-deploy[trt-rtx]')")

FAST = dict(optimization_level=0)
SPEC = ModelSpec(scale=1, in_channels=3, out_channels=4, size_multiple=8, min_size=8,
                 tile_overlap=4, receptive_radius=4, context_channels=0, precision="fp32",
                 io_dtype="float32", target="portable", opset=18, fidelity=True,
                 input_name="x", output_name="y")


def _model(nodes, weights, inputs=None, spec=SPEC):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])]
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                             ["N", 4, "H", "W"])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    if spec is not None:
        helper.set_model_props(model, {METADATA_KEY: spec.to_json()})
    return model


def fp32_graph(path, seed=0, spec=SPEC):
    w = np.random.default_rng(seed).standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv0"),
             helper.make_node("Relu", ["c"], ["y"], name="relu0")]
    onnx.save(_model(nodes, [numpy_helper.from_array(w, "w")], spec=spec), str(path))
    return path


def fp16_graph(path):
    w = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float16)
    nodes = [helper.make_node("Cast", ["x"], ["xh"], to=TensorProto.FLOAT16, name="cast_in"),
             helper.make_node("Conv", ["xh", "w"], ["c"], pads=[1, 1, 1, 1], name="conv0"),
             helper.make_node("Cast", ["c"], ["y"], to=TensorProto.FLOAT, name="cast_out")]
    onnx.save(_model(nodes, [numpy_helper.from_array(w, "w")], spec=None), str(path))
    return path


def int8_graph(path):
    """Explicit Q/DQ: activations per-tensor, weights per-channel symmetric int8."""
    rng = np.random.default_rng(2)
    wq = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    weights = [numpy_helper.from_array(wq, "wq"),
               numpy_helper.from_array(np.full(4, 0.01, np.float32), "w_scale"),
               numpy_helper.from_array(np.zeros(4, np.int8), "w_zero"),
               numpy_helper.from_array(np.array(0.02, np.float32), "x_scale"),
               numpy_helper.from_array(np.array(0, np.int8), "x_zero")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["xq"], name="q_x"),
             helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zero"], ["xd"], name="dq_x"),
             helper.make_node("DequantizeLinear", ["wq", "w_scale", "w_zero"], ["w"], axis=0,
                              name="dq_w"),
             helper.make_node("Conv", ["xd", "w"], ["y"], pads=[1, 1, 1, 1], name="conv0")]
    onnx.save(_model(nodes, weights, spec=None), str(path))
    return path


def plugin_graph(path):
    nodes = [helper.make_node("SpectralLowpass", ["x", "cut", "sharp"], ["y"], domain="hermes",
                              name="lowpass0", plugin_version="1", plugin_namespace="hermes")]
    weights = [numpy_helper.from_array(np.ones(3, np.float32), "cut"),
               numpy_helper.from_array(np.ones(3, np.float32), "sharp")]
    model = _model(nodes, weights, spec=None)
    model.opset_import.append(helper.make_opsetid("hermes", 1))
    onnx.save(model, str(path))
    return path


@pytest.fixture
def built(tmp_path):
    onnx_path = fp32_graph(tmp_path / "m.onnx")
    engine = tmp_path / "m.engine"
    return onnx_path, engine, build(onnx_path, engine, BuildOptions(tile=(32, 32), **FAST))


def _check(manifest, engine, **overrides):
    facts = dict(flavour="tensorrt-rtx", trt_version=trt.__version__, compute_capability="SM89")
    facts.update(overrides)
    check_manifest(manifest, engine, **facts)


def _one_line_rebuild(info, engine):
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, HermesError)
    assert f"rebuild it: hermes-export build {engine.parent / 'm.onnx'} -o {engine} --trt " \
        "tensorrt-rtx --compute-capability SM" in message
    return message


def test_manifest_records_what_was_built(built):
    onnx_path, engine, result = built
    assert not result.cache_hit
    m = read_manifest(engine)
    assert m == result.manifest and mf.manifest_path(engine) == result.manifest_path
    assert result.manifest_path.name == "m.engine.json"
    assert m.flavour == "tensorrt-rtx" and m.trt_version == trt.__version__
    assert m.compute_capability == "SM89" and m.precision == "fp32"
    assert m.onnx_sha256 == mf.file_sha256(onnx_path)
    assert m.engine_sha256 == mf.file_sha256(engine)
    assert m.profiles == [{"x": [[1, 3, 32, 32]] * 3}]
    assert m.inputs == [["x", "float32", [-1, 3, -1, -1]]]
    assert m.model_spec() == SPEC
    assert m.build["tile"] == [32, 32] and m.build["optimization_level"] == 0
    assert m.plugins == []
    json.loads(result.manifest_path.read_text())  # plain JSON on disk
    _check(m, engine, onnx_path=onnx_path)  # the matching facts pass


def test_other_trt_version_is_refused(built):
    _, engine, result = built
    old = dataclasses.replace(result.manifest, trt_version="1.5.0.0")
    with pytest.raises(EngineMismatchError) as info:
        _check(old, engine)
    message = _one_line_rebuild(info, engine)
    assert f"built with TensorRT-RTX 1.5.0.0 but {trt.__version__} is installed" in message
    with pytest.raises(EngineMismatchError, match="built by TensorRT-RTX but is being loaded "
                       "with TensorRT;"):
        _check(result.manifest, engine, flavour="tensorrt")


def test_other_compute_capability_is_refused(tmp_path):
    onnx_path = fp32_graph(tmp_path / "m.onnx")
    engine = tmp_path / "m.engine"
    result = build(onnx_path, engine, BuildOptions(tile=(32, 32), compute_capability="SM86", **FAST))
    assert result.manifest.compute_capability == "SM86"
    _check(result.manifest, engine, compute_capability="8.6")
    with pytest.raises(EngineMismatchError) as info:
        _check(result.manifest, engine, compute_capability="SM89")
    message = _one_line_rebuild(info, engine)
    assert "targets compute capability SM86 but this GPU is SM89" in message
    assert "--trt tensorrt-rtx --compute-capability SM89 --tile 32x32" in message


def test_changed_onnx_and_replaced_engine_are_refused(built):
    onnx_path, engine, result = built
    fp32_graph(onnx_path, seed=1)  # same graph, other weights
    with pytest.raises(EngineMismatchError) as info:
        _check(result.manifest, engine, onnx_path=onnx_path)
    assert "m.onnx changed since engine m.engine was built from it" in _one_line_rebuild(info, engine)
    engine.write_bytes(engine.read_bytes()[:-1] + b"\0")
    with pytest.raises(EngineMismatchError, match="not the file its manifest describes"):
        _check(result.manifest, engine)


def test_engine_without_manifest_is_refused(built):
    _, engine, _ = built
    mf.manifest_path(engine).unlink()
    with pytest.raises(EngineMismatchError, match="has no manifest"):
        read_manifest(engine)


def test_cache_hits_on_same_facts_and_misses_on_changes(tmp_path):
    onnx_path = fp32_graph(tmp_path / "m.onnx")
    cache = tmp_path / "cache"
    options = BuildOptions(tile=(32, 32), cache_dir=str(cache), **FAST)
    first = build(onnx_path, tmp_path / "a.engine", options)
    second = build(onnx_path, tmp_path / "b.engine", options)
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert (tmp_path / "a.engine").read_bytes() == (tmp_path / "b.engine").read_bytes()
    assert second.manifest.build["cache_key"] == first.manifest.build["cache_key"]
    _check(read_manifest(tmp_path / "b.engine"), tmp_path / "b.engine", onnx_path=onnx_path)
    # every fact of the key changes it: profile, target, optimization level, ONNX
    for changed in (BuildOptions(tile=(32, 48), cache_dir=str(cache), **FAST),
                    BuildOptions(tile=(32, 32), cache_dir=str(cache), compute_capability="SM86",
                                 **FAST),
                    BuildOptions(tile=(32, 32), cache_dir=str(cache), optimization_level=1)):
        assert not build(onnx_path, tmp_path / "c.engine", changed).cache_hit
    fp32_graph(onnx_path, seed=5)
    assert not build(onnx_path, tmp_path / "d.engine", options).cache_hit
    assert len(list(cache.glob("*.engine"))) == 5


def test_fp16_int8_and_multi_profile_engines(tmp_path):
    fp16 = build(fp16_graph(tmp_path / "h.onnx"), tmp_path / "h.engine",
                 BuildOptions(tile=(32, 32), **FAST)).manifest
    assert fp16.precision == "fp16" and fp16.spec is None
    int8 = build(int8_graph(tmp_path / "q.onnx"), tmp_path / "q.engine",
                 BuildOptions(tile=(32, 32), **FAST)).manifest
    assert int8.precision == "int8"
    profiles = [{"x": ((1, 3, 16, 16), (1, 3, 32, 32), (1, 3, 64, 64))},
                {"x": ((2, 3, 64, 64), (4, 3, 128, 128), (4, 3, 256, 256))}]
    multi = build(fp32_graph(tmp_path / "m.onnx"), tmp_path / "m.engine",
                  BuildOptions(profiles=profiles, timing_cache=str(tmp_path / "timing.cache"),
                               **FAST)).manifest
    assert multi.profiles == [{n: [list(s) for s in t] for n, t in p.items()} for p in profiles]
    assert multi.build["timing_cache"] == "timing.cache"
    assert not (tmp_path / "timing.cache").exists()  # TensorRT-RTX times no kernels: no-op


def test_plugin_graph_is_refused_by_trt_rtx_in_one_line(tmp_path):
    path = plugin_graph(tmp_path / "p.onnx")
    assert mf.onnx_facts(path)["plugins"] == [
        {"name": "SpectralLowpass", "version": "1", "namespace": "hermes"}]
    with pytest.raises(PluginUnavailableError) as info:
        build(path, tmp_path / "p.engine", BuildOptions(tile=(32, 32), **FAST))
    message = str(info.value)
    assert "\n" not in message and "hermes::SpectralLowpass" in message
    assert "--target portable" in message and "--trt tensorrt" in message
    assert not (tmp_path / "p.engine").exists()


def test_manifest_round_trip_and_bad_json(tmp_path, built):
    _, engine, result = built
    again = mf.EngineManifest.from_json(result.manifest.to_json())
    assert again == result.manifest
    mf.manifest_path(engine).write_text("{not json")
    with pytest.raises(HermesError, match="not a readable engine manifest"):
        read_manifest(engine)
