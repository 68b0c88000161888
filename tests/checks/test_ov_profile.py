"""The OpenVINO profile counts work from the compiled graph's shapes: checked against
the multiply-adds of a small graph worked out by hand, run through the real plugin."""

from __future__ import annotations

import numpy as np
import pytest

from hermes_deploy.checks.ov_profile import (block_of, kernel_precision, node_flops,
                                             profile_requests, summarize)

ov = pytest.importorskip("openvino")
onnx = pytest.importorskip("onnx")


def _graph(path):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    consts = [numpy_helper.from_array(rng.random((8, 3, 3, 3), np.float32), "net.stem.weight"),
              numpy_helper.from_array(rng.random((8, 1, 5, 5), np.float32), "net.blocks.0.dw.weight"),
              numpy_helper.from_array(rng.random((2, 32, 16), np.float32), "net.head.proj.weight"),
              numpy_helper.from_array(np.array([1, 2, 64, 64], np.int64), "shape")]
    nodes = [helper.make_node("Conv", ["x", "net.stem.weight"], ["c"], pads=[1, 1, 1, 1], name="/stem/conv"),
             helper.make_node("Relu", ["c"], ["r"], name="/stem/relu"),
             helper.make_node("Conv", ["r", "net.blocks.0.dw.weight"], ["d"], pads=[2, 2, 2, 2], group=8,
                              name="/blocks.0/dw/conv"),
             helper.make_node("Reshape", ["d", "shape"], ["rr"], name="/blocks.0/reshape"),
             helper.make_node("Transpose", ["rr"], ["t"], perm=[0, 1, 3, 2], name="/blocks.0/t"),
             helper.make_node("Slice", ["t", "starts", "ends", "axes"], ["t2"], name="/head/slice"),
             helper.make_node("MatMul", ["t2", "net.head.proj.weight"], ["y"], name="/head/matmul")]
    consts += [numpy_helper.from_array(np.array([v], np.int64), n)
               for n, v in (("starts", 0), ("ends", 32), ("axes", 3))]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], consts)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))


def test_counted_work_equals_the_hand_count_on_the_real_plugin(tmp_path):
    _graph(tmp_path / "g.onnx")
    core = ov.Core()
    model = core.read_model(str(tmp_path / "g.onnx"))
    compiled = core.compile_model(model, "CPU",
                                  {"PERF_COUNT": "YES", "INFERENCE_PRECISION_HINT": "f32",
                                   "INFERENCE_NUM_THREADS": "1"})
    x = np.random.default_rng(1).random((1, 3, 32, 32), np.float32)
    rows = profile_requests(compiled, [x], repeats=2, source_model=model)
    conv = 2 * (8 * 3 * 3 * 3) * 32 * 32  # dense 3x3, 3 -> 8 channels
    depthwise = 2 * (8 * 5 * 5) * 32 * 32  # 8 groups of one channel, 5x5
    matmul = 2 * (1 * 2 * 64 * 16) * 32  # [1,2,64,32] x [2,32,16]
    total = sum(r["flops"] for r in rows)
    assert total == conv + depthwise + matmul
    assert all(r["seconds"] >= 0 for r in rows)
    by_block = {g["block"]: g for g in summarize(rows, "block")}
    assert by_block["stem"]["flops"] == conv  # the ReLU is fused into the convolution
    assert by_block["blocks.0"]["flops"] == depthwise  # with the reshape and transpose after it
    assert by_block["blocks.0"]["nodes"] >= 2
    assert by_block["head"]["flops"] == matmul
    shares = summarize(rows, "type")
    assert abs(sum(g["share"] for g in shares) - 1.0) < 1e-9
    assert sum(g["nodes"] for g in shares) == len(rows)


@pytest.mark.parametrize("kind,inputs,output,want", [
    ("MatMul", [[4, 8, 3], [3, 5]], [4, 8, 5], 2 * 4 * 8 * 5 * 3),
    ("MatMul", [[4, 3, 8], [3, 5]], [4, 8, 5], 2 * 4 * 8 * 5 * 3),  # A transposed
    ("FullyConnected", [[10, 7], [6, 7]], [10, 6], 2 * 10 * 6 * 7),
    ("GroupConvolution", [[1, 6, 9, 9], [3, 2, 2, 3, 3]], [1, 6, 9, 9], 2 * 3 * 2 * 2 * 9 * 81),
    ("Eltwise", [[1, 2], [1, 2]], [1, 2], 0),
    ("MatMul", [None, [3, 5]], [4, 8, 5], 0),
])
def test_node_flops(kind, inputs, output, want):
    assert node_flops(kind, inputs, output) == want


def test_names():
    assert kernel_precision("brgconv_avx512_amx_bf16") == "bf16"
    assert kernel_precision("jit_uni_FP32") == "f32"
    assert kernel_precision("brgemm_avx512_amx_u8") == "i8"
    assert kernel_precision("undef") == "-"
    assert block_of("net.local_blocks.0.mix.fused.weight") == "local_blocks.0"
    assert block_of("net.head.2.fused.weight") == "head"
    assert block_of("Reshape_4636") == ""
