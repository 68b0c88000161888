"""Video path figures: throughput per CPU backend and precision, the video path's wall
time against the backend's compute, memory against a clip's length, shot detection,
and temporal steadiness per shot vs per frame.

    python benchmarks/bench_video.py throughput [--frames 12] [--size 360x640] [--no-int8]
    python benchmarks/bench_video.py memory [--minutes 1 4] [--size 48x64]
    python benchmarks/bench_video.py shots
    python benchmarks/bench_video.py temporal [--router-gain 100]

Every clip is made here with PyAV from the photographs bundled offline (scikit-image's),
never from matplotlib's or scikit-learn's. ``throughput`` upscales 640x360 -> 1280x720
with the bundled default (x2) through ``restore_video`` - decode, colour, tiles, encode
(libx264 CRF 18) and the final mux - and compares its wall time with the time spent in
the backend (tiles and contexts). ``memory`` runs ``hermes-export infer`` on clips of
each length in a fresh process and reads its peak resident memory. ``temporal`` uses a
routing stand-in (the default with its router's logits scaled, as in
``bench_single_graph.py``), since the default barely routes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from header import header, print_header  # noqa: E402

THREADS = 2
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def _photo(name: str, h: int, w: int) -> np.ndarray:
    from PIL import Image

    from hermes_deploy.quality.photos import load_photo

    img = (load_photo(name) * 255 + 0.5).astype(np.uint8)
    ph, pw = img.shape[:2]
    k = max(h / ph, w / pw) * 1.5
    return np.asarray(Image.fromarray(img).resize((int(pw * k) + 1, int(ph * k) + 1),
                                                  Image.LANCZOS))


def make_clip(path: Path, h: int, w: int, frames: int, content: str = "pan", shots: int = 1,
              fps: int = 24) -> Path:
    """An H.264 clip of crops of bundled photographs, ``shots`` of them: ``pan`` moves the
    crop, ``static`` holds it, ``grain`` holds it with fresh noise in every frame."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "12", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.colorspace = stream.codec_context.color_primaries = 1
        stream.codec_context.color_trc, stream.codec_context.color_range = 1, 1
        per_shot = -(-frames // shots)
        for i in range(frames):
            img = _photo(PHOTOS[(i // per_shot) % len(PHOTOS)], h, w)
            j = i % per_shot if content == "pan" else 0
            y, x = (j // 2) % (img.shape[0] - h), j % (img.shape[1] - w)
            crop = img[y:y + h, x:x + w]
            if content == "grain":  # a static shot with fresh film grain in every frame
                noise = np.random.default_rng(i).normal(0, 6, crop.shape)
                crop = np.clip(crop + noise, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(crop), "rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace=1, dst_color_range=1)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _size(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.lower().split("x"))
    return h, w


def throughput(args) -> dict:
    from hermes_deploy.cpu import cpu_flags
    from hermes_deploy.engines.select import open_runner
    from hermes_deploy.runtime.plan import TileOptions
    from hermes_deploy.video import VideoOptions, restore_video

    from hermes_deploy.cpu import has_precision

    h, w = _size(args.size)
    configs = [("onnxruntime", "f32", "default"), ("openvino", "f32", "default")]
    if has_precision("bf16", cpu_flags()):
        configs.append(("openvino", "bf16", "default"))
    if not args.no_int8:  # the INT8 Q/DQ graph bench --compare keeps (calibrated once)
        from hermes_deploy.checks.cpu_bench import kept_int8
        from hermes_deploy.engines.select import cached_onnx

        int8 = str(kept_int8(cached_onnx("default")))
        configs.append(("onnxruntime", "int8", int8))
        if has_precision("int8", cpu_flags()):
            configs.append(("openvino", "int8", int8))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mkv", h, w, args.frames)
        for backend, precision, model in configs:
            runner, _ = open_runner(model, backend, threads=THREADS, precision=precision)
            with runner:
                out = Path(tmp) / f"{backend}-{precision}.mkv"
                restore_video(runner, clip, out, TileOptions(tile=(args.tile, args.tile)))  # warm-up
                out.unlink()
                t0 = time.perf_counter()
                res = restore_video(runner, clip, out, TileOptions(tile=(args.tile, args.tile)),
                                    VideoOptions())
                wall = time.perf_counter() - t0
            compute = res.stats.compute_seconds + res.stats.context_seconds
            rows.append({"backend": backend, "precision": precision, "frames": res.frames,
                         "fps": round(res.frames / wall, 3), "wall_s": round(wall, 2),
                         "backend_s": round(compute, 2), "wall_over_backend": round(wall / compute, 3)})
            print(f"{backend:12s} {precision:5s} {res.frames} frames {w}x{h} -> {2 * w}x{2 * h}: "
                  f"{rows[-1]['fps']:.3f} fps, wall {wall:.2f}s, backend {compute:.2f}s "
                  f"(x{rows[-1]['wall_over_backend']:.3f})", flush=True)
    return {"rows": rows}


_CHILD = """
import json, resource, sys
from hermes_deploy.engines.select import open_runner
from hermes_deploy.runtime.plan import TileOptions
from hermes_deploy.video import restore_video
runner, _ = open_runner("default", "openvino", threads=2, precision="f32")
with runner:
    res = restore_video(runner, sys.argv[1], sys.argv[2], TileOptions(tile=(64, 64)))
print(json.dumps({"frames": res.frames,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def memory(args) -> dict:
    h, w = _size(args.size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            frames = int(minutes * 60 * 24)
            clip = make_clip(Path(tmp) / f"clip-{minutes}.mkv", h, w, frames)
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", _CHILD, str(clip),
                                  str(Path(tmp) / f"out-{minutes}.mkv")],
                                 capture_output=True, text=True, check=True)
            data = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append({"minutes": minutes, "frames": data["frames"],
                         "peak_mb": round(data["peak_mb"], 1),
                         "seconds": round(time.perf_counter() - t0, 1)})
            print(f"{minutes:g} min ({data['frames']} frames {w}x{h}): peak RSS "
                  f"{data['peak_mb']:.1f} MB in {rows[-1]['seconds']:.0f}s", flush=True)
    ratio = rows[-1]["peak_mb"] / rows[0]["peak_mb"]
    print(f"peak ratio, longest / shortest: {ratio:.3f}")
    return {"rows": rows, "ratio": round(ratio, 3)}


def shots(args) -> dict:
    """Histogram distances at cuts vs inside static and panning shots."""
    import av

    from hermes_deploy.video.colour import guess_colour
    from hermes_deploy.video.frames import frame_to_rgb
    from hermes_deploy.video.shots import ShotDetector

    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for content in ("static", "pan"):
            clip = make_clip(Path(tmp) / f"{content}.mkv", 180, 320, 48, content, shots=4)
            det = ShotDetector()
            cuts = []
            with av.open(str(clip)) as c:
                for i, f in enumerate(c.decode(video=0)):
                    colour = guess_colour(f.width, f.height, f.colorspace, f.color_range,
                                          f.color_primaries, f.color_trc)
                    if det.cut(frame_to_rgb(f, colour)):
                        cuts.append(i)
            truth = [0, 12, 24, 36]
            at_cuts = [det.scores[i - 1] for i in truth[1:]]
            inside = [s for i, s in enumerate(det.scores, 1) if i not in truth]
            cases.append({"content": content, "cuts_found": cuts, "cuts_true": truth,
                          "cut_distance_min": round(min(at_cuts), 4),
                          "inside_distance_max": round(max(inside), 4)})
            print(f"{content:6s}: cuts found {cuts} (true {truth}); distance at cuts >= "
                  f"{min(at_cuts):.3f}, inside shots <= {max(inside):.3f} "
                  f"(threshold {det.threshold})", flush=True)
    return {"cases": cases}


def temporal(args) -> dict:
    import av

    from hermes_deploy.engines.select import open_runner
    from hermes_deploy.export.onnx_export import ExportOptions, export_onnx
    from hermes_deploy.runtime.plan import TileOptions
    from hermes_deploy.video import EncodeOptions, VideoOptions, restore_video
    from hermes_deploy.video.colour import guess_colour
    from hermes_deploy.video.frames import frame_to_rgb
    from hermes_deploy.video.shots import temporal_error
    from bench_single_graph import routing_stand_in

    def frames(path):
        with av.open(str(path)) as c:
            return [frame_to_rgb(f, guess_colour(f.width, f.height, f.colorspace, f.color_range,
                                                 f.color_primaries, f.color_trc))
                    for f in c.decode(video=0)]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        stand_in = routing_stand_in(tmp, args.router_gain)
        models = {"default": "default",
                  f"router x{args.router_gain:g}": str(export_onnx(str(stand_in), tmp / "r.onnx",
                                                                    ExportOptions()).path)}
        for content in ("static", "pan", "grain"):
            clip = make_clip(tmp / f"{content}.mkv", 96, 128, args.frames, content)
            inputs = frames(clip)
            for label, model in models.items():
                runner, _ = open_runner(model, "onnxruntime", threads=THREADS, precision="f32")
                errs = {}
                with runner:
                    for mode in ("per-shot", "per-frame"):
                        out = tmp / f"{content}-{mode}.mkv"
                        restore_video(runner, clip, out, TileOptions(tile=(64, 64)),
                                      VideoOptions(context=mode, encode=EncodeOptions(
                                          codec="ffv1", pix_fmt="yuv444p10le")))
                        errs[mode] = temporal_error(frames(out), inputs, 2)
                        out.unlink()
                rows.append({"content": content, "model": label,
                             **{k: round(v, 6) for k, v in errs.items()}})
                print(f"{content:6s} {label:14s} temporal error per-shot {errs['per-shot']:.6f}, "
                      f"per-frame {errs['per-frame']:.6f}", flush=True)
    return {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--size", default="360x640")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--no-int8", action="store_true", help="no int8 rows (they calibrate the "
                   "INT8 graph once, about a minute, if the cache has none)")
    p = sub.add_parser("memory")
    p.add_argument("--minutes", type=float, nargs="+", default=[1, 4])
    p.add_argument("--size", default="48x64")
    sub.add_parser("shots")
    p = sub.add_parser("temporal")
    p.add_argument("--router-gain", type=float, default=100.0)
    p.add_argument("--frames", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    backend = {"throughput": "onnxruntime+openvino", "memory": "openvino"}.get(args.what, "onnxruntime")
    fields = header(backend, "f32" if args.what != "throughput" else "f32, bf16, int8", THREADS,
                    what=args.what)
    if not args.json:
        print_header(fields)
    data = {"throughput": throughput, "memory": memory, "shots": shots,
            "temporal": temporal}[args.what](args)
    if args.json:
        print(json.dumps({"header": fields, **data}, indent=2))


if __name__ == "__main__":
    main()
