"""TensorRT-RTX parse + build on CPU (target SM89), with tiny ONNX graphs built in code.

Tests that need the builder take the ``trt`` fixture, which skips them when
``tensorrt_rtx`` is not installed; the rest (errors, profiles) always run.
"""

from __future__ import annotations

import errno
import subprocess
import sys

import numpy as np
import pytest

from hermes_deploy.engines.trt import compile as trt_compile
from hermes_deploy.engines.trt.compile import (
    EngineBuildError,
    ParseIssue,
    build_engine,
    default_profiles,
    load_trt,
    parse_onnx,
)
from hermes_deploy.engines.trt.flavour import Flavour, normalize_capability
from hermes_deploy.errors import HermesError, InputError, MissingDependencyError

from ...cli.harness import tiny_fs  # noqa: F401 (the real full-filesystem fixture)

onnx = pytest.importorskip("onnx", reason="onnx is needed to build the test graphs")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

OPSET = [helper.make_opsetid("", 18)]
IMAGE_PROFILE = {"x": ((1, 3, 16, 16), (1, 3, 64, 64), (2, 3, 128, 128))}


@pytest.fixture
def trt():
    return pytest.importorskip(
        "tensorrt_rtx",
        reason="tensorrt-rtx is not installed (pip install 'hermes-deploy[trt-rtx]')",
    )


def _save(tmp_path, nodes, inputs, outputs, weights, name="model.onnx", extra_opsets=(),
          check=True, **save_kw):
    graph = helper.make_graph(nodes, "g", inputs, outputs, weights)
    model = helper.make_model(graph, opset_imports=OPSET + list(extra_opsets))
    model.ir_version = 9
    if check:
        onnx.checker.check_model(model, full_check=True)
    path = tmp_path / name
    onnx.save(model, str(path), **save_kw)
    return path


def _weights(rng, dtype=np.float32):
    return [numpy_helper.from_array((rng.standard_normal((4, 3, 3, 3)) * 0.1).astype(dtype), "w"),
            numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")]


def conv_relu_resize(tmp_path, rng, **save_kw):
    """x (N,3,H,W) fp32 -> Conv 3x3 -> Relu -> nearest x2 -> y (N,4,2H,2W)."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv0"),
             helper.make_node("Relu", ["c"], ["r"], name="relu0"),
             helper.make_node("Resize", ["r", "", "scales"], ["y"], mode="nearest", name="up")]
    return _save(tmp_path, nodes,
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, "H2", "W2"])],
                 _weights(rng), **save_kw)


def fp16_with_casts(tmp_path, rng):
    """fp32 I/O, fp16 inside: Cast -> Conv + Add (with a conditioning vector) -> Cast."""
    nodes = [helper.make_node("Cast", ["x"], ["xh"], to=TensorProto.FLOAT16, name="cast_in"),
             helper.make_node("Conv", ["xh", "w"], ["c"], pads=[1, 1, 1, 1], name="conv0"),
             helper.make_node("Cast", ["ctx"], ["ch"], to=TensorProto.FLOAT16, name="cast_ctx"),
             helper.make_node("Reshape", ["ch", "to4d"], ["c4"], name="ctx_4d"),
             helper.make_node("Add", ["c", "c4"], ["a"], name="add0"),
             helper.make_node("Cast", ["a"], ["y"], to=TensorProto.FLOAT, name="cast_out")]
    weights = _weights(rng, np.float16)[:1] + [
        numpy_helper.from_array(np.array([0, -1, 1, 1], np.int64), "to4d")]
    return _save(tmp_path, nodes,
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"]),
                  helper.make_tensor_value_info("ctx", TensorProto.FLOAT, ["N", 4])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, "H", "W"])],
                 weights, name="fp16.onnx")


def with_custom_scan(tmp_path, rng):
    """Conv -> hermes::SelectiveScan -> Relu: only the scan is unknown to TensorRT."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv0"),
             helper.make_node("SelectiveScan", ["c"], ["s"], domain="hermes", name="scan0",
                              plugin_version="1", plugin_namespace="hermes"),
             helper.make_node("Relu", ["s"], ["y"], name="relu0")]
    return _save(tmp_path, nodes,
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, "H", "W"])],
                 _weights(rng)[:1], name="scan.onnx",
                 extra_opsets=[helper.make_opsetid("hermes", 1)], check=False)


# ------------------------------------------------------------------ parse


def test_parse_supported_graph_is_clean(trt, tmp_path, rng):
    path = conv_relu_resize(tmp_path, rng)
    assert parse_onnx(path) == []
    assert parse_onnx(str(path)) == []
    assert parse_onnx(path.read_bytes()) == []
    assert parse_onnx(fp16_with_casts(tmp_path, rng)) == []


