"""The video path on real clips (made with PyAV, :mod:`.clips`): frames equal the image
path, colour exact through a bicubic model, every stream kept, one context per shot."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from hermes_deploy.runtime.pipeline import image_context, restore_array
from hermes_deploy.runtime.plan import TileOptions
from hermes_deploy.video import EncodeOptions, VideoOptions, restore_video
from hermes_deploy.video.colour import guess_colour
from hermes_deploy.video.frames import frame_to_rgb

from .clips import frame_planes, make_clip, read_streams
from .conftest import ort

LOSSLESS_444 = EncodeOptions(codec="ffv1", pix_fmt="yuv444p10le")


def psnr(a, b) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return 10 * np.log10(1.0 / mse) if mse else float("inf")


def decoded(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def colour_of(frame) -> object:
    return guess_colour(frame.width, frame.height, frame.colorspace, frame.color_range,
                        frame.color_primaries, frame.color_trc, frame.format.name.startswith("yuvj"))


def test_every_frame_equals_the_image_path(default_onnx, tmp_path):
    clip = make_clip(tmp_path / "in.mkv", width=64, height=48, frames=6, lossless=True)
    out = tmp_path / "out.mkv"
    with ort(default_onnx) as runner:
        res = restore_video(runner, clip.path, out, TileOptions(tile=(32, 32)),
                            VideoOptions(context="per-frame", encode=LOSSLESS_444))
        assert res.frames == 6
        worst = np.inf
        for src, got in zip(decoded(clip.path), decoded(out), strict=True):
            rgb = frame_to_rgb(src, colour_of(src))
            want, _ = restore_array(runner, rgb, TileOptions(tile=(32, 32)),
                                    context=image_context(runner, rgb))
            worst = min(worst, psnr(frame_to_rgb(got, colour_of(got)), np.clip(want, 0, 1)))
    print(f"video path vs image path: worst frame {worst:.1f} dB")
    assert worst >= 50


class Recorder:
    """The runner it wraps, with every context that reached ``infer`` noted per call."""

    def __init__(self, runner, keep_tiles: bool = False) -> None:
        self.runner, self.spec, self.name = runner, runner.spec, runner.name
        self.calls: list[np.ndarray] = []
        self.tiles: list[np.ndarray] = []
        self.keep_tiles = keep_tiles

    def context(self, images):
        return self.runner.context(images)

    def infer(self, tiles, context):
        self.calls.append(np.array(context[:1]))
        if self.keep_tiles:
            self.tiles.append(np.array(tiles))
        return self.runner.infer(tiles, context)


# ----------------------------------------------------------------------------- colour


def _upsample(c: np.ndarray, n: int, axis: int, offset: float) -> np.ndarray:
    """float64 linear interpolation of chroma sited at 2k + offset (np.interp per line)."""
    pos = (np.arange(n) - offset) / 2
    grid = np.arange(c.shape[axis])
    return np.apply_along_axis(lambda line: np.interp(pos, grid, line), axis, c)


def reference_rgb(planes, bits: int, full: bool, kr: float, kb: float) -> np.ndarray:
    """float64 R'G'B' of 4:2:0 planes (chroma sited left: x co-sited, y between rows)."""
    y, u, v = (p.astype(np.float64) for p in planes)
    h, w = y.shape
    u = _upsample(_upsample(u, h, 0, 0.5), w, 1, 0.0)
    v = _upsample(_upsample(v, h, 0, 0.5), w, 1, 0.0)
    if full:
        top = 2 ** bits - 1
        yf, cb, cr = y / top, (u - 2 ** (bits - 1)) / top, (v - 2 ** (bits - 1)) / top
    else:
        k = 2 ** (bits - 8)
        yf, cb, cr = (y - 16 * k) / (219 * k), (u - 128 * k) / (224 * k), (v - 128 * k) / (224 * k)
    r = yf + 2 * (1 - kr) * cr
    b = yf + 2 * (1 - kb) * cb
    g = (yf - kr * r - kb * b) / (1 - kr - kb)
    return np.stack([r, g, b], -1)


