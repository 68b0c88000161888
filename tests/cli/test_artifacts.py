"""The commands that write artifacts (``onnx``, ``calibrate``, ``build``, ``deploy``,
``train``) keep the infer contract: interrupted at the worst moment (the signal lands as
the finished files are about to be renamed into place) or failing on a full disk, they
leave nothing under the requested name, no temporaries, and one line on stderr."""

from __future__ import annotations

import importlib.util
import signal

import pytest

from .harness import cli, fill, hidden, one_error_line, tiny_fs  # noqa: F401


def _interrupted(res, sig="SIGTERM"):
    assert res.returncode == 128 + getattr(signal, sig), res.stderr
    assert f"interrupted ({sig})" in one_error_line(res.stderr)


def _failed(res, *words):
    assert res.returncode == 2, res.stderr
    line = one_error_line(res.stderr)
    for w in words:
        assert w in line, line


def _empty(folder, allowed=()):
    assert sorted(p.name for p in folder.iterdir() if p.name not in allowed) == [], \
        sorted(p.name for p in folder.iterdir())


def test_deploy(tmp_path, tiny_fs):
    out = tmp_path / "d"
    _interrupted(cli("deploy", "default", "-o", out / "x.safetensors",
                     env={"HERMES_FAULTS": "atomic-publish=SIGTERM"}))
    _empty(out)
    full = tiny_fs(64)
    fill(full)
    _failed(cli("deploy", "default", "-o", full / "x.safetensors"), "x.safetensors", "space")
    _empty(full, ("filler.bin", "filler-tail.bin"))


def test_calibrate(default_onnx, tmp_path, tiny_fs):
    out = tmp_path / "q"
    # the second atomic write is the INT8 graph with its context graph (the first: the ranges)
    res = cli("calibrate", default_onnx, "-o", out / "int8.onnx", "--samples", "4", "--batch", "2",
              env={"HERMES_FAULTS": "atomic-publish#2=SIGINT"})
    _interrupted(res, "SIGINT")
    _empty(out, ("int8.ranges.json",))  # complete and reusable (--ranges); not the artifact
    full = tiny_fs(256)
    fill(full)
    _failed(cli("calibrate", default_onnx, "-o", full / "int8.onnx", "--samples", "4", "--batch", "2"),
            "space")
    _empty(full, ("filler.bin", "filler-tail.bin"))


@pytest.mark.slow
def test_onnx(tmp_path, tiny_fs):
    out = tmp_path / "o"
    _interrupted(cli("onnx", "default", "-o", out / "m.onnx",
                     env={"HERMES_FAULTS": "atomic-publish=SIGTERM"}))
    _empty(out)  # neither the main graph nor its context graph
    full = tiny_fs(512)
    _failed(cli("onnx", "default", "-o", full / "m.onnx"), "m.onnx", "space")
    _empty(full)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tensorrt_rtx") is None,
                    reason="needs tensorrt-rtx (pip install 'hermes-deploy[trt-rtx]')")
def test_build(default_onnx, tmp_path, tiny_fs):
    args = ["--trt", "tensorrt-rtx", "--tile", "32x32", "--builder-optimization-level", "0",
            "--workspace", "256"]
    out = tmp_path / "e"
    _interrupted(cli("build", default_onnx, "-o", out / "m.engine", *args,
                     env={"HERMES_FAULTS": "atomic-publish=SIGTERM"}))
    assert not out.exists() or hidden(out) == [] and not list(out.iterdir())
    full = tiny_fs(64)
    _failed(cli("build", default_onnx, "-o", full / "m.engine", *args), "space")
    _empty(full)


@pytest.mark.slow
def test_train(tmp_path, tiny_fs):
    args = ["--steps", "1", "--batch", "2", "--lr-patch", "16", "--val-every", "100",
            "--router-steps", "0"]
    run = tmp_path / "run"
    _interrupted(cli("train", *args, "-o", run, env={"HERMES_FAULTS": "atomic-publish=SIGTERM"}))
    assert not list(run.glob("*.safetensors")) and hidden(run) == []
    full = tiny_fs(64)
    res = cli("train", *args, "-o", full / "run")
    _failed(res, "space")
    assert not list((full / "run").glob("*.safetensors")) and hidden(full / "run") == []