def test_parse_reads_external_data(trt, tmp_path, rng):
    path = conv_relu_resize(tmp_path, rng, save_as_external_data=True,
                            all_tensors_to_one_file=True, location="model.data",
                            size_threshold=0)
    assert (tmp_path / "model.data").stat().st_size > 0
    assert parse_onnx(path) == []


def test_custom_op_is_the_only_parse_issue(trt, tmp_path, rng):
    issues = parse_onnx(with_custom_scan(tmp_path, rng))
    assert issues, "a graph with an unregistered custom op must not parse"
    assert all(isinstance(i, ParseIssue) for i in issues)
    assert {(i.node, i.op_type) for i in issues} == {("scan0", "SelectiveScan")}
    assert all("plugin" in i.reason.lower() or "importer" in i.reason.lower() for i in issues)


def test_build_rejects_custom_op_with_one_line_message(trt, tmp_path, rng):
    engine = tmp_path / "scan.engine"
    with pytest.raises(EngineBuildError) as info:
        build_engine(with_custom_scan(tmp_path, rng), engine, profiles=IMAGE_PROFILE)
    message = str(info.value)
    assert "\n" not in message
    assert "scan0 (SelectiveScan):" in message and "plugin" in message.lower()
    assert "conv0" not in message and "relu0" not in message
    assert isinstance(info.value, HermesError)
    assert not engine.exists()


# ------------------------------------------------------------------ build


def test_build_fp32_engine_on_cpu_for_sm89(trt, tmp_path, rng):
    engine = tmp_path / "out" / "model.engine"
    report = build_engine(conv_relu_resize(tmp_path, rng), engine, profiles=IMAGE_PROFILE,
                          workspace_mb=64)
    assert report.engine_bytes > 0
    assert engine.stat().st_size == report.engine_bytes
    assert sorted(p.name for p in engine.parent.iterdir()) == ["model.engine"]  # no temp left
    assert report.engine is None and report.engine_path == str(engine)
    assert report.flavour is Flavour.RTX and report.compute_capability == "SM89"
    assert report.trt_version == trt.__version__
    assert report.inputs == [("x", "float32", (-1, 3, -1, -1))]
    assert report.outputs == [("y", "float32", (-1, 4, -1, -1))]
    assert report.profiles == IMAGE_PROFILE
    assert 0 < report.seconds < 120


def test_build_fp16_engine_with_default_profiles(trt, tmp_path, rng):
    path = fp16_with_casts(tmp_path, rng)
    profiles = default_profiles(path, tile=(32, 48), batch=2)
    assert profiles == {"x": ((1, 3, 16, 16), (2, 3, 32, 48), (2, 3, 64, 96)),
                        "ctx": ((1, 4), (2, 4), (2, 4))}
    report = build_engine(path, profiles=profiles, compute_capability="sm_86")
    assert report.engine is not None and len(report.engine) == report.engine_bytes > 0
    assert report.compute_capability == "SM86"
    assert report.inputs == [("x", "float32", (-1, 3, -1, -1)), ("ctx", "float32", (-1, 4))]
    assert report.outputs == [("y", "float32", (-1, 4, -1, -1))]


def test_build_replaces_existing_engine(trt, tmp_path, rng):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"old")
    report = build_engine(conv_relu_resize(tmp_path, rng), engine, profiles=IMAGE_PROFILE)
    assert engine.stat().st_size == report.engine_bytes > 3


def test_missing_profile_names_the_input(trt, tmp_path, rng):
    path = fp16_with_casts(tmp_path, rng)
    with pytest.raises(EngineBuildError, match=r"input 'x' has dynamic shape .*profile"):
        build_engine(path)
    only_image = {"x": ((1, 3, 16, 16), (1, 3, 32, 32), (1, 3, 64, 64))}
    with pytest.raises(EngineBuildError, match=r"input 'ctx' has dynamic shape .*profile"):
        build_engine(path, profiles=only_image)


@pytest.mark.parametrize("profiles, pattern", [
    ({"nope": ((1,), (1,), (1,))}, r"'nope'.*does not have.*'x' \(-1, 3, -1, -1\)"),
    ({"x": ((1, 3, 64, 64), (1, 3, 32, 32), (1, 3, 64, 64))}, r"min <= opt <= max"),
    ({"x": ((1, 4, 16, 16), (1, 4, 32, 32), (1, 4, 64, 64))}, r"static dim 1"),
    ({"x": ((1, 3, 16), (1, 3, 32), (1, 3, 64))}, r"rank 3"),
])
def test_bad_profiles_are_explained(trt, tmp_path, rng, profiles, pattern):
    with pytest.raises(EngineBuildError, match=pattern):
        build_engine(conv_relu_resize(tmp_path, rng), profiles=profiles)


