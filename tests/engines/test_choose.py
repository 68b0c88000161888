"""``--precision auto``: the recommendation (fastest backend and precision whose held-out
PSNR-Y loss is within the budget), kept per graph and CPU, taken by ``infer``; and the
words for int8's unquantized ops.

The rules are checked on hand-made rows and explicit CPU flags, the measurement with
the real backends on a tiny tile and a tiny crop of a held-out photograph, so nothing
here depends on which bf16/int8 units this CPU has.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from hermes_deploy.cpu import has_precision
from hermes_deploy.errors import InputError
from hermes_deploy.optional import has
from hermes_deploy.quality.photos import load_photo

BF16 = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni"})
NO_BF16 = frozenset({"avx2", "avx512f", "avx512_vnni"})


def _row(backend, precision, speedup, loss):
    return {"backend": backend, "precision": precision, "speedup": speedup, "loss_db": loss}


def test_recommend_picks_the_fastest_row_within_the_loss_budget():
    from hermes_deploy.engines.choose import LOSS_BUDGET_DB, recommend

    assert LOSS_BUDGET_DB == 0.05
    rows = [_row("onnxruntime", "f32", 1.0, 0.0), _row("openvino", "f32", 1.2, 0.0),
            _row("openvino", "bf16", 2.1, 0.007), _row("openvino", "int8", 2.3, 0.246),
            _row("torch eager", "f32", 0.6, None)]  # no loss measured: never recommended
    rec = recommend(rows)
    assert (rec["backend"], rec["precision"], rec["speedup"], rec["loss_db"]) == ("openvino", "bf16", 2.1, 0.007)
    assert rec["budget_db"] == LOSS_BUDGET_DB
    (left,) = rec["left_out"]  # the faster row over the budget is named, with its loss
    assert (left["backend"], left["precision"]) == ("openvino", "int8") and "0.246 dB" in left["reason"]
    # a looser budget takes int8; when only the baseline passes, it is the baseline
    assert recommend(rows, budget_db=0.3)["precision"] == "int8"
    rec = recommend([_row("onnxruntime", "f32", 1.0, 0.0), _row("openvino", "bf16", 2.0, 0.2)])
    assert (rec["backend"], rec["precision"]) == ("onnxruntime", "f32")


def test_int8_wording_names_the_precision_of_its_unquantized_ops():
    from hermes_deploy.engines.precision import describe_precision, float_ops

    assert describe_precision("int8", "openvino", BF16) == "int8 (unquantized ops in bf16)"
    assert describe_precision("int8", "openvino", NO_BF16) == "int8 (unquantized ops in f32)"
    assert describe_precision("int8", "onnxruntime", BF16) == "int8 (unquantized ops in f32)"
    assert describe_precision("bf16", "openvino", BF16) == "bf16"
    assert describe_precision("f32", "openvino", BF16) == "f32"
    if has("openvino"):  # the rule is the one the OpenVINO runner applies on this CPU
        from hermes_deploy.engines.ov_runner import float_hint

        assert float_ops("int8", "openvino") == float_hint("int8")


def test_precision_auto_is_checked_before_anything_opens(default_onnx):
    from hermes_deploy.engines.select import open_runner

    with pytest.raises(InputError, match="--precision auto .* --backend auto"):
        open_runner(str(default_onnx), "onnxruntime", precision="auto")
    with pytest.raises(InputError, match="unknown precision 'fast'"):
        open_runner(str(default_onnx), precision="fast")


@pytest.fixture
def tiny_heldout(tmp_path):
    """A 64x64 crop of a held-out photograph, as a file the harness loads."""
    path = tmp_path / "chelsea-crop.png"
    crop = load_photo("chelsea")[100:164, 150:214]
    Image.fromarray((crop * 255 + 0.5).astype(np.uint8)).save(path)
    return [str(path)]


def test_precision_auto_measures_once_and_keeps_the_recommendation(default_onnx, tmp_path, monkeypatch,
                                                                   tiny_heldout):
    from hermes_deploy.engines.choose import recommendation_path, recommended_runner
    from hermes_deploy.engines.select import graph_runner

    monkeypatch.setenv("HERMES_CACHE_DIR", str(tmp_path / "cache"))
    said = []

    def open_backend(backend, precision, graph):
        return graph_runner(graph, backend, 2, precision)

    runner, why = recommended_runner(default_onnx, open_backend, 2, say=said.append, tile=(32, 32),
                                     images=tiny_heldout)
    record = json.loads(recommendation_path(default_onnx).read_text())
    with runner:
        assert runner.name.startswith(record["backend"])
    tried = {(r["backend"], r["precision"]) for r in record["rows"]}
    assert ("onnxruntime", "f32") in tried
    # bf16 is a candidate exactly where OpenVINO and the CPU's bf16 units are
    assert (("openvino", "bf16") in tried) == (has("openvino") and has_precision("bf16"))
    assert record["loss_db"] <= record["budget_db"] == 0.05
    passing = [r for r in record["rows"] if r["loss_db"] <= 0.05]
    assert record["speedup"] == max(r["speedup"] for r in passing)
    assert "measured" in why and "PSNR-Y loss" in why and said
    # the kept recommendation is taken as it is next time: plant another and auto follows it
    if has("openvino"):
        recommendation_path(default_onnx).write_text(json.dumps(
            {**record, "backend": "openvino", "precision": "f32", "speedup": 1.23, "loss_db": 0.0}))
        runner, why = recommended_runner(default_onnx, open_backend, 2)
        with runner:
            assert runner.name == "openvino (CPU, f32)"
        assert "1.23x" in why and "kept" in why


@pytest.mark.skipif(not has("openvino"), reason="openvino is not installed")
def test_infer_precision_auto_says_what_it_took_and_why(default_onnx, tmp_path, monkeypatch):
    from hermes_deploy.engines.choose import save_recommendation

    monkeypatch.setenv("HERMES_CACHE_DIR", str(tmp_path / "cache"))  # the CLI inherits it
    # plant the record bench --compare keeps for this graph on this CPU
    save_recommendation(default_onnx, {
        "backend": "openvino", "precision": "f32", "graph": str(default_onnx), "speedup": 1.31,
        "loss_db": 0.0, "budget_db": 0.05, "source": "bench --compare", "rows": [], "left_out": []})
    src = tmp_path / "in.png"
    Image.fromarray((load_photo("coffee")[:40, :40] * 255 + 0.5).astype(np.uint8)).save(src)
    cli = [sys.executable, "-m", "hermes_deploy.cli.app", "infer", str(src), "--model", str(default_onnx),
           "--precision", "auto", "--no-progress"]
    res = subprocess.run([*cli, "-o", str(tmp_path / "out"), "--tile", "32"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    line = next(s for s in res.stderr.splitlines() if s.startswith("backend:"))
    assert line.startswith("backend: openvino (CPU, f32)")
    assert "bench --compare" in line and "1.31x" in line and "PSNR-Y loss 0.000 dB" in line
    assert (tmp_path / "out" / "in.png").is_file()
    res = subprocess.run([*cli, "-o", str(tmp_path / "bad"), "--backend", "torch"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--backend auto" in res.stderr
