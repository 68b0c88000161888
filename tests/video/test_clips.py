"""The test clips read back as ``clips.py`` promises: frames, pts, tracks, colour, bits."""

from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av", reason="PyAV is not installed (pip install 'hermes-deploy[video]')")
pytest.importorskip("skimage", reason="scikit-image is not installed (pip install 'hermes-deploy[data]')")

from .clips import (  # noqa: E402 - after the skips above
    ATTACHMENT,
    COLOR_PRIMARIES,
    COLOR_RANGES,
    COLOR_TRCS,
    COLORSPACES,
    VFR_DURATIONS,
    corrupt_copy,
    frame_planes,
    make_clip,
    make_no_video,
    read_streams,
    yuv_planes,
)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4", ".mov"])
def test_frame_count_size_and_cfr_pts(tmp_path, suffix):
    info = make_clip(tmp_path / f"clip{suffix}")
    read = read_streams(info.path)["video"]
    assert (info.frames, read["frames"]) == (12, 12)
    assert (read["width"], read["height"], read["pix_fmt"]) == (64, 48, "yuv420p")
    assert read["pts"] == info.pts and read["time_base"] == info.time_base
    # 24 fps, rounded to the container's ticks (whole ms in Matroska)
    assert [round(p * info.time_base * 24, 1) for p in info.pts] == list(range(12))


@pytest.mark.parametrize("suffix, fmt", [(".mkv", "matroska"), (".mp4", "mp4")])
def test_vfr_pts_are_exact(tmp_path, suffix, fmt):
    info = make_clip(tmp_path / f"vfr{suffix}", vfr=True)
    cycle = VFR_DURATIONS[fmt]
    starts = np.cumsum([Fraction(0)] + [cycle[i % 3] for i in range(11)])
    assert info.pts == [t / info.time_base for t in starts]
    assert len(set(np.diff(info.pts))) == 3  # the gaps really vary
    assert read_streams(info.path)["video"]["pts"] == info.pts


def test_mkv_carries_audio_subtitles_chapters_and_attachment(tmp_path):
    info = make_clip(tmp_path / "full.mkv", audio_tracks=2, subtitle_tracks=2, chapters=3,
                     attachment=True)
    read = read_streams(info.path)
    streams = read["streams"]
    kinds = sorted(s["type"] for s in streams.values())
    assert kinds == ["attachment", "audio", "audio", "subtitle", "subtitle", "video"]
    audio = [s for s in streams.values() if s["type"] == "audio"]
    subs = [s for s in streams.values() if s["type"] == "subtitle"]
    assert [s["language"] for s in audio] == ["eng", "fra"] == [s["language"] for s in subs]
    assert all(s["title"] for s in audio + subs) and all(s["packets"] for s in audio)
    assert [p[3] for p in subs[1]["packets"]] == [b"fra cue 1", b"fra cue 2", b"fra cue 3"]
    assert all(p[2] > 0 for p in subs[0]["packets"])
    assert [c[3] for c in read["chapters"]] == ["Chapter 1", "Chapter 2", "Chapter 3"]
    start, end, tb, _ = read["chapters"][-1]
    assert (start * tb, end * tb) == (Fraction(333, 1000), Fraction(1, 2))  # 12 frames at 24 fps
    assert read["attachments"] == [ATTACHMENT]


def test_mp4_carries_aac_and_mov_text(tmp_path):
    info = make_clip(tmp_path / "full.mp4", audio_tracks=2, subtitle_tracks=2, chapters=2)
    read = read_streams(info.path)
    by_type = {}
    for s in read["streams"].values():
        by_type.setdefault(s["type"], []).append(s)
    assert [s["codec"] for s in by_type["audio"]] == ["aac", "aac"]
    assert [s["codec"] for s in by_type["subtitle"]] == ["mov_text", "mov_text"]
    assert [s["title"] for s in by_type["subtitle"]] == ["Subtitles 1 (eng)", "Subtitles 2 (fra)"]
    cues = [p[3] for p in by_type["subtitle"][0]["packets"] if len(p[3]) > 2]
    assert cues == [b"\x00\teng cue 1", b"\x00\teng cue 2", b"\x00\teng cue 3"]
    assert [c[3] for c in read["chapters"]] == ["Chapter 1", "Chapter 2"]


@pytest.mark.parametrize("suffix, kwargs", [
    (".mkv", {}),
    (".mp4", dict(colorspace="smpte170m", color_range="pc", primaries="smpte170m",
                  trc="smpte170m")),
    (".mkv", dict(colorspace="bt2020nc", primaries="bt2020", trc="bt2020-10",
                  pix_fmt="yuv420p10le")),
    (".mkv", dict(colorspace="bt470bg", color_range="pc", primaries="bt470bg",
                  trc="iec61966-2-1", codec="ffv1", pix_fmt="yuv444p")),
])
def test_colour_tags_read_back(tmp_path, suffix, kwargs):
    info = make_clip(tmp_path / f"colour{suffix}", **kwargs)
    video = read_streams(info.path)["video"]
    want = (COLORSPACES[kwargs.get("colorspace", "bt709")],
            COLOR_RANGES[kwargs.get("color_range", "tv")],
            COLOR_PRIMARIES[kwargs.get("primaries", "bt709")],
            COLOR_TRCS[kwargs.get("trc", "bt709")])
    got = (video["colorspace"], video["color_range"], video["color_primaries"],
           video["color_trc"])
    assert got == want == video["frame_colour"]


