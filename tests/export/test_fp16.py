"""FP16 with FP32 islands: tiny graphs built in code, run by onnxruntime on CPU."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

from hermes_deploy.export.fp16 import (
    DEFAULT_MAX_ABS,
    Fp16Plan,
    PrecisionError,
    convert_fp16,
    emulate_fp16,
    fp16_report,
    measure_ranges,
    node_keys,
    plan_islands,
    to_fp16,
)

ort = pytest.importorskip("onnxruntime", reason="onnxruntime runs the graphs")

F32, F16 = TP.FLOAT, TP.FLOAT16
NO_ISLANDS = Fp16Plan(keep_fp32_nodes=set(), reasons={})


def _model(nodes, inputs, outputs, inits=(), value_info=(), opsets=(("", 18),)):
    graph = helper.make_graph(
        nodes, "g", inputs, outputs, list(inits), value_info=list(value_info)
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 10  # readable by every onnxruntime we support
    return model


def _init(name, arr, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(arr, dtype=dtype), name)


def _const(name, arr, dtype=np.float32):
    return helper.make_node("Constant", [], [name], name=name, value=_init(name, arr, dtype))


def _run(model, feed):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feed)


def _elem_types(model):
    """Element type of every named value of an (inferred) model."""
    g = onnx.shape_inference.infer_shapes(model).graph
    values = list(g.input) + list(g.output) + list(g.value_info)
    types = {v.name: v.type.tensor_type.elem_type for v in values}
    types.update({t.name: t.data_type for t in g.initializer})
    return types


def _node(model, name):
    return next(n for n in model.graph.node if n.name == name)


# ----------------------------------------------------------------- the hazard graph


def _hazard_model(rng):
    """Conv/MatMul chain, a x1000 / /1000 detour that overflows FP16, Softmax and Exp."""
    x = helper.make_tensor_value_info("x", F32, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", F32, [1, 3, 8, 8])
    inits = [
        _init("W1", rng.normal(0, 0.2, (8, 3, 3, 3))),
        _init("b1", rng.normal(0, 0.1, 8)),
        _init("W2", rng.normal(0, 0.05, (3, 8, 3, 3))),
        _init("b2", rng.normal(0, 0.1, 3)),
        _init("M", rng.normal(0, 0.1, (8, 8))),
        _init("k", 1000.0),
        _init("half", 0.5),  # read by an FP32 node and an FP16 node
        _init("s2", 0.02),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "W1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["c1", "k"], ["big"], name="mul_big"),
        helper.make_node("Mul", ["big", "half"], ["big2"], name="mul_half_big"),
        _const("kc", 500.0),
        helper.make_node("Div", ["big2", "kc"], ["back"], name="div_back"),
        helper.make_node("Relu", ["back"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "W2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "x"], ["res"], name="residual"),
        helper.make_node("Mul", ["res", "half"], ["h"], name="mul_half"),
        helper.make_node("MatMul", ["h", "M"], ["mm"], name="mm"),
        _const("sc", 0.05),
        helper.make_node("Mul", ["mm", "sc"], ["logits"], name="mul_logits"),
        helper.make_node("Softmax", ["logits"], ["sm"], name="softmax", axis=-1),
        helper.make_node("Mul", ["h", "s2"], ["e_in"], name="mul_e"),
        helper.make_node("Exp", ["e_in"], ["ex"], name="exp"),
        helper.make_node("Mul", ["sm", "ex"], ["y"], name="out"),
    ]
    return _model(nodes, [x], [y], inits)


def _hazard_feeds(rng, n=3):
    return [{"x": rng.uniform(-100, 100, (1, 3, 8, 8)).astype(np.float32)} for _ in range(n)]


def test_all_fp16_overflows(rng):
    model = _hazard_model(rng)
    feed = _hazard_feeds(rng, 1)[0]
    ranges = measure_ranges(model, [feed])
    assert ranges["big"] > 65504  # the detour really leaves the FP16 range in FP32
    plain = convert_fp16(model, NO_ISLANDS)
    # onnxruntime's CPU provider computes most FP16 ops in float32 and would hide the
    # overflow; the emulation stores every FP16 tensor as FP16, as TensorRT does.
    (out,) = _run(emulate_fp16(plain), feed)
    (ref,) = _run(model, feed)
    assert not np.isfinite(out).all()
    assert np.isfinite(ref).all()


def test_planned_fp16_matches_fp32(rng):
    model = _hazard_model(rng)
    calib, test = _hazard_feeds(rng, 4), _hazard_feeds(rng, 2)
    fp16, plan, ranges = to_fp16(model, calib)

    assert {"mul_big", "mul_half_big", "div_back", "softmax", "exp"} <= plan.keep_fp32_nodes
    assert plan.reasons["mul_big"].startswith("range:")
    assert "input 'big2'" in plan.reasons["div_back"]  # the reader of a huge tensor stays FP32
    assert plan.reasons["softmax"] == "op-type: Softmax"
    assert {"conv1", "conv2", "mm", "relu", "residual"}.isdisjoint(plan.keep_fp32_nodes)

    emulated = emulate_fp16(fp16)
    for feed in test:
        (ref,) = _run(model, feed)
        for out in (_run(emulated, feed)[0], _run(fp16, feed)[0]):
            assert out.dtype == np.float32 and np.isfinite(out).all()
            # FP16 keeps ~3 decimal digits; a handful of rounded ops stay within 1 %.
            np.testing.assert_allclose(out, ref, rtol=1e-2, atol=1e-2 * np.abs(ref).max())


def test_planned_fp16_is_strongly_typed(rng):
    model = _hazard_model(rng)
    before = model.SerializeToString()
    fp16, plan, _ = to_fp16(model, _hazard_feeds(rng, 2))
    assert model.SerializeToString() == before  # the input model is left alone

    onnx.checker.check_model(fp16, full_check=True)
    assert [v.type.tensor_type.elem_type for v in fp16.graph.input] == [F32]
    assert [v.type.tensor_type.elem_type for v in fp16.graph.output] == [F32]

    types = _elem_types(fp16)
    inits = {t.name: t.data_type for t in fp16.graph.initializer}
    assert inits["W1"] == inits["W2"] == inits["M"] == inits["b1"] == F16
    assert inits["k"] == F32  # read by FP32 nodes only
    assert inits["half"] == F32  # read by both: float32 original plus a float16 copy
    half16 = _node(fp16, "mul_half").input[1]
    assert half16 != "half" and inits[half16] == F16
    # A Constant read only by an FP16 node becomes float16 under its own name.
    assert _node(fp16, "mul_logits").input[1] == "sc" and types["sc"] == F16
    assert types["kc"] == F32

    for node in fp16.graph.node:
        if node.op_type in ("Cast", "Constant"):  # borders; constants follow their readers
            continue
        floats = {types[i] for i in node.input if i and types[i] in (F32, F16)}
        assert len(floats) <= 1, f"{node.name} mixes float types"
        want = F32 if node.name in plan.keep_fp32_nodes else F16
        for o in node.output:
            assert types[o] == want or o == "y", f"{node.name}: {o}"
    (out,) = _run(fp16, _hazard_feeds(rng, 1)[0])  # onnxruntime refuses mismatched types
    assert np.isfinite(out).all()


def test_name_patterns_and_report(rng):
    model = _hazard_model(rng)
    ranges = measure_ranges(model, _hazard_feeds(rng, 2))
    # torch.onnx records module paths in node metadata; patterns match those too.
    scope = _node(model, "conv2").metadata_props.add()
    scope.key, scope.value = "namespace", "/body/ssm/conv2: Conv2d"
    plan = plan_islands(model, ranges, name_patterns=[r"^mm$", r"/ssm/"])
    assert plan.reasons["mm"] == "name: matches '^mm$'"
    assert plan.reasons["conv2"] == "name: matches '/ssm/'"
    rep = fp16_report(plan)
    assert rep["nodes"] == len(model.graph.node) - 2 == rep["fp16"] + rep["fp32"]  # no Constants
    assert rep["by_op_type"]["Softmax"] == {"fp16": 0, "fp32": 1}
    assert rep["by_op_type"]["Conv"] == {"fp16": 1, "fp32": 1}
    assert rep["fp32_by_rule"]["range"] >= 3 and rep["fp32_by_rule"]["name"] == 2
    assert rep["summary"].startswith(f"{rep['fp16']} of {rep['nodes']} nodes FP16")
    assert set(rep["fp32_nodes"]) == plan.keep_fp32_nodes
    # A lower threshold keeps more nodes: |c1| is in the hundreds.
    tight = plan_islands(model, ranges, max_abs=ranges["c1"] / 2)
    assert "conv1" in tight.keep_fp32_nodes and "conv1" not in plan.keep_fp32_nodes
    assert DEFAULT_MAX_ABS < 65504


# ------------------------------------------------------------------- dynamic shapes


def _dynamic_model(rng):
    """Dynamic N/H/W; Resize by constant scales and by sizes computed from Shape."""
    x = helper.make_tensor_value_info("x", F32, ["N", 2, "H", "W"])
    outs = [helper.make_tensor_value_info(n, F32, None) for n in ("y1", "y2")]
    inits = [
        _init("W", rng.normal(0, 0.3, (2, 2, 3, 3))),
        _init("i0", [0], np.int64), _init("i2", [2], np.int64), _init("i4", [4], np.int64),
        _init("two", 2.0), _init("one", 1.0),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        _const("scales", [1, 1, 2, 2]),
        helper.make_node("Resize", ["r", "", "scales"], ["y1"], name="up_scales", mode="nearest"),
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Slice", ["s", "i2", "i4"], ["hw"], name="hw"),
        helper.make_node("Slice", ["s", "i0", "i2"], ["nc"], name="nc"),
        helper.make_node("Cast", ["hw"], ["hwf"], name="hw_float", to=F32),
        helper.make_node("Mul", ["hwf", "two"], ["hw2"], name="hw_x2"),
        helper.make_node("Add", ["hw2", "one"], ["hw3"], name="hw_plus1"),
        helper.make_node("Cast", ["hw3"], ["hwi"], name="hw_int", to=TP.INT64),
        helper.make_node("Concat", ["nc", "hwi"], ["sizes"], name="sizes", axis=0),
        helper.make_node("Resize", ["r", "", "", "sizes"], ["y2"], name="up_sizes", mode="nearest"),
    ]
    return _model(nodes, [x], outs, inits)


def test_dynamic_shapes(rng):
    model = _dynamic_model(rng)
    calib = [{"x": rng.normal(size=(2, 2, 5, 6)).astype(np.float32)}]
    fp16, plan, _ = to_fp16(model, calib)
    onnx.checker.check_model(fp16, full_check=True)
    assert _elem_types(fp16)["c"] == F16
    assert _node(fp16, "up_scales").input[2] == "scales"  # Resize scales stay float32
    for key in ("hw_float", "hw_x2", "hw_plus1"):
        assert plan.reasons[key].startswith("shape-arithmetic"), key

    # W = 1100: 2W + 1 = 2201 is not a float16 number (it rounds to 2200).
    for shape in [(2, 2, 5, 6), (1, 2, 3, 1100)]:
        x = rng.normal(size=shape).astype(np.float32)
        ref1, ref2 = _run(model, {"x": x})
        out1, out2 = _run(fp16, {"x": x})
        n, _, h, w = shape
        assert out1.shape == ref1.shape == (n, 2, 2 * h, 2 * w)
        assert out2.shape == ref2.shape == (n, 2, 2 * h + 1, 2 * w + 1)
        for out, ref in ((out1, ref1), (out2, ref2)):
            np.testing.assert_allclose(out, ref, rtol=1e-2, atol=1e-2 * np.abs(ref).max())


# ------------------------------------------------------------------ measure_ranges


def test_measure_ranges_matches_numpy(rng):
    x = helper.make_tensor_value_info("x", F32, ["N", 3])
    y = helper.make_tensor_value_info("y", F32, None)
    w, off = np.array([3.0, -2.0, 0.5], np.float32), np.float32(2.0)
    nodes = [
        helper.make_node("Mul", ["x", "w"], ["a"], name="a"),
        helper.make_node("Relu", ["a"], ["b"], name="b"),
        helper.make_node("Sub", ["b", "off"], ["c"], name="c"),
        helper.make_node("Exp", ["c"], ["e"], name="e"),
        helper.make_node("ReduceSum", ["e"], ["y"], name="y", keepdims=1),
        helper.make_node("Shape", ["e"], ["shape"], name="shape"),
    ]
    model = _model(nodes, [x], [y], [_init("w", w), _init("off", off)])
    feeds = [{"x": rng.normal(0, 3, (n, 3)).astype(np.float32)} for n in (4, 7)]

    expect: dict[str, float] = {}
    for feed in feeds:
        a = feed["x"] * w
        b = np.maximum(a, 0)
        c = b - off
        e = np.exp(c)
        vals = {"x": feed["x"], "a": a, "b": b, "c": c, "e": e, "y": e.sum()}
        for k, v in vals.items():
            expect[k] = max(expect.get(k, 0.0), float(np.abs(v).max()))

    ranges = measure_ranges(model, feeds)
    assert set(ranges) == set(expect)  # int tensors (Shape) are not measured
    for k, v in expect.items():
        assert ranges[k] == pytest.approx(v, rel=1e-5), k
    assert measure_ranges(model, feeds, outputs_per_run=2) == ranges

    hot = measure_ranges(model, [{"x": np.full((1, 3), 100.0, np.float32)}])
    assert hot["e"] == hot["y"] == float("inf") and np.isfinite(hot["c"])
    assert "range: output 'e'" in plan_islands(model, hot, op_types_fp32=()).reasons["e"]

    with pytest.raises(PrecisionError, match="expected inputs"):
        measure_ranges(model, [{"image": feeds[0]["x"]}])


# ------------------------------------------------------------------- custom domain


def test_custom_domain_stays_fp32():
    x = helper.make_tensor_value_info("x", F32, [1, 2, 4, 4])
    y = helper.make_tensor_value_info("y", F32, [1, 2, 4, 4])
    inits = [_init("W", np.full((2, 2, 1, 1), 0.5)), _init("A", [-1.0, -2.0])]
    scan = helper.make_node(
        # a custom op of another domain (the hermes schemas may be registered by now,
        # and this toy node does not follow them)
        "OpaqueScan", ["c", "A"], ["s"], name="scan", domain="acme",
        chunk=16, table=_init("table", [1.0, 2.0, 3.0]),
    )
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], name="conv"),
        scan,
        helper.make_node("Add", ["s", "c"], ["y"], name="add"),
    ]
    model = _model(
        nodes, [x], [y], inits,
        value_info=[helper.make_tensor_value_info("s", F32, [1, 2, 4, 4])],
        opsets=(("", 18), ("acme", 1)),
    )
    plan = plan_islands(model, {})
    assert plan.keep_fp32_nodes == {"scan"}
    assert plan.reasons["scan"].startswith("domain:")
    # Even a plan without islands leaves the custom node alone.
    plain = convert_fp16(model, NO_ISLANDS)
    assert _node(plain, "scan").input[1] == "A"
    assert _elem_types(plain)[_node(plain, "scan").input[0]] == F32

    fp16 = convert_fp16(model, plan)
    onnx.checker.check_model(fp16, full_check=True)
    types = _elem_types(fp16)
    scan16 = _node(fp16, "scan")
    assert [types[i] for i in scan16.input] == [F32, F32]
    assert scan16.input[1] == "A" and types["s"] == F32
    attrs = {a.name: a for a in scan16.attribute}
    assert attrs["table"].t.data_type == F32 and attrs["chunk"].i == 16
    assert types["W"] == F16 and types["c"] == F16
    add = _node(fp16, "add")
    assert [types[i] for i in add.input] == [F16, F16]


def test_constants_beyond_fp16_keep_their_reader_fp32(rng):
    x = helper.make_tensor_value_info("x", F32, [2, 3])
    y = helper.make_tensor_value_info("y", F32, [2, 3])
    nodes = [
        helper.make_node("Mul", ["x", "huge"], ["a"], name="scale_up"),  # 1e5 is inf in FP16
        helper.make_node("Div", ["a", "huge"], ["b"], name="scale_down"),
        helper.make_node("Max", ["b", "mask"], ["y"], name="masked"),  # -inf is exact in FP16
    ]
    inits = [_init("huge", 1e5), _init("mask", [-np.inf, 0.0, -np.inf])]
    model = _model(nodes, [x], [y], inits)
    plan = plan_islands(model, {})
    assert plan.reasons == {
        "scale_up": "const-range: constant 'huge' exceeds the float16 range",
        "scale_down": "const-range: constant 'huge' exceeds the float16 range",
    }
    fp16 = convert_fp16(model, NO_ISLANDS)  # structural: kept whatever the plan says
    feed = {"x": rng.normal(size=(2, 3)).astype(np.float32)}
    out, ref = _run(emulate_fp16(fp16), feed)[0], _run(model, feed)[0]
    np.testing.assert_allclose(out, ref, rtol=1e-2, atol=1e-3)


# -------------------------------------------------------------------- control flow


def test_subgraph_reads_keep_float32(rng):
    """An If branch reads an FP16 node's output from the outer scope by name."""
    x = helper.make_tensor_value_info("x", F32, [1, 2, 4, 4])
    flag = helper.make_tensor_value_info("flag", TP.BOOL, [])
    y = helper.make_tensor_value_info("y", F32, [1, 2, 4, 4])

    def branch(op, name):
        out = helper.make_tensor_value_info(f"{name}_out", F32, [1, 2, 4, 4])
        node = helper.make_node(op, ["c", "one"], [f"{name}_out"], name=f"{name}_op")
        return helper.make_graph([node], name, [], [out])

    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], name="conv"),
        helper.make_node("If", ["flag"], ["branch"], name="if",
                         then_branch=branch("Add", "then"), else_branch=branch("Sub", "else")),
        helper.make_node("Relu", ["branch"], ["y"], name="relu"),
    ]
    inits = [_init("W", rng.normal(0, 0.5, (2, 2, 1, 1))), _init("one", 1.0)]
    model = _model(nodes, [x, flag], [y], inits)
    fp16, plan, _ = to_fp16(model, [{"x": rng.normal(size=(1, 2, 4, 4)).astype(np.float32),
                                     "flag": np.array(True)}])
    onnx.checker.check_model(fp16, full_check=True)
    assert plan.reasons["if"].startswith("control-flow")
    types = _elem_types(fp16)
    assert types["c"] == F32 and types["one"] == F32  # names the branches read
    assert types[_node(fp16, "conv").output[0]] == F16
    assert types[_node(fp16, "relu").input[0]] == F16
    for cond in (True, False):
        feed = {"x": rng.normal(size=(1, 2, 4, 4)).astype(np.float32), "flag": np.array(cond)}
        np.testing.assert_allclose(_run(fp16, feed)[0], _run(model, feed)[0], rtol=1e-2, atol=1e-2)