def bicubic_x2(rgb: np.ndarray) -> np.ndarray:
    import torch

    from hermes_deploy.model.layers import BicubicUpsample

    up = BicubicUpsample(3, 2).double()
    up.kernel = up.kernel.double()
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    return up(x)[0].numpy().transpose(1, 2, 0)


@pytest.mark.parametrize("pix_fmt,colorspace,color_range,kr_kb", [
    ("yuv420p", "smpte170m", "pc", (0.299, 0.114)),
    ("yuv420p10le", "bt709", "tv", (0.2126, 0.0722)),
])
def test_colour_round_trip_through_a_bicubic_model(bicubic_onnx, tmp_path, pix_fmt, colorspace,
                                                   color_range, kr_kb):
    bits = 10 if "10" in pix_fmt else 8
    full = color_range == "pc"
    clip = make_clip(tmp_path / "in.mkv", width=64, height=48, frames=3, pix_fmt=pix_fmt,
                     colorspace=colorspace, color_range=color_range, primaries=colorspace.replace("nc", ""),
                     trc=colorspace, lossless=True)
    out = tmp_path / "out.mkv"
    with ort(bicubic_onnx) as runner:
        rec = Recorder(runner, keep_tiles=True)  # what the model was given, too: a linear
        # model commutes with a consistently wrong matrix, so the output alone cannot tell
        restore_video(rec, clip.path, out, TileOptions(tile=(64, 64)),
                      VideoOptions(encode=EncodeOptions(codec="ffv1")))
    assert len(rec.tiles) == 3
    for src, tile in zip(decoded(clip.path), rec.tiles):
        seen = tile[0].transpose(1, 2, 0)[:48, :64]
        want = np.clip(reference_rgb(frame_planes(src), bits, full, *kr_kb), 0, 1)
        assert psnr(seen, want) >= 45, psnr(seen, want)
    src_info, out_info = read_streams(clip.path)["video"], read_streams(out)["video"]
    for key in ("colorspace", "color_range", "color_primaries", "color_trc"):
        assert out_info[key] == src_info[key], key
    # yuvj420p is FFmpeg's older name for full-range yuv420p; the range tag says it
    assert out_info["pix_fmt"] == src_info["pix_fmt"].replace("yuvj", "yuv")
    assert out_info["frame_colour"] == src_info["frame_colour"]
    for src, got in zip(decoded(clip.path), decoded(out), strict=True):
        want = np.clip(bicubic_x2(np.clip(reference_rgb(frame_planes(src), bits, full, *kr_kb), 0, 1)), 0, 1)
        have = reference_rgb(frame_planes(got), bits, full, *kr_kb)
        db = psnr(np.clip(have, 0, 1)[4:-4, 4:-4], want[4:-4, 4:-4])
        print(f"{pix_fmt} {colorspace} {color_range}: {db:.1f} dB")
        assert db >= 45


# ----------------------------------------------------------------------------- streams


def test_timestamps_and_every_other_stream_are_kept(default_onnx, tmp_path):
    clip = make_clip(tmp_path / "in.mkv", frames=10, vfr=True, audio_tracks=2, subtitle_tracks=2,
                     chapters=2, attachment=True)
    out = tmp_path / "out.mkv"
    with ort(default_onnx) as runner:
        restore_video(runner, clip.path, out)
    a, b = read_streams(clip.path), read_streams(out)
    assert b["video"]["pts"] == a["video"]["pts"] == clip.pts
    assert b["video"]["frames"] == a["video"]["frames"] == 10
    assert (b["video"]["width"], b["video"]["height"]) == (2 * clip.width, 2 * clip.height)
    kinds = [s["type"] for s in a["streams"].values()]
    assert kinds.count("audio") == 2 and kinds.count("subtitle") == 2
    assert [s["type"] for s in b["streams"].values()] == kinds
    for i, s in a["streams"].items():
        t = b["streams"][i]
        assert (t["codec"], t["language"], t["title"]) == (s["codec"], s["language"], s["title"])
        if "packets" in s:
            assert t["packets"] == s["packets"], f"stream {i} ({s['type']})"
    assert b["chapters"] == a["chapters"] and len(a["chapters"]) == 2
    assert b["attachments"] == a["attachments"] and len(a["attachments"]) == 1
    with av.open(str(clip.path)) as x, av.open(str(out)) as y:
        assert y.duration == x.duration