def test_colour_tables_are_ffmpeg_numbers():
    from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

    assert COLORSPACES["bt709"] == Colorspace.ITU709
    assert COLORSPACES["bt470bg"] == Colorspace.ITU601
    assert COLORSPACES["bt2020nc"] == Colorspace.BT2020
    assert (COLOR_RANGES["tv"], COLOR_RANGES["pc"]) == (ColorRange.MPEG, ColorRange.JPEG)
    assert COLOR_PRIMARIES["smpte170m"] == ColorPrimaries.SMPTE170M
    assert COLOR_TRCS["arib-std-b67"] == ColorTrc.ARIB_STD_B67


@pytest.mark.parametrize("suffix, codec, pix_fmt", [
    (".mp4", "libx264", "yuv420p"),
    (".mkv", "libx264", "yuv420p10le"),
    (".mkv", "libx264", "yuv444p"),
    (".mkv", "ffv1", "yuv420p10le"),
])
@pytest.mark.parametrize("color_range", ["tv", "pc"])
def test_lossless_clip_decodes_to_the_planes_written(tmp_path, suffix, codec, pix_fmt,
                                                      color_range):
    info = make_clip(tmp_path / f"lossless{suffix}", codec=codec, pix_fmt=pix_fmt,
                     color_range=color_range, lossless=True, keep_rgb=True)
    with av.open(str(info.path)) as inp:
        decoded = [frame_planes(f) for f in inp.decode(video=0)]
    assert len(decoded) == len(info.rgb) == 12
    for rgb, planes in zip(info.rgb, decoded):
        want = yuv_planes(rgb, color_range=color_range, pix_fmt=pix_fmt)
        assert [p.dtype for p in planes] == [w.dtype for w in want]
        for plane, w in zip(planes, want):
            np.testing.assert_array_equal(plane, w)


def test_yuv_planes_reference_values():
    white, black = np.ones((2, 2, 3)), np.zeros((2, 2, 3))
    red = np.zeros((2, 2, 3))
    red[..., 0] = 1.0

    def levels(rgb, **kw):
        return [int(p[0, 0]) for p in yuv_planes(rgb, **kw)]

    assert levels(white) == [235, 128, 128] and levels(black) == [16, 128, 128]
    assert levels(white, pix_fmt="yuv420p10le") == [940, 512, 512]
    assert levels(white, color_range="pc", pix_fmt="yuv444p10le") == [1023, 512, 512]
    # BT.601 red: Y = 16 + 219 * 0.299, Cr at its top, Cb = 128 - 224 * 0.299 / 1.772
    assert levels(red, colorspace="smpte170m") == [81, 90, 240]
    assert levels(red, colorspace="bt709")[0] == round(16 + 219 * 0.2126)
    shapes = [p.shape for p in yuv_planes(np.zeros((4, 6, 3)))]
    assert shapes == [(4, 6), (2, 3), (2, 3)]


def test_rotation_reads_back(tmp_path):
    assert read_streams(make_clip(tmp_path / "r.mp4", rotation=90).path)["video"]["rotation"] == 90
    assert read_streams(make_clip(tmp_path / "n.mp4").path)["video"]["rotation"] == 0


def test_content_pans_stays_still_and_cuts(tmp_path):
    pan = make_clip(tmp_path / "pan.mkv", keep_rgb=True).rgb
    for j in range(11):  # frame j+1 is frame j moved by (1, 1 or 2) px
        dx = 1 + j % 2
        np.testing.assert_array_equal(pan[j + 1][:-1, :-dx], pan[j][1:, dx:])
        assert not np.array_equal(pan[j + 1], pan[j])
    static = make_clip(tmp_path / "static.mkv", content="static", keep_rgb=True).rgb
    assert all(np.array_equal(f, static[0]) for f in static)
    cut = make_clip(tmp_path / "cut.mkv", content="static", shots=3, keep_rgb=True)
    assert cut.shot_starts == [0, 4, 8]
    firsts = [cut.rgb[s] for s in cut.shot_starts]
    assert all(np.abs(a - b).mean() > 0.05 for a, b in zip(firsts, firsts[1:]))
    noise = make_clip(tmp_path / "noise.mkv", content="noise", keep_rgb=True).rgb
    assert 0.4 < np.mean(noise) < 0.6 and not np.array_equal(noise[0], noise[1])


def test_corrupt_copies_and_audio_only_file(tmp_path):
    src = make_clip(tmp_path / "src.mkv", content="noise").path
    data = src.read_bytes()
    cut = corrupt_copy(src, tmp_path / "cut.mkv", how="truncate").read_bytes()
    assert cut == data[: len(data) * 6 // 10]
    bad = corrupt_copy(src, tmp_path / "bad.mkv", how="garbage").read_bytes()
    assert len(bad) == len(data) and bad != data
    assert bad[:100] == data[:100] and bad[-100:] == data[-100:]
    with pytest.raises(ValueError, match="truncate"):
        corrupt_copy(src, tmp_path / "x.mkv", how="zero")

    read = read_streams(make_no_video(tmp_path / "audio.mp4"))
    assert read["video"] is None
    assert [s["type"] for s in read["streams"].values()] == ["audio"]
    assert read["streams"][0]["packets"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(width=63), "even width and height"),
    (dict(colorspace="bt601"), "colorspace"),
    (dict(lossless=True, codec="mpeg4"), "lossless"),
    (dict(shots=13), "shots"),
])
def test_bad_arguments_say_what_to_do(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_clip(tmp_path / "bad.mkv", **kwargs)
    with pytest.raises(ValueError, match=r"\.mkv path"):
        make_clip(tmp_path / "bad.mp4", attachment=True)
