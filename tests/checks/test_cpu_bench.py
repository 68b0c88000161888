"""``bench --compare`` on tiny sizes: it reuses the cached export, keeps the INT8 graph
it calibrates, judges precisions by held-out PSNR-Y loss and ends with a
recommendation it keeps for ``infer --precision auto``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hermes_deploy.quality.photos import load_photo


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HERMES_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _plant_cached_export(default_onnx) -> Path:
    """Put the session's default export where ``cached_onnx('default')`` keeps it."""
    from hermes_deploy.cache import cache_dir, cache_key

    path = cache_dir() / "onnx" / f"default-{cache_key('default')}.onnx"
    path.parent.mkdir(parents=True)
    shutil.copy(default_onnx, path)
    ctx = Path(default_onnx).with_name(Path(default_onnx).stem + ".context.onnx")
    shutil.copy(ctx, path.with_name(path.stem + ".context.onnx"))  # what cached_onnx looks for
    shutil.copy(ctx, path.with_name(ctx.name))  # what the copied graph's ModelSpec names
    return path


def test_the_int8_graph_is_kept_in_the_cache_and_reused(default_onnx, cache, monkeypatch):
    from hermes_deploy.checks import cpu_bench
    from hermes_deploy.export import int8

    made = []

    def fake_calibrate(source, output, options, **kw):  # the real one takes about a minute
        output = Path(output)
        made.append(output)
        ctx = output.with_name(output.stem + ".context.onnx")  # written beside it, as it is
        for path in (output, ctx):
            path.write_bytes(Path(source).read_bytes())
        return int8.Int8Result(output, ctx, output, None)

    monkeypatch.setattr(int8, "calibrate_int8", fake_calibrate)
    said = []
    path = cpu_bench.kept_int8(default_onnx, say=said.append)
    assert made == [path] and path.is_file() and str(cache) in str(path)
    assert any(str(path) in s for s in said)  # where it went is printed
    assert cpu_bench.kept_int8(default_onnx, say=said.append) == path and len(made) == 1
    assert "reusing" in said[-1] and str(path) in said[-1]


def test_compare_reuses_the_export_and_ends_with_a_recommendation(default_onnx, cache, tmp_path):
    from hermes_deploy.checks.cpu_bench import compare_cpu, format_compare
    from hermes_deploy.engines.choose import recommendation_path

    graph = _plant_cached_export(default_onnx)
    crop = tmp_path / "crop.png"
    Image.fromarray((load_photo("chelsea")[100:164, 150:214] * 255 + 0.5).astype(np.uint8)).save(crop)
    said = []
    info = compare_cpu("default", tile=32, threads=2, repeats=1, compile=False, int8_rows=False,
                       say=said.append, quality_images=[str(crop)], peak_n=256)
    assert not any("exporting" in s for s in said) and any(graph.name in s for s in said)
    rows = {(r["backend"], r["precision"]): r for r in info["rows"]}
    assert not any("compile" in b for b, _ in rows)  # --no-compile: no row at all
    base = rows[("onnxruntime", "f32")]
    assert base["psnr_vs_ort_f32"] is None and base["psnr_y_loss"] == 0.0
    rec = info["recommendation"]
    assert rec["loss_db"] <= rec["budget_db"] == 0.05
    measured = [r for r in info["rows"] if r.get("psnr_y_loss") is not None]
    assert rec["speedup"] == max(r["vs_ort_f32"] for r in measured if r["psnr_y_loss"] <= 0.05)
    assert json.loads(recommendation_path(graph).read_text())["backend"] == rec["backend"]
    text = format_compare(info)
    assert "inf dB" not in text and "torch.compile" not in text
    base_line = next(line for line in text.splitlines() if line.startswith("onnxruntime") and " f32 " in line)
    assert base_line.rstrip().endswith("-")
    last = text.splitlines()[-2:]
    assert last[0].startswith("recommended on this CPU: ") and "PSNR-Y loss" in last[0]
    assert "--precision auto" in last[1]