def test_unknown_compute_capability_lists_choices(trt, tmp_path, rng):
    with pytest.raises(EngineBuildError, match=r"'SM99'.*SM89"):
        build_engine(conv_relu_resize(tmp_path, rng), profiles=IMAGE_PROFILE,
                     compute_capability="SM99")


def test_target_is_set_on_the_builder_config(trt):
    config = trt.Builder(trt_compile.trt_logger(trt, Flavour.RTX)).create_builder_config()
    assert trt_compile._set_target(trt, config, Flavour.RTX, "8.6") == "SM86"
    assert config.num_compute_capabilities == 1
    assert config.get_compute_capability(0) == trt.ComputeCapability.SM86
    assert trt_compile._set_target(trt, config, Flavour.RTX, None) == "SM89"
    assert config.get_compute_capability(0) == trt.ComputeCapability.SM89


def test_a_full_disk_keeps_old_engine_and_leaves_no_temp(trt, tmp_path, rng, tiny_fs):
    """The engine folder on a real full filesystem (a 16 KB tmpfs; the engine is larger):
    the write fails with the system's ENOSPC, the old engine is intact, nothing else is
    left."""
    path = conv_relu_resize(tmp_path, rng)
    engine = tiny_fs(16) / "model.engine"
    engine.write_bytes(b"old")
    with pytest.raises(OSError) as info:
        build_engine(path, engine, profiles=IMAGE_PROFILE)
    assert info.value.errno == errno.ENOSPC, info.value
    assert engine.read_bytes() == b"old"
    assert [p.name for p in engine.parent.iterdir()] == ["model.engine"]


# ------------------------------------------------------------------ no builder needed


@pytest.mark.parametrize("value, name", [("SM89", "SM89"), ("sm_89", "SM89"), ("89", "SM89"),
                                         ("8.9", "SM89"), ("12.0", "SM120"),
                                         ("current", "CURRENT")])
def test_compute_capability_spellings(value, name):
    assert normalize_capability(value) == name


@pytest.mark.parametrize("flavour, module, package, extra",
                         [("tensorrt-rtx", "tensorrt_rtx", "tensorrt-rtx", "trt-rtx"),
                          ("tensorrt", "tensorrt", "tensorrt", "tensorrt")])
def test_missing_flavour_names_the_extra(monkeypatch, flavour, module, package, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import now fails
    with pytest.raises(MissingDependencyError) as info:
        load_trt(flavour)
    assert info.value.package == package and info.value.extra == extra
    assert f"hermes-deploy[{extra}]" in str(info.value)


def test_unknown_flavour_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="unknown TensorRT flavour 'cuda'; expected tensorrt-rtx or tensorrt"):
        load_trt("cuda")
    with pytest.raises(InputError, match="not found"):
        default_profiles(tmp_path / "absent.onnx")


def test_default_profiles_static_and_unsupported_inputs(tmp_path, rng):
    assert default_profiles(conv_relu_resize(tmp_path, rng)) == {
        "x": ((1, 3, 16, 16), (1, 3, 256, 256), (1, 3, 512, 512))}
    static = _save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
                   [], name="static.onnx")
    assert default_profiles(static) == {}
    seq = _save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])],
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "L", 8])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "L", 8])],
                [], name="seq.onnx")
    with pytest.raises(EngineBuildError, match=r"'x' has shape \(-1, -1, 8\)"):
        default_profiles(seq)


def test_failure_message_is_one_line_for_many_multiline_issues():
    class FakeError:  # what the parser's error objects answer
        def node(self):
            return 3

        def node_name(self):
            return ""

        def node_operator(self):
            return "Loop"

        def code(self):
            return None

        def desc(self):
            return "first line\n  second line"

    issue = trt_compile._issue(FakeError())
    assert issue == ParseIssue("node #3", "Loop", "ERROR: first line second line")
    message = trt_compile._parse_failure_message(
        "TensorRT-RTX", trt_compile.Path("m.onnx"),
        [issue, ParseIssue("scan0", "SelectiveScan", "x")])
    assert "\n" not in message
    assert "node #3 (Loop): ERROR: first line second line; scan0 (SelectiveScan): x" in message


def test_import_is_light():
    code = ("import sys, hermes_deploy.engines.trt.compile\n"
            "print(sorted(m for m in ('tensorrt', 'tensorrt_rtx', 'onnx', 'torch')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
