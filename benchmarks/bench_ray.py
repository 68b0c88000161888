"""Ray Data batch inference: 1 vs 2 actors, and the Ray path's overhead over local infer.

    python benchmarks/bench_ray.py [--images 16] [--size 96x128] [--tile 64] [--onnx MODEL.onnx]
        [--json]

On the same ``--images`` photographs (crops of the bundled photos, PNG), each into a
fresh output folder, with onnxruntime:

1. local: ``run_batch`` (what ``hermes-export infer`` runs) with one intra-op thread,
   then with two;
2. Ray: ``run_ray_batch`` on a local cluster (``ray.init(num_cpus=2)``, started once,
   outside the timings) with 1 actor of 1 thread, then 2 actors of 1 thread each.

A Ray row's wall time is the whole job as a user waits for it: planning on the driver
(the model opened once to resolve backend and options), actor start-up and model
loading, every file, the report. Per-image overhead = (Ray 1 actor - local 1 thread) /
images: the same compute, one model, one thread. The speed-up of 2 actors over 1 is
the scale-out figure (at most 2 on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def photos(folder: Path, count: int, h: int, w: int) -> None:
    from PIL import Image

    from hermes_deploy.quality.photos import load_photo

    folder.mkdir(parents=True)
    names = ("astronaut", "coffee", "chelsea")
    for i in range(count):
        photo = load_photo(names[i % 3])
        y, x = (13 * i) % (photo.shape[0] - h), (29 * i) % (photo.shape[1] - w)
        Image.fromarray((photo[y:y + h, x:x + w] * 255 + 0.5).astype(np.uint8)).save(folder / f"p{i:02d}.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--size", default="96x128", help="HxW of each image")
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--onnx", default=None, help="portable graph (default: the bundled model's export)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import ray

    from header import header, print_header
    from hermes_deploy.cpu import cpu_flags, describe_cpu
    from hermes_deploy.engines.ort_runner import OrtRunner
    from hermes_deploy.engines.select import cached_onnx
    from hermes_deploy.runtime.batch import run_batch
    from hermes_deploy.runtime.plan import TileOptions
    from hermes_deploy.scaleout.ray_batch import run_ray_batch

    h, w = (int(v) for v in args.size.lower().split("x"))
    head = header("onnxruntime (local run_batch and Ray actors)", "f32",
                  "1 and 2 (local rows), 1 per actor (Ray rows, num_cpus=2)", model=args.onnx or "default",
                  images=f"{args.images} x {h}x{w}", tile=args.tile)
    if not args.json:
        print_header(head)
    onnx = args.onnx or str(cached_onnx("default"))
    options = TileOptions(tile=(args.tile, args.tile))
    rows = {}
    with tempfile.TemporaryDirectory(prefix="hermes-bench-ray-") as tmp:
        tmp = Path(tmp)
        photos(tmp / "in", args.images, h, w)
        for threads in (1, 2):
            print(f"... local, {threads} thread(s)", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            with OrtRunner(onnx, threads=threads) as runner:
                report = run_batch(runner, [str(tmp / "in")], tmp / f"local{threads}", options)
            rows[f"local infer, {threads} thread(s)"] = {"wall": time.perf_counter() - t0,
                                                         "done": report.count("done")}
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
        try:
            for actors in (1, 2):
                print(f"... Ray, {actors} actor(s)", file=sys.stderr, flush=True)
                t0 = time.perf_counter()
                report = run_ray_batch([str(tmp / "in")], tmp / f"ray{actors}", model=onnx,
                                       backend="onnxruntime", options=options, actors=actors,
                                       threads=1)
                rows[f"Ray Data, {actors} actor(s) x 1 thread"] = {
                    "wall": time.perf_counter() - t0, "done": report.count("done")}
            identical = all((tmp / "ray2" / p.name).read_bytes() == p.read_bytes()
                            for p in (tmp / "local1").glob("*.png"))
        finally:
            ray.shutdown()
    for row in rows.values():
        row["images_per_s"] = row["done"] / row["wall"]
    one, two = rows["Ray Data, 1 actor(s) x 1 thread"], rows["Ray Data, 2 actor(s) x 1 thread"]
    local1 = rows["local infer, 1 thread(s)"]
    info = {"header": head, "cpu": describe_cpu(), "flags": sorted(f for f in cpu_flags() if f.startswith(("avx", "amx"))),
            "load_average": os.getloadavg(), "images": args.images, "size": [h, w], "tile": args.tile,
            "rows": rows, "ratio_2_vs_1_actor": two["images_per_s"] / one["images_per_s"],
            "ray_overhead_per_image_s": (one["wall"] - local1["wall"]) / args.images,
            "ray_outputs_identical_to_local": identical}
    if args.json:
        print(json.dumps(info, indent=2))
        return
    print(f"{args.images} images {h}x{w} -> x2, tile {args.tile}, onnxruntime, default model")
    print(f"{'run':<34}{'wall s':>8}{'images/s':>10}")
    for name, row in rows.items():
        print(f"{name:<34}{row['wall']:>8.2f}{row['images_per_s']:>10.2f}")
    print(f"2 actors vs 1: x{info['ratio_2_vs_1_actor']:.2f} images/s; Ray overhead over local infer "
          f"(1 actor vs 1 thread): {info['ray_overhead_per_image_s'] * 1000:.0f} ms per image; "
          f"Ray outputs byte-identical to local: {identical}")


if __name__ == "__main__":
    main()
