"""``hermes-export infer clip.mkv`` as a user runs it: resumed after ``kill -9`` at
several points, SIGTERM, and bad input - one line, non-zero, nothing under the output's
name."""

from __future__ import annotations

import json
import re

import av
import numpy as np
import pytest

from ..cli.harness import cli, fill, hidden, one_error_line, tiny_fs  # noqa: F401
from .clips import corrupt_copy, frame_planes, make_clip, make_no_video


def infer(src, out, model, *extra, env=None):
    return cli("infer", src, "-o", out, "--model", model, "--backend", "onnxruntime",
               "--threads", "2", "--no-progress", "--tile", "32", *extra, env=env)


def planes(path) -> list[list[np.ndarray]]:
    with av.open(str(path)) as c:
        return [frame_planes(f) for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def two_shots(tmp_path_factory):
    root = tmp_path_factory.mktemp("two-shots")
    (root / "in").mkdir()
    return make_clip(root / "in" / "clip.mkv", width=48, height=32, frames=16, shots=2,
                     audio_tracks=1, vfr=True)


@pytest.fixture(scope="module")
def uninterrupted(two_shots, routing_onnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    res = infer(two_shots.path, out, routing_onnx, "--codec", "ffv1", "--segment-frames", "4")
    assert res.returncode == 0, res.stderr
    return planes(out / "clip.mkv")


@pytest.mark.parametrize("point", [
    pytest.param("video-frame#3", marks=pytest.mark.slow), "video-segment#2",
    pytest.param("video-frame#11", marks=pytest.mark.slow),
    pytest.param("video-segment#4", marks=pytest.mark.slow), "video-join"])
def test_a_killed_run_resumes_to_the_same_frames(two_shots, routing_onnx, uninterrupted,
                                                  tmp_path, point):
    out = tmp_path / "out"
    args = (two_shots.path, out, routing_onnx, "--codec", "ffv1", "--segment-frames", "4")
    killed = infer(*args, env={"HERMES_FAULTS": f"{point}=SIGKILL"})
    assert killed.returncode == -9, killed.stderr
    assert not (out / "clip.mkv").exists()
    again = infer(*args)
    assert again.returncode == 0, again.stderr
    if point != "video-frame#3":  # by then no segment was finished
        assert "resuming clip.mkv after" in again.stderr, again.stderr
    got = planes(out / "clip.mkv")
    assert len(got) == len(uninterrupted) == 16
    for a, b in zip(got, uninterrupted):
        for pa, pb in zip(a, b):
            assert np.array_equal(pa, pb)
    assert hidden(out) == []  # the work folder and every temporary are gone


def test_sigterm_ends_in_one_line_and_resumes(two_shots, default_onnx, tmp_path):
    out = tmp_path / "out"
    args = (two_shots.path, out, default_onnx, "--segment-frames", "4")
    res = infer(*args, env={"HERMES_FAULTS": "video-frame#9=SIGTERM"})
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert not (out / "clip.mkv").exists()
    assert [p for p in hidden(out) if "hermes-video" not in p] == []  # no temporaries
    again = infer(*args)
    assert again.returncode == 0, again.stderr
    resumed = re.search(r"resuming clip.mkv after (\d+) finished frame", again.stderr)
    assert resumed and int(resumed.group(1)) >= 4, again.stderr  # a segment of 4 was done
    with av.open(str(out / "clip.mkv")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 16


def _fails(res, *words):
    assert res.returncode != 0
    line = one_error_line(res.stderr) if "hermes-export:" in res.stderr else next(
        ln for ln in res.stderr.splitlines() if ln.startswith("failed"))
    assert "Traceback" not in res.stderr
    for w in words:
        assert w in line, line
    return line


def test_bad_videos_fail_in_one_line_with_nothing_written(default_onnx, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    good = make_clip(src / "good.mkv", frames=12, content="noise")
    corrupt_copy(good.path, src / "cut.mkv", how="truncate")
    corrupt_copy(good.path, src / "junk.mkv", how="garbage")
    make_no_video(src / "sound.mkv")
    (src / "empty.mp4").write_bytes(b"")
    (src / "text.mov").write_text("not a video")
    out = tmp_path / "out"
    res = infer(src, out, default_onnx)
    assert res.returncode == 1
    lines = {ln.split()[1].rstrip(":"): ln for ln in res.stderr.splitlines() if ln.startswith("failed")}
    print("\n".join(lines.values()))
    assert set(lines) == {"cut.mkv", "junk.mkv", "sound.mkv", "empty.mp4", "text.mov"}, res.stderr
    assert "truncated" in lines["cut.mkv"]
    assert "no video stream" in lines["sound.mkv"]
    assert "not a readable video" in lines["empty.mp4"] and "not a readable video" in lines["text.mov"]
    assert "Traceback" not in res.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "good.mkv", "hermes-report.json"]
    assert hidden(out) == []


def test_interlaced_video_is_refused(default_onnx, tmp_path):
    path = tmp_path / "tff.mkv"
    with av.open(str(path), "w") as o:
        s = o.add_stream("libx264", rate=25, options={"x264-params": "interlaced=1:tff=1"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(4):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), "rgb24").reformat(format="yuv420p")
            f.pts = i
            for p in s.encode(f):
                o.mux(p)
        for p in s.encode():
            o.mux(p)
    res = infer(path, tmp_path / "out", default_onnx)
    _fails(res, "interlaced", "deinterlace")


def test_odd_sizes_are_restored_whole(default_onnx, tmp_path):
    clip = make_clip(tmp_path / "odd.mkv", width=63, height=47, frames=3, pix_fmt="yuv444p")
    res = infer(clip.path, tmp_path / "out", default_onnx)
    assert res.returncode == 0, res.stderr
    with av.open(str(tmp_path / "out" / "odd.mkv")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 3 and (frames[0].width, frames[0].height) == (126, 94)
    item = json.loads((tmp_path / "out" / "hermes-report.json").read_text())["items"][0]
    assert item["frames"] == 3 and abs(item["megapixels"] - 3 * 63 * 47 / 1e6) < 1e-9


def test_an_output_that_is_the_input_is_refused(default_onnx, tmp_path):
    clip = make_clip(tmp_path / "clip.mkv", frames=3)
    before = clip.path.read_bytes()
    res = infer(clip.path, tmp_path, default_onnx)
    _fails(res, "would replace the input")
    assert clip.path.read_bytes() == before


def test_a_full_disk_mid_video_is_one_line_and_no_output(default_onnx, tmp_path, tiny_fs):
    clip = make_clip(tmp_path / "clip.mkv", width=64, height=48, frames=24, content="noise")
    full = tiny_fs(160)  # holds a few lossless 128x96 segments, not all of them
    res = infer(clip.path, full, default_onnx, "--segment-frames", "2", "--report",
                tmp_path / "r.json")
    _fails(res, "disk full")
    assert not (full / "clip.mkv").exists()
    assert [p for p in hidden(full) if "hermes-video" not in p] == []


def test_bad_encoder_settings_fail_before_any_work(default_onnx, tmp_path):
    clip = make_clip(tmp_path / "clip.webm".replace("webm", "mkv"), frames=3)
    _fails(infer(clip.path, tmp_path / "o1", default_onnx, "--codec", "mpeg2"), "--codec mpeg2")
    _fails(infer(clip.path, tmp_path / "o2", default_onnx, "--codec", "ffv1", "--pix-fmt", "rgb24"),
           "not planar YUV")
    _fails(infer(clip.path, tmp_path / "o3", default_onnx, "--context", "per-scene"), "per-shot")


def test_a_pixel_format_it_cannot_read_is_refused(default_onnx, tmp_path):
    path = tmp_path / "alpha.mkv"
    with av.open(str(path), "w") as o:
        s = o.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuva420p"
        for i in range(2):
            f = av.VideoFrame(64, 48, "yuva420p")
            for plane in f.planes:
                np.frombuffer(plane, np.uint8)[:] = 128
            f.pts = i
            for p in s.encode(f):
                o.mux(p)
        for p in s.encode():
            o.mux(p)
    _fails(infer(path, tmp_path / "out", default_onnx), "yuva420p", "not supported")
    assert not (tmp_path / "out" / "alpha.mkv").exists()


def test_videos_are_not_sent_to_ray(default_onnx, tmp_path):
    clip = make_clip(tmp_path / "clip.mkv", frames=2)
    _fails(infer(clip.path, tmp_path / "out", default_onnx, "--ray", "local"), "--ray", "clip.mkv")