# ------------------------------------------------------ ops with type-bearing attrs


def _typed_ops_model():
    x = helper.make_tensor_value_info("x", F32, [2, 4])
    y = helper.make_tensor_value_info("y", F32, None)
    inits = [
        _init("zero", 0.0), _init("neg", -1.0), _init("lo", -3.0), _init("hi", 3.0),
        _init("start", 0.0), _init("limit", 4.0), _init("delta", 1.0),
        _init("gamma", [1.0, 0.5, 2.0, 1.0]), _init("beta", [0.0, 0.1, 0.2, 0.3]),
        _init("pads", [0, 1, 0, 1], np.int64), _init("pad_value", 0.25),
    ]
    nodes = [
        # Reads x while only its float32 version exists; its type follows the input.
        helper.make_node("RandomNormalLike", ["x"], ["noise0"], name="noise0", scale=1e-4),
        helper.make_node("Shape", ["x"], ["sx"], name="shape"),
        helper.make_node("ConstantOfShape", ["sx"], ["zeros"], name="zeros"),  # float32 by default
        helper.make_node("Add", ["x", "zeros"], ["a"], name="add_zeros"),
        helper.make_node("EyeLike", ["a"], ["eye"], name="eye"),
        helper.make_node("Sum", ["a", "eye", "noise0"], ["b"], name="add_eye"),
        helper.make_node("Cast", ["b"], ["c"], name="cast", to=F32),
        helper.make_node("Greater", ["c", "zero"], ["pos"], name="greater"),
        helper.make_node("Where", ["pos", "c", "neg"], ["d"], name="where"),
        helper.make_node("Range", ["start", "limit", "delta"], ["ramp"], name="range"),
        helper.make_node("Add", ["d", "ramp"], ["e"], name="add_ramp"),
        helper.make_node("LayerNormalization", ["e", "gamma", "beta"], ["ln"], name="ln", axis=-1),
        helper.make_node("Concat", ["ln", "x"], ["cat"], name="cat", axis=0),
        helper.make_node("RandomNormalLike", ["cat"], ["noise"], name="noise", scale=1e-4),
        helper.make_node("Add", ["cat", "noise"], ["f"], name="add_noise"),
        helper.make_node("Pad", ["f", "pads", "pad_value"], ["p"], name="pad"),
        helper.make_node("Clip", ["p", "lo", "hi"], ["y"], name="clip"),
    ]
    return _model(nodes, [x], [y], inits)


