"""``hermes-export infer`` / ``bench`` as users run them (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

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
