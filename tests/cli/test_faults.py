"""Faults during ``hermes-export infer``, for real: signals delivered to a real process at
exact points of a file's life (``HERMES_FAULTS``, see :mod:`hermes_deploy.faults`) and at
random moments from outside, ``kill -9``, a concurrent run in the same folder, and real
full filesystems (tmpfs). After each: every file in the output folder decodes completely
at the right size, nothing temporary is left (after the next run at the latest), and no
input changed."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from .harness import check_outputs, cli, default_signals, fill, hidden, one_error_line, tiny_fs, write_images  # noqa: F401

NAMES = ["a.png", "b.jpg", "c.tif"]


def _infer(src, out, model, *extra, env=None):
    return cli("infer", src, "-o", out, "--model", model, "--backend", "onnxruntime",
               "--no-progress", "--tile", "32", *extra, env=env)


def _digest(paths) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.fixture
def inputs(tmp_path):
    return write_images(tmp_path / "in", {"a.png": (48, 64), "b.jpg": (40, 56), "c.tif": (33, 47)})


POINTS = [("file-start", "SIGINT"), ("writer-start", "SIGINT"), ("writer-start", "SIGTERM"),
          ("tiles", "SIGTERM"), ("publish", "SIGINT"), ("publish", "SIGHUP"),
          ("report", "SIGTERM")]


@pytest.mark.parametrize("point,sig", POINTS)
def test_a_signal_at_each_point_of_a_file_leaves_only_complete_outputs(default_onnx, inputs, tmp_path,
                                                                       point, sig):
    before = _digest(inputs.values())
    out = tmp_path / "out"
    res = _infer(tmp_path / "in", out, default_onnx, env={"HERMES_FAULTS": f"{point}={sig}"})
    assert res.returncode == 128 + getattr(signal, sig), res.stderr
    line = one_error_line(res.stderr)
    assert f"interrupted ({sig})" in line, line
    done = check_outputs(out, inputs) if out.exists() else []  # no temporaries either
    expected = {"file-start": [], "writer-start": [], "tiles": [],
                "publish": ["a.png"],  # the file at the rename was complete: it is kept
                "report": NAMES}[point]
    assert done == expected
    assert not (out / "hermes-report.json").exists()
    # the next run finishes the job, skipping what is done
    res = _infer(tmp_path / "in", out, default_onnx)
    assert res.returncode == 0, res.stderr
    assert f"{3 - len(done)} done, {len(done)} skipped, 0 failed" in res.stdout
    assert check_outputs(out, inputs) == NAMES
    assert _digest(inputs.values()) == before


def test_kill_9_leaves_temporaries_that_the_next_run_removes(default_onnx, inputs, tmp_path):
    out = tmp_path / "out"
    res = _infer(tmp_path / "in", out, default_onnx, env={"HERMES_FAULTS": "publish=SIGKILL"})
    assert res.returncode == -signal.SIGKILL
    left = hidden(out)
    assert any(".partial" in n for n in left) and any(".lock" in n for n in left), left
    assert check_outputs(out, inputs, allow_hidden=True) == []
    res = _infer(tmp_path / "in", out, default_onnx)
    assert res.returncode == 0, res.stderr
    assert f"removed {len(left) - 1} temporary file(s)" in res.stderr  # the lock is not counted
    assert check_outputs(out, inputs) == NAMES


def _wait_for(pred, timeout=120.0):
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_a_concurrent_live_run_keeps_its_temporaries(default_onnx, tmp_path):
    first = write_images(tmp_path / "one", {"a.png": (48, 64)})
    second = write_images(tmp_path / "two", {"b.png": (40, 56)})
    out, go = tmp_path / "out", tmp_path / "go"
    cmd = [sys.executable, "-m", "hermes_deploy.cli.launch", "infer", str(first["a.png"]), "-o", str(out),
           "--model", str(default_onnx), "--backend", "onnxruntime", "--no-progress", "--tile", "32"]
    import os

    held = subprocess.Popen(cmd, env={**os.environ, "HERMES_FAULTS": f"publish=pause:{go}"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: out.exists() and any(".partial" in n for n in hidden(out)))
        live = hidden(out)
        res = _infer(second["b.png"], out, default_onnx)
        assert res.returncode == 0, res.stderr
        assert "removed" not in res.stderr
        assert set(live) <= set(hidden(out))  # the paused run's files are untouched
        go.touch()
        _, err = held.communicate(timeout=120)
        assert held.returncode == 0, err
    finally:
        go.touch()
        held.kill()
    assert check_outputs(out, {**first, **second}) == ["a.png", "b.png"]


def _run_watched(cmd, sig=None, delay=0.0):
    """Run ``cmd``; once it says which backend it opened (past start-up, the work begins),
    wait ``delay`` seconds and send ``sig``. Returns (exit status, stderr, seconds from
    that line to the exit)."""
    lines: list[str] = []
    started = threading.Event()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)

    def read():
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("backend:"):
                started.set()
        started.set()  # the run ended without starting: do not wait for it

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(120), "the run did not start in 120 s"
        t0 = time.monotonic()
        if sig is not None:
            time.sleep(delay)
            proc.send_signal(sig)
        proc.wait(timeout=120)
        took = time.monotonic() - t0
    finally:
        proc.kill()
        reader.join(10)
    return proc.returncode, "".join(lines), took


@pytest.mark.slow
def test_signals_from_outside_at_random_moments(default_onnx, tmp_path):
    inputs = write_images(tmp_path / "in", {f"p{i}.png": (64, 96) for i in range(3)})
    out = tmp_path / "out"
    rng = np.random.default_rng(7)
    cmd = [sys.executable, "-m", "hermes_deploy.cli.launch", "infer", str(tmp_path / "in"), "-o", str(out),
           "--model", str(default_onnx), "--backend", "onnxruntime", "--no-progress", "--tile", "32",
           "--overwrite"]
    # how long the work takes here and now: each signal lands at a random moment in the
    # first half of it, so it interrupts the run even on a loaded machine (one sent during
    # start-up, as a fixed delay would on a slow one, tests the imports, not the files)
    code, err, work = _run_watched(cmd)
    assert code == 0, err
    interrupted = 0
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        code, err, _ = _run_watched(cmd, sig, rng.uniform(0.02, 0.5) * work)
        assert code in (0, 128 + sig, -sig), err
        assert "Traceback" not in err
        if code != 0:
            interrupted += 1
            if sig != signal.SIGKILL:
                assert f"interrupted ({signal.Signals(sig).name})" in err, err
        check_outputs(out, inputs, allow_hidden=sig == signal.SIGKILL)  # the first run made out
    # a machine that got faster since the measurement may finish one run before its signal
    assert interrupted >= 4, f"only {interrupted} of 5 runs were interrupted (work took {work:.1f}s)"
    res = _infer(tmp_path / "in", out, default_onnx)
    assert res.returncode == 0, res.stderr
    assert check_outputs(out, inputs) == sorted(inputs)


def test_a_full_output_disk_fails_each_file_and_the_report_in_one_line(default_onnx, inputs, tmp_path,
                                                                       tiny_fs):
    out = tiny_fs(64)
    fill(out)
    res = _infer(tmp_path / "in", out, default_onnx)
    assert res.returncode == 2, res.stderr
    failed = [ln for ln in res.stderr.splitlines() if ln.startswith("failed")]
    assert len(failed) == 3 and all("disk full" in ln for ln in failed), res.stderr
    line = one_error_line(res.stderr)
    assert "hermes-report.json" in line and "disk full" in line, line
    assert "0 done, 0 skipped, 3 failed" in res.stdout  # the summary still comes
    assert sorted(p.name for p in out.iterdir()) == ["filler-tail.bin", "filler.bin"]


def test_a_disk_that_fills_mid_batch_keeps_what_fitted(default_onnx, tmp_path, tiny_fs):
    inputs = write_images(tmp_path / "in", {"a.png": (16, 16), "b.png": (200, 200)})
    out = tiny_fs(256)  # a's output fits; b's 400x400 rows (480 KB) do not
    res = _infer(tmp_path / "in", out, default_onnx)
    assert res.returncode == 1, res.stderr
    assert "b.png: disk full" in res.stderr and "Traceback" not in res.stderr
    assert check_outputs(out, inputs) == ["a.png"]
    assert (out / "hermes-report.json").exists()


def test_a_report_on_a_full_disk_or_a_folder_is_one_line(default_onnx, inputs, tmp_path, tiny_fs):
    full = tiny_fs(16)
    fill(full)
    out = tmp_path / "out"
    res = _infer(tmp_path / "in", out, default_onnx, "--report", full / "r.json")
    assert res.returncode == 2
    assert "disk full" in one_error_line(res.stderr)
    assert check_outputs(out, inputs) == NAMES  # the outputs stand
    assert not (full / "r.json").exists() and hidden(full) == []
    res = _infer(tmp_path / "in", tmp_path / "out2", default_onnx, "--report", tmp_path)
    assert res.returncode == 2 and "is a folder" in one_error_line(res.stderr)
    assert not (tmp_path / "out2").exists()  # refused before any work


def test_a_signal_while_the_app_imports_is_one_line(tmp_path):
    """The handlers are in place before typer and the commands import (cli/launch.py):
    a Ctrl-C at start-up gets the one line and 130, not Python's traceback."""
    env = {**os.environ, "HERMES_FAULTS": "imports=SIGINT"}
    res = subprocess.run([sys.executable, "-m", "hermes_deploy.cli.launch", "info", "tiny"],
                         capture_output=True, text=True, env=env, timeout=120,
                         preexec_fn=default_signals)
    assert res.returncode == 130, res.stderr
    assert res.stderr.strip() == "hermes-export: interrupted (SIGINT)", res.stderr
