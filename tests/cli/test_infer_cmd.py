"""``hermes-export infer`` / ``bench`` as users run them (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from hermes_deploy.quality.photos import load_photo


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hermes_deploy.cli.app", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def test_infer_folder_resume_and_errors(default_onnx, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    photo = (load_photo("coffee")[:48, :64] * 255 + 0.5).astype(np.uint8)
    Image.fromarray(photo).save(src / "a.png")
    Image.fromarray(photo[:, :40]).save(src / "b.jpg", quality=95)
    (src / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "out"
    res = _cli("infer", src, "-o", out, "--model", default_onnx, "--tile", "32", "--batch", "2",
               "--no-progress")
    assert res.returncode == 1, res.stderr  # one input failed
    assert "Traceback" not in res.stderr
    failed = [ln for ln in res.stderr.splitlines() if ln.startswith("failed")]
    assert len(failed) == 1 and "c.png" in failed[0]
    assert "2 done, 0 skipped, 1 failed" in res.stdout
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg", "hermes-report.json"]
    with Image.open(out / "a.png") as im:
        assert im.size == (128, 96)
    report = json.loads((out / "hermes-report.json").read_text())
    assert report["done"] == 2 and report["failed"] == 1
    # a second run resumes: finished outputs are skipped
    (src / "c.png").unlink()
    res = _cli("infer", src, "-o", out, "--model", default_onnx, "--tile", "32", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "0 done, 2 skipped, 0 failed" in res.stdout


def test_infer_user_errors_are_one_line(default_onnx, tmp_path):
    res = _cli("infer", tmp_path / "missing-folder", "-o", tmp_path / "o", "--model", default_onnx)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    res = _cli("infer", "--sample", "-o", tmp_path / "o", "--model", tmp_path / "nope.onnx")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "nope.onnx" in res.stderr
    res = _cli("infer", "--sample", "-o", tmp_path / "o", "--model", default_onnx,
               "--tile", "16", "--overlap", "16")
    assert res.returncode == 2 and "overlap" in res.stderr and "Traceback" not in res.stderr


def test_bench_reports_json(default_onnx):
    res = _cli("bench", "--model", default_onnx, "--size", "64x96", "--tile", "32",
               "--repeat", "1", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["tiles"] == data["grid"][0] * data["grid"][1] > 1
    assert 0 < data["compute_seconds"] <= data["wall_seconds"]
    assert data["megapixels_per_second"] > 0


def test_folder_lists_every_file_it_passes_over(default_onnx, tmp_path):
    """A .gif, a .txt and a sub-folder inside an input folder are named with the reason,
    in the run output and the report (they used to vanish without a word)."""
    src = tmp_path / "in"
    (src / "nested").mkdir(parents=True)
    photo = (load_photo("coffee")[:32, :32] * 255 + 0.5).astype(np.uint8)
    Image.fromarray(photo).save(src / "a.png")
    Image.fromarray(photo).save(src / "anim.gif")
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    res = _cli("infer", src, "-o", out, "--model", default_onnx, "--tile", "32", "--no-progress")
    assert res.returncode == 0, res.stderr
    ignored = [ln for ln in res.stderr.splitlines() if ln.startswith("ignored")]
    assert len(ignored) == 3, res.stderr
    by_name = {name: ln for ln in ignored for name in ("anim.gif", "notes.txt", "nested")
               if f" {name}:" in ln}
    assert ".gif" in by_name["anim.gif"] and ".png" in by_name["anim.gif"]
    assert ".txt" in by_name["notes.txt"]
    assert "folder" in by_name["nested"] and "recursive" in by_name["nested"]
    assert "1 done, 0 skipped, 0 failed, 3 ignored" in res.stdout
    report = json.loads((out / "hermes-report.json").read_text())
    rows = {Path(r["source"]).name: r for r in report["items"]}
    assert report["ignored"] == 3
    assert {n: rows[n]["status"] for n in ("anim.gif", "notes.txt", "nested", "a.png")} == {
        "anim.gif": "ignored", "notes.txt": "ignored", "nested": "ignored", "a.png": "done"}
    # nothing readable at all: the one-line error says what was passed over
    (src / "a.png").unlink()
    res = _cli("infer", src, "-o", tmp_path / "o2", "--model", default_onnx, "--no-progress")
    last = res.stderr.strip().splitlines()[-1]
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert last.startswith("hermes-export: error: no input images found"), res.stderr
    assert "anim.gif" in last and "notes.txt" in last


def test_report_keeps_earlier_runs(default_onnx, tmp_path):
    """A resumed batch and a later single-file run into the same folder keep the figures
    of the first run in hermes-report.json (it used to be overwritten by each run)."""
    src = tmp_path / "in"
    src.mkdir()
    photo = (load_photo("coffee")[:32, :48] * 255 + 0.5).astype(np.uint8)
    for name in ("a.png", "b.png"):
        Image.fromarray(photo).save(src / name)
    out = tmp_path / "out"
    args = ("-o", out, "--model", default_onnx, "--tile", "32", "--no-progress")
    assert _cli("infer", src / "a.png", *args).returncode == 0
    first = json.loads((out / "hermes-report.json").read_text())
    done_a = next(r for r in first["items"] if r["source"].endswith("a.png"))
    assert done_a["status"] == "done" and done_a["seconds"] > 0
    res = _cli("infer", src, *args)  # resume over the folder: a skipped, b done
    assert res.returncode == 0, res.stderr
    report = json.loads((out / "hermes-report.json").read_text())
    assert report["done"] == 1 and report["skipped"] == 1  # this run's counts
    assert len(report["runs"]) == 2 and [r["done"] for r in report["runs"]] == [1, 1]
    rows = {Path(r["source"]).name: r for r in report["inputs"]}
    assert rows["a.png"]["status"] == "done" and rows["a.png"]["run"] == 0
    assert rows["a.png"]["seconds"] == done_a["seconds"]  # the first run's figures
    assert rows["b.png"]["status"] == "done" and rows["b.png"]["run"] == 1
    assert report["totals"]["done"] == 2
    # a file there that is not a run report is refused before any work, not overwritten
    foreign = tmp_path / "mine.json"
    foreign.write_text('{"my": "data"}')
    res = _cli("infer", src, *args, "--report", foreign)
    assert res.returncode == 2 and "mine.json" in res.stderr and "Traceback" not in res.stderr
    assert foreign.read_text() == '{"my": "data"}'
