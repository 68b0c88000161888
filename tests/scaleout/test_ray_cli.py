"""``hermes-export infer --ray local --actors 2``: the Ray path from the shell, against
the local ``infer`` of the same files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .conftest import TILE, need, write_photos


OURS = ("Ray: ", "done    ", "failed  ", "skipped ", "ignored ", "removed ", "... ")


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "hermes_deploy.cli.app", *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_infer_ray_flag(default_onnx, tmp_path):
    need("ray", "'hermes-deploy[ray]'")
    src = tmp_path / "in"
    write_photos(src, 3)
    (src / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    args = ("--model", default_onnx, "--backend", "onnxruntime", "--tile", f"{TILE[0]}x{TILE[1]}",
            "--threads", "1", "--no-progress")
    res = _cli("infer", src, "-o", tmp_path / "ray", "--ray", "local", "--actors", "2", *args)
    assert res.returncode == 1, res.stderr  # one input failed
    assert "Traceback" not in res.stderr
    assert "3 done, 0 skipped, 1 failed" in res.stdout
    # only our lines: Ray's own (token warning, core_worker, Ray Data's INFO) go to its logs
    assert [ln for ln in res.stderr.splitlines() if not ln.startswith(OURS)] == [], res.stderr
    report = json.loads((tmp_path / "ray" / "hermes-report.json").read_text())
    assert [i["status"] for i in report["items"]] == ["failed", "done", "done", "done"]
    local = _cli("infer", src, "-o", tmp_path / "local", *args)
    assert local.returncode == 1
    for name in ("img00.png", "img01.png", "img02.png"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()


def test_infer_ray_with_nothing_to_do_starts_no_ray(default_onnx, tmp_path):
    """Every output exists: the files are skipped on the driver, as the local batch
    skips them, and no Ray cluster is started (Ray writes its session under RAY_TMPDIR)."""
    need("ray", "'hermes-deploy[ray]'")
    src = tmp_path / "in"
    write_photos(src, 2)
    (src / "notes.txt").write_text("not an image")  # passed over by name, as locally
    (tmp_path / "out").mkdir()
    for name in ("img00.png", "img01.png"):
        (tmp_path / "out" / name).write_bytes(b"done before")
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray"))  # short: Ray puts sockets under it
    try:
        res = _cli("infer", src, "-o", tmp_path / "out", "--ray", "local", "--model", default_onnx,
                   "--backend", "onnxruntime", "--no-progress",
                   env={**os.environ, "RAY_TMPDIR": str(ray_tmp)})
        started = sorted(p.name for p in ray_tmp.iterdir())
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert res.returncode == 0, res.stderr
    assert "0 done, 2 skipped, 0 failed, 1 ignored" in res.stdout
    ignored = [ln for ln in res.stderr.splitlines() if ln.startswith("ignored ")]
    assert len(ignored) == 1 and "notes.txt" in ignored[0] and ".txt" in ignored[0], res.stderr
    assert [ln for ln in res.stderr.splitlines() if ln.startswith("skipped ")] == [
        f"skipped img0{i}.png: img0{i}.png exists (use --overwrite to redo)" for i in (0, 1)]
    assert started == [], f"Ray was started for nothing: {started}"