def test_mp4_keeps_rotation_aac_mov_text_and_chapters(default_onnx, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=6, vfr=True, audio_tracks=2, subtitle_tracks=2,
                     rotation=90, chapters=2)
    out = tmp_path / "out.mp4"
    with ort(default_onnx) as runner:
        restore_video(runner, clip.path, out)
    a, b = read_streams(clip.path), read_streams(out)
    assert b["video"]["rotation"] == a["video"]["rotation"] == 90
    assert b["video"]["pts"] == a["video"]["pts"]
    assert b["chapters"] == a["chapters"] and len(a["chapters"]) == 2
    for i, s in a["streams"].items():  # the chapter track (data) is rewritten, not copied
        t = b["streams"][i]
        assert (t["type"], t["codec"], t["language"], t["title"]) == (
            s["type"], s["codec"], s["language"], s["title"])
        if "packets" in s:
            assert t["packets"] == s["packets"], f"stream {i} ({s['type']})"


# ----------------------------------------------------------------------------- shots


def test_one_context_per_shot(routing_onnx, tmp_path):
    clip = make_clip(tmp_path / "in.mkv", width=64, height=48, frames=12, shots=2, lossless=True)
    assert clip.shot_starts == [0, 6]
    with ort(routing_onnx) as runner:
        rec = Recorder(runner)
        restore_video(rec, clip.path, tmp_path / "shot.mkv", TileOptions(tile=(64, 64)),
                      VideoOptions(encode=LOSSLESS_444))
        per_shot = rec.calls
        rec = Recorder(runner)
        restore_video(rec, clip.path, tmp_path / "frame.mkv", TileOptions(tile=(64, 64)),
                      VideoOptions(context="per-frame", encode=LOSSLESS_444))
        per_frame = rec.calls
    assert len(per_shot) == len(per_frame) == 12  # one tile per frame
    for shot in (per_shot[:6], per_shot[6:]):
        assert all(np.array_equal(c, shot[0]) for c in shot)
    assert not np.allclose(per_shot[0], per_shot[6], atol=1e-4)
    assert not all(np.array_equal(c, per_frame[0]) for c in per_frame[:6])  # a pan moves it
    assert np.array_equal(per_shot[0], per_frame[0]) and np.array_equal(per_shot[6], per_frame[6])


@pytest.mark.parametrize("content", ["static", "pan"])
def test_per_shot_context_is_no_less_steady_than_per_frame(routing_onnx, tmp_path, content):
    """The motion-compensated temporal error (:func:`hermes_deploy.video.shots.temporal_error`)
    with one context per shot is no worse than with a context per frame (this random
    model is far from shift-equivariant, so most of its error is not the context's);
    ``benchmarks/bench_video.py temporal`` measures it on a model that routes."""
    from hermes_deploy.video.shots import temporal_error

    clip = make_clip(tmp_path / "in.mkv", width=96, height=64, frames=6, content=content,
                     pix_fmt="yuv444p", lossless=True)
    inputs = [frame_to_rgb(f, colour_of(f)) for f in decoded(clip.path)]
    errors = {}
    with ort(routing_onnx) as runner:
        for mode in ("per-shot", "per-frame"):
            out = tmp_path / f"{mode}.mkv"
            restore_video(runner, clip.path, out, TileOptions(tile=(64, 96)),
                          VideoOptions(context=mode, encode=LOSSLESS_444))
            outs = [frame_to_rgb(f, colour_of(f)) for f in decoded(out)]
            errors[mode] = temporal_error(outs, inputs, 2)
    print(f"{content}: temporal error per-shot {errors['per-shot']:.6f}, "
          f"per-frame {errors['per-frame']:.6f}")
    assert errors["per-shot"] <= errors["per-frame"] + 1e-7
