"""INT8 Q/DQ graphs of the trained default model: layout TensorRT accepts, quality on
held-out photographs, reproducible ranges, rebuild from saved ranges, TensorRT-RTX build.

One FP32 export (``tensorrt`` target, so the scan/DFT are single nodes) and one
calibration on few small tiles of the training photos serve the whole module. The float
islands are the groups ``--sensitivity`` picks for this model (see README, INT8).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from hermes_deploy.calibration import TileReader, load_calibration_images
from hermes_deploy.checks.evaluate import evaluate_model
from hermes_deploy.cpu import cpu_flags, has_precision
from hermes_deploy.engines.ort_runner import OrtRunner
from hermes_deploy.export.int8 import (
    Int8Options,
    calibrate_int8,
    calibrate_ranges,
    candidate_nodes,
    load_ranges,
    noise_mse,
    predicted_cost_db,
    quantize_qdq,
    sensitivity,
)
from hermes_deploy.export.lowering import inline_lowerings
from hermes_deploy.export.onnx_export import ExportOptions, export_onnx
from hermes_deploy.export.ort import context_fn, ort_session
from hermes_deploy.model.api import bundled_models
from hermes_deploy.quality import HELDOUT_PHOTOS
from hermes_deploy.spec import ModelSpec

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif("default" not in bundled_models(), reason="no bundled default model")]

ISLANDS = ("head", "local_blocks.0", "upsample")
CALIB = ["rocket", "camera", "coins", "brick"]  # training photos only
OPTIONS = Int8Options(samples=8, batch=4, tile=(48, 48), exclude=ISLANDS, target="portable")


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    root = tmp_path_factory.mktemp("int8")
    return export_onnx("default", root / "x2.onnx", ExportOptions(target="tensorrt"))


@pytest.fixture(scope="module")
def int8(fp32):
    out = fp32.path.with_name("x2.int8.onnx")
    return calibrate_int8(fp32.path, out, OPTIONS, images=CALIB,
                          report_path=out.with_name("report.json"))


def _reader(fp32, seed=0, samples=4):
    images = load_calibration_images(CALIB)
    return TileReader(images, context_fn(fp32.context_path), tile=(32, 32), samples=samples,
                      batch=2, scale=2, seed=seed)


def _drops(fp, q, label: str) -> dict[str, float]:
    """Held-out PSNR-Y lost by ``q`` against ``fp``, per photo (printed)."""
    rows = {r.name: r for r in fp.images}
    assert sorted(rows) == sorted(r.name for r in q.images) == sorted(HELDOUT_PHOTOS)
    drops = {}
    for r in q.images:
        assert np.isfinite(r.psnr), f"{r.name}: {label} PSNR-Y is {r.psnr}"
        drops[r.name] = rows[r.name].psnr - r.psnr
        print(f"{r.name:<10} FP32 {rows[r.name].psnr:.3f}  {label} {r.psnr:.3f}  drop {drops[r.name]:+.3f} dB")
    return drops


def test_int8_within_budget_of_fp32_on_held_out_photos(fp32, int8):
    """README, INT8: with the sensitivity islands (the fixture's ``exclude``) onnxruntime
    loses 0.010-0.011 dB mean PSNR-Y, within the 0.1 dB budget, every photo too (this
    module's smaller calibration: 0.010 mean, 0.017 at most). Without the islands it
    loses 0.13 dB, over the budget."""
    fp = evaluate_model(str(fp32.path), list(HELDOUT_PHOTOS))
    q = evaluate_model(str(int8.path), list(HELDOUT_PHOTOS))
    drops = _drops(fp, q, "INT8")
    mean = float(np.mean(list(drops.values())))
    assert mean <= 0.1, f"INT8 with the islands loses {mean:.3f} dB mean PSNR-Y (README: 0.010, budget 0.1)"
    worst = max(drops, key=drops.get)
    assert drops[worst] <= 0.1, f"{worst}: INT8 with the islands loses {drops[worst]:.3f} dB"
    # no NaN/Inf anywhere in the output of a whole image
    with OrtRunner(int8.path) as runner:
        x = np.random.default_rng(0).random((1, 3, 80, 112), dtype=np.float32)
        assert np.isfinite(runner.infer(x, runner.context(x))).all()


def test_qdq_layout_is_what_tensorrt_accepts(fp32, int8):
    model = onnx.load(str(int8.path))
    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    readers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    assert {n.domain for n in model.graph.node} <= {""}  # portable: lowerings inlined
    dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert dq
    for node in dq:
        # every DQ output feeds a Conv directly; nothing in the scan/DFT reads INT8
        assert {r.op_type for r in readers[node.output[0]]} == {"Conv"}, node.name
        zp = numpy_helper.to_array(inits[node.input[2]])
        assert zp.dtype == np.int8 and not zp.any()
        src = inits.get(node.input[0])
        if src is not None:  # a weight: INT8, one scale per output channel
            w = numpy_helper.to_array(src)
            assert w.dtype == np.int8
            assert numpy_helper.to_array(inits[node.input[1]]).shape == (w.shape[0],)
    quantized = 0
    for conv in (n for n in model.graph.node if n.op_type == "Conv"):
        reads_int8 = conv.input[0] in producers and producers[conv.input[0]].op_type == "DequantizeLinear"
        quantized += reads_int8
        if len(conv.input) > 2 and conv.input[2]:
            bias = inits[conv.input[2]]  # float initializer, never a DQ of INT32
            assert bias.data_type == onnx.TensorProto.FLOAT
    assert quantized == int8.report["quantized_nodes"] > 30
    # the float islands' convs read float: their weights stay float initializers
    for name in ("net.head.4.weight", "net.upsample.kernel", "net.local_blocks.0.out.weight"):
        assert inits[name].data_type == onnx.TensorProto.FLOAT
    assert inits["net.fusion.0.attn.qkv.weight_quantized"].data_type == onnx.TensorProto.INT8


def test_spec_ranges_and_context_graph(int8):
    spec = ModelSpec.from_onnx(int8.path)
    assert spec.precision == "int8" and spec.target == "portable"
    assert (int8.path.parent / spec.context_graph).is_file()
    assert spec.extra["int8"]["ranges"] == int8.ranges_path.name
    ranges, doc = load_ranges(int8.ranges_path)
    assert doc["calibration"]["images"] == CALIB and doc["method"] == "minmax"
    assert all(lo == -hi and hi > 0 for lo, hi in ranges.values())  # symmetric
    report = json.loads(int8.path.with_name("report.json").read_text())
    assert report["quantized_nodes"] == int8.report["quantized_nodes"]


def test_same_images_and_seed_give_the_same_ranges(fp32):
    model = onnx.load(str(fp32.path))
    a = calibrate_ranges(model, _reader(fp32, seed=0), "minmax")
    b = calibrate_ranges(model, _reader(fp32, seed=0), "minmax")
    c = calibrate_ranges(model, _reader(fp32, seed=7), "minmax")
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_rebuild_from_saved_ranges_needs_no_images(fp32, int8, tmp_path):
    again = calibrate_int8(fp32.path, tmp_path / "re.int8.onnx", OPTIONS, images=["no-such-photo"],
                           ranges_path=int8.ranges_path)
    first = {i.name: i.SerializeToString() for i in onnx.load(str(int8.path)).graph.initializer}
    second = {i.name: i.SerializeToString() for i in onnx.load(str(again.path)).graph.initializer}
    assert first == second


def test_sensitivity_makes_the_noisiest_group_float(fp32):
    model = onnx.load(str(fp32.path))
    reader = _reader(fp32, seed=3)
    ranges = calibrate_ranges(model, reader, "minmax")
    groups = {n: g for n, g in candidate_nodes(model, ["Conv"]).items() if g in ("head", "fusion.0")}
    pairs = list(reader.pairs())
    result = sensitivity(model, ranges, groups, pairs, scale=2, budget_db=0.1, op_types=["Conv"])
    noise = result["group_noise_mse"]
    assert noise["head"] > noise["fusion.0"] > 0
    assert result["float_islands"] == ["head"] and result["within_budget"]
    # the final step's noise, measured here directly against the FP32 graph
    ref = [ort_session(model).run(None, f)[0] for f, _ in pairs]
    rest = quantize_qdq(model, ranges, [n for n, g in groups.items() if g == "fusion.0"])
    outs = [ort_session(rest).run(None, f)[0] for f, _ in pairs]
    assert noise_mse(outs, ref, 2) == pytest.approx(result["steps"][-1]["noise_mse"], rel=1e-6)
    y_ref = 255.0 ** 2 * 10 ** (-3.8)
    assert predicted_cost_db(y_ref, 38.0) == pytest.approx(10 * np.log10(2.0))


@pytest.mark.trt
def test_int8_builds_with_tensorrt_rtx_on_cpu(int8):
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install 'hermes-deploy[trt-rtx]')")
    from hermes_deploy.engines.trt.compile import build_engine, default_profiles, parse_onnx

    assert parse_onnx(int8.path) == []
    report = build_engine(int8.path, profiles=default_profiles(int8.path, tile=(48, 48)))
    assert report.engine_bytes > 0
    assert report.inputs[0][1] == "float32"


def test_cli_calibrate_reuses_ranges_and_reports_errors(fp32, int8, tmp_path):
    from typer.testing import CliRunner

    from hermes_deploy.cli.app import app

    runner = CliRunner()
    out = tmp_path / "cli.int8.onnx"
    res = runner.invoke(app, ["calibrate", str(fp32.path), "-o", str(out), "--ranges", str(int8.ranges_path),
                              "--exclude", ",".join(ISLANDS), "--target", "portable",
                              "--report", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    assert ModelSpec.from_onnx(out).precision == "int8" and (tmp_path / "cli.int8.context.onnx").is_file()
    bad = runner.invoke(app, ["calibrate", str(fp32.path), "-o", str(tmp_path / "b.onnx"), "--method", "kl"])
    assert bad.exit_code == 2 and "unknown calibration method 'kl'" in bad.output
    assert not (tmp_path / "b.onnx").exists()
    # a portable graph: its MatMuls include the lowered scan/DFT, so only Conv is allowed
    portable = inline_lowerings(onnx.load(str(fp32.path)), fold=False)
    onnx.save(portable, str(tmp_path / "p.onnx"))
    (tmp_path / fp32.context_path.name).write_bytes(fp32.context_path.read_bytes())
    res = runner.invoke(app, ["calibrate", str(tmp_path / "p.onnx"), "-o", str(tmp_path / "p8.onnx"),
                              "--op-types", "Conv,MatMul"])
    assert res.exit_code == 2 and "only Conv" in res.output
    assert not (tmp_path / "p8.onnx").exists()


def _openvino_int8_budget(flags: frozenset[str]) -> float:
    """The mean held-out PSNR-Y loss BENCHMARKS.md measured for OpenVINO INT8 with the
    islands, as a bound: 0.019 dB on an AMX Xeon (the 0.1 dB target holds there), 0.125 dB
    on an AVX512-BF16/VNNI EPYC without AMX (its low-precision transformations treat the
    Q/DQ pairs differently): 0.15 dB there."""
    return 0.1 if "amx_int8" in flags else 0.15


@pytest.mark.skipif(not has_precision("int8"), reason="this CPU lacks AVX512-VNNI, AVX-VNNI and AMX-INT8: "
                    "OpenVINO's int8 kernels need one of them")
def test_openvino_runs_the_int8_graph_within_budget(fp32, int8):
    """The Q/DQ graph on OpenVINO's low-precision kernels, held to what BENCHMARKS.md
    measured on a CPU of this kind (see :func:`_openvino_int8_budget`)."""
    pytest.importorskip("openvino", reason="openvino is not installed")
    fp = evaluate_model(str(fp32.path), list(HELDOUT_PHOTOS))
    q = evaluate_model(str(int8.path), list(HELDOUT_PHOTOS), backend="openvino")
    floats = "bf16" if has_precision("bf16") else "f32"  # the unquantized ops (ov_runner.float_hint)
    assert q.extra["backend"] == f"openvino (CPU, int8, float ops {floats})"
    drops = _drops(fp, q, "OpenVINO INT8")
    budget = _openvino_int8_budget(cpu_flags())
    mean = float(np.mean(list(drops.values())))
    assert mean <= budget, f"INT8 on OpenVINO loses {mean:.3f} dB mean PSNR-Y (bound here {budget} dB)"
    worst = max(drops, key=drops.get)  # one photo may lose more (chelsea 0.156 dB on the EPYC)
    assert drops[worst] <= 2 * budget, f"{worst}: INT8 on OpenVINO loses {drops[worst]:.3f} dB"