@pytest.mark.parametrize("islands", [False, True])
@pytest.mark.parametrize("keep_io", [True, False])
def test_type_bearing_ops_stay_consistent(rng, islands, keep_io):
    model = _typed_ops_model()
    x = rng.normal(0, 2, (2, 4)).astype(np.float32)
    plan = plan_islands(model, {}) if islands else NO_ISLANDS
    fp16 = convert_fp16(model, plan, keep_io_fp32=keep_io)
    onnx.checker.check_model(fp16, full_check=True)
    io = F32 if keep_io else F16
    assert fp16.graph.input[0].type.tensor_type.elem_type == io
    assert fp16.graph.output[0].type.tensor_type.elem_type == io
    types = _elem_types(fp16)
    assert types["ramp"] == F32  # Range does not admit float16
    assert types["zeros"] == types["eye"] == types["noise"] == F16
    assert types["ln"] == (F32 if islands else F16)

    (ref,) = _run(model, {"x": x})
    (out,) = _run(fp16, {"x": x.astype(np.float32 if keep_io else np.float16)})
    assert out.shape == ref.shape == (4, 6)
    np.testing.assert_allclose(out.astype(np.float32), ref, rtol=1e-2, atol=1e-2)


def test_plan_from_another_model_is_refused(rng):
    model = _hazard_model(rng)
    with pytest.raises(PrecisionError, match="unknown keys"):
        convert_fp16(model, Fp16Plan({"not_a_node"}, {"not_a_node": "name: x"}))
    with pytest.raises(PrecisionError, match="at least one"):
        to_fp16(model, [])
    assert node_keys(model.graph)[0] == "conv1"
