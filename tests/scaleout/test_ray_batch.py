"""``run_ray_batch`` on a real local Ray cluster (two actors) against the local batch.

The local batch (``run_batch``, what ``hermes-export infer`` runs) is the reference:
the same files through Ray must give byte-identical outputs, fail and skip the same
files with the same messages, and survive an actor killed mid-job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hermes_deploy.runtime.plan import TileOptions

from .conftest import TILE, write_photos

OPTIONS = TileOptions(tile=TILE)


def local_batch(onnx, inputs, outdir):
    from hermes_deploy.engines.ort_runner import OrtRunner
    from hermes_deploy.runtime.batch import run_batch

    # one intra-op thread, as each of the two actors on the two-CPU cluster gets
    with OrtRunner(onnx, threads=1) as runner:
        return run_batch(runner, [str(p) for p in inputs], outdir, OPTIONS)


def ray_batch(onnx, inputs, outdir, **kw):
    from hermes_deploy.scaleout.ray_batch import run_ray_batch

    lines = []
    report = run_ray_batch([str(p) for p in inputs], outdir, model=str(onnx),
                           backend="onnxruntime", options=OPTIONS, actors=2, say=lines.append, **kw)
    return report, lines


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def temporaries(folder: Path) -> list[str]:
    """Hidden files that are not a run's (empty) lock file: temporaries."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name.startswith(".") and not p.name.startswith(".hermes-run-"))


def test_missing_ray_says_how_to_install(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"
            "from hermes_deploy.scaleout.ray_batch import run_ray_batch\n"
            "from hermes_deploy.errors import MissingDependencyError\n"
            "try:\n    run_ray_batch(['x.png'], 'out')\n"
            "except MissingDependencyError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert "pip install 'hermes-deploy[ray]'" in out.stdout, out.stderr


def test_bad_settings_fail_before_ray_starts(default_onnx, tmp_path):
    from hermes_deploy.errors import InputError
    from hermes_deploy.scaleout.ray_batch import run_ray_batch

    with pytest.raises(InputError, match="actors"):
        run_ray_batch([str(tmp_path)], tmp_path / "o", model=str(default_onnx), actors=0)
    with pytest.raises(InputError, match="no input images"):
        run_ray_batch([str(tmp_path)], tmp_path / "o", model=str(default_onnx))
    write_photos(tmp_path / "in", 1)
    with pytest.raises(InputError, match="overlap"):
        run_ray_batch([str(tmp_path / "in")], tmp_path / "o", model=str(default_onnx),
                      backend="onnxruntime", options=TileOptions(tile=(16, 16), overlap=16))


@pytest.mark.slow
def test_ray_equals_local_fails_alone_and_resumes(ray_cluster, default_onnx, tmp_path):
    src = tmp_path / "in"
    write_photos(src, 6)
    (src / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    local = local_batch(default_onnx, [src], tmp_path / "local")

    report, lines = ray_batch(default_onnx, [src], tmp_path / "ray")
    data = report.to_dict()
    assert (data["done"], data["skipped"], data["failed"]) == (6, 0, 1)
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")  # byte for byte
    assert temporaries(tmp_path / "ray") == []
    # the same per-file report as the local batch, in input order
    assert [(Path(i.source).name, i.status, i.tiles) for i in report.items] == \
           [(Path(i.source).name, i.status, i.tiles) for i in local.items]
    failed = [i for i in report.items if i.status == "failed"]
    assert failed[0].message == next(i.message for i in local.items if i.status == "failed")
    assert "corrupt.png" in failed[0].message and "not a readable image" in failed[0].message
    assert any(ln.startswith("failed  corrupt.png") for ln in lines)

    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ray").iterdir()}
    again, _ = ray_batch(default_onnx, [src], tmp_path / "ray")
    assert (again.count("done"), again.count("skipped"), again.failed) == (0, 6, 1)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ray").iterdir()
            if not p.name.startswith(".")} == {k: v for k, v in before.items() if not k.startswith(".")}


def _actor_pids() -> list[int]:
    """Processes of this machine whose title names the pool's actor class."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"MapWorker(MapBatches(RestoreActor))" in cmd:
                pids.append(int(entry.name))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the actor's process in /proc")
def test_job_survives_a_killed_actor(ray_cluster, default_onnx, tmp_path):
    src = tmp_path / "in"
    write_photos(src, 8, size=(96, 128))
    out = tmp_path / "ray"
    killed: list[int] = []

    def kill_one_actor_mid_job():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            done = [p for p in out.glob("*.png")] if out.is_dir() else []
            pids = _actor_pids()
            if done and len(pids) >= 2:  # the job is under way on both actors
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_one_actor_mid_job, daemon=True)
    watcher.start()
    report, _ = ray_batch(default_onnx, [src], out)
    watcher.join(timeout=1)
    assert killed, "no actor was killed: the job ended before the watcher saw it running"
    assert report.count("done") + report.count("skipped") == 8 and report.failed == 0
    local_batch(default_onnx, [src], tmp_path / "local")
    assert outputs(out) == outputs(tmp_path / "local")  # complete and byte-identical
    assert temporaries(out) == []  # the killed actor's temporary was removed
