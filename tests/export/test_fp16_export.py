"""FP16 export of the trained default model: quality on real photographs, TensorRT-RTX.

FP16 quality is measured on CPU through :func:`hermes_deploy.export.fp16.emulate_fp16`
(onnxruntime's CPU kernels would otherwise compute FP16 graphs in FP32 and hide
overflow), which ``verify`` applies automatically.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from hermes_deploy.checks.verify import verify_onnx
from hermes_deploy.export.onnx_export import ExportOptions, export_onnx
from hermes_deploy.model.api import bundled_models

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif("default" not in bundled_models(), reason="no bundled default model")]

PHOTOS = ["astronaut", "coffee", "chelsea"]


@pytest.fixture(scope="module")
def fp16_graphs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fp16")
    with_islands = export_onnx("default", root / "x2-fp16.onnx", ExportOptions(precision="fp16"))
    without = export_onnx("default", root / "x2-fp16-noislands.onnx",
                          ExportOptions(precision="fp16", fp16_islands=False))
    return with_islands, without


def test_fp16_matches_fp32_torch_on_real_photos(fp16_graphs):
    result, _ = fp16_graphs
    model = onnx.load(str(result.path))
    assert {n.domain for n in model.graph.node} <= {""}  # portable: lowerings inlined
    inits = [i.data_type for i in model.graph.initializer]
    assert inits.count(onnx.TensorProto.FLOAT16) > inits.count(onnx.TensorProto.FLOAT)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # IO FP32
    report = verify_onnx(result.path, "default", images=PHOTOS, sizes=((96, 96), (160, 224)),
                         batches=(1,))
    assert all(c.finite for c in report.cases)
    assert min(c.psnr for c in report.cases) >= 45.0, report.table()
    assert result.fp16_report["fp32"] < result.fp16_report["nodes"] / 2


def test_without_islands_nothing_breaks_on_this_model(fp16_graphs):
    """Measured: the default model's activations stay far inside FP16's range, so a graph
    with only the structural FP32 nodes (custom ops, shape arithmetic) is as good as the
    planned one. The islands are a margin here; tests/export/test_fp16.py shows on a
    graph with large activations what they prevent (inf / NaN)."""
    with_islands, without = fp16_graphs
    assert without.fp16_report["fp32"] < with_islands.fp16_report["fp32"]
    kw = dict(images=PHOTOS, sizes=((160, 224),), batches=(1,))
    good = verify_onnx(with_islands.path, "default", **kw)
    plain = verify_onnx(without.path, "default", **kw)
    good_psnr = min(c.psnr for c in good.cases)
    plain_psnr = min(c.psnr if c.finite else -np.inf for c in plain.cases)
    print(f"FP16 vs FP32 torch, min PSNR: islands {good_psnr:.2f} dB, no islands {plain_psnr:.2f} dB")
    assert all(c.finite for c in plain.cases) and plain_psnr >= 45.0
    assert abs(good_psnr - plain_psnr) < 3.0


@pytest.mark.trt
def test_fp16_graph_builds_with_tensorrt_rtx(fp16_graphs):
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install tensorrt-rtx)")
    from hermes_deploy.engines.trt.compile import build_engine, default_profiles, parse_onnx

    result, _ = fp16_graphs
    assert parse_onnx(result.path) == []
    report = build_engine(result.path, None, profiles=default_profiles(result.path, tile=(64, 64)))
    assert report.engine_bytes > 100_000
