"""``hermes-export infer --ray local --actors 2``: the Ray path from the shell, against
the local ``infer`` of the same files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import TILE, need, write_photos


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "hermes_deploy.cli.app", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


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
    report = json.loads((tmp_path / "ray" / "hermes-report.json").read_text())
    assert [i["status"] for i in report["items"]] == ["failed", "done", "done", "done"]
    local = _cli("infer", src, "-o", tmp_path / "local", *args)
    assert local.returncode == 1
    for name in ("img00.png", "img01.png", "img02.png"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
