"""Graph hygiene passes of the export (``hermes_deploy.export.graph``)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from hermes_deploy.export.graph import clean_graph


def _torch_style_gelu_graph() -> onnx.ModelProto:
    """A Conv followed by GELU in the operand order the torch exporter emits:
    x * (0.5 * (1 + erf(x / sqrt 2)))."""
    rng = np.random.default_rng(0)
    consts = [numpy_helper.from_array(rng.standard_normal((4, 3, 1, 1)).astype(np.float32), "w"),
              numpy_helper.from_array(np.array(2 ** 0.5, np.float32), "sqrt2"),
              numpy_helper.from_array(np.array(1.0, np.float32), "one"),
              numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    nodes = [helper.make_node("Conv", ["input", "w"], ["x"]),
             helper.make_node("Div", ["x", "sqrt2"], ["d"]),
             helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["a"]),
             helper.make_node("Mul", ["half", "a"], ["m"]),
             helper.make_node("Mul", ["x", "m"], ["output"])]
    graph = helper.make_graph(nodes, "gelu", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                          [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)], consts)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _optimized_ops(model: onnx.ModelProto, tmp_path) -> list[str]:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node]


def test_gelu_is_put_in_the_form_onnxruntime_fuses(tmp_path):
    raw = _torch_style_gelu_graph()
    assert "Gelu" not in _optimized_ops(raw, tmp_path)  # the exporter's form stays unfused
    cleaned = clean_graph(raw)
    assert "Gelu" in _optimized_ops(cleaned, tmp_path)

    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32) * 3
    got = ort.InferenceSession(cleaned.SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    w = numpy_helper.to_array(raw.graph.initializer[0]).astype(np.float64)
    conv = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w))
    ref = torch.nn.functional.gelu(conv).numpy()  # float64, exact erf GELU
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5)


def test_gelu_rewrite_leaves_other_graphs_alone():
    model = _torch_style_gelu_graph()
    # a different constant is not GELU: x * (0.5 * (1 + erf(x / 2)))
    model.graph.initializer[1].CopyFrom(numpy_helper.from_array(np.array(2.0, np.float32), "sqrt2"))
    cleaned = clean_graph(model)
    muls = [n for n in cleaned.graph.node if n.op_type == "Mul"]
    assert [list(n.input) for n in muls] == [["half", "a"], ["x", "m"]]
