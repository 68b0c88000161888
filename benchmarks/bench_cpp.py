"""libhermes (C++) against the Python runtime, on the same tiles of one photo, in one run.

    python benchmarks/bench_cpp.py [--onnx GRAPH] [--tile 256] [--threads 2] [--repeats 3]
                                   [--build-dir build/cpp-bench] [--json]
    python benchmarks/bench_cpp.py --accuracy [--accuracy-tiles 144 128] [--onnx GRAPH] ...

Rows: C++ OpenVINO f32, C++ OpenVINO bf16 (where the CPU has bf16 units), Python runtime
onnxruntime f32 and Python runtime OpenVINO f32, each restoring the same 512x512
photograph (astronaut) file to file with the same tile grid; and C++ OpenVINO f32
through the in-memory API (decoded once, outside the time), whose overhead is the
library's own (context, tiling, blending, sample conversion). Per row: median seconds per
image, MP/s (input), seconds inside the backend (tiles), the runtime's overhead (wall /
backend time) and the ratio to the Python onnxruntime row, plus the CPU's flags. The
first restore of each row is a warm-up and is not counted. Builds libhermes (Release)
with scripts/cpp_build.py unless --build-dir already holds a build.

``--accuracy`` instead compares outputs: ``hermes-export infer --sample`` (the Python
runtime, onnxruntime f32) and ``hermes-restore`` (libhermes, OpenVINO f32) on the same
sample photograph (astronaut downscaled 2x, 256x256) with the same tile, for each of
``--accuracy-tiles`` (144: a 2x2 grid, 128: 3x3), and prints the PSNR of the C++ output
against the Python output (8-bit samples, peak 255) and the largest difference in levels.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cpp_inputs import ROOT, astronaut_png, built, default_graph


def _cpp_rows(tool: Path, onnx: Path, photo: Path, out: Path, tile: int, threads: int, repeats: int,
              precision: str, in_memory: bool = False) -> dict:
    done = subprocess.run([str(tool), str(onnx), str(photo), str(out), "--tile", str(tile), "--threads",
                           str(threads), "--precision", precision, "--repeat", str(repeats + 1)]
                          + (["--in-memory"] if in_memory else []), capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"bench_cpp: hermes-restore failed: {done.stderr.strip()}")
    runs = [json.loads(line) for line in done.stdout.splitlines()][1:]  # first: warm-up
    return {"wall": statistics.median(r["wall_seconds"] for r in runs),
            "compute": statistics.median(r["compute_seconds"] for r in runs),
            "tiles": runs[0]["tiles"], "grid": runs[0]["grid"]}


def _python_rows(runner, photo: Path, out: Path, tile: int, repeats: int) -> dict:
    from hermes_deploy.runtime.pipeline import TileOptions, restore_file

    walls, computes = [], []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        result = restore_file(runner, photo, out, TileOptions(tile=(tile, tile)))
        if i:
            walls.append(time.perf_counter() - t0)
            computes.append(result.stats.compute_seconds)
    return {"wall": statistics.median(walls), "compute": statistics.median(computes),
            "tiles": result.stats.tiles, "grid": list(result.stats.grid)}


def _read(path: Path):
    import pyvips

    return pyvips.Image.new_from_file(str(path)).numpy()


def accuracy(tool: Path, onnx: Path, folder: Path, tile: int, threads: int) -> dict:
    """libhermes against ``hermes-export infer`` on the sample photo (module doc)."""
    import numpy as np

    from hermes_deploy.quality.metrics import psnr

    py_dir = folder / f"py-{tile}"
    done = subprocess.run([sys.executable, "-m", "hermes_deploy.cli.app", "infer", "--sample", "--model", str(onnx),
                           "--backend", "onnxruntime", "--precision", "f32", "--threads", str(threads),
                           "--tile", str(tile), "-o", str(py_dir)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"bench_cpp: hermes-export infer failed: {done.stderr.strip()}")
    source = py_dir / "inputs" / "sample-astronaut.png"
    ours = folder / f"cpp-{tile}.png"
    run = subprocess.run([str(tool), str(onnx), str(source), str(ours), "--tile", str(tile), "--threads",
                          str(threads), "--precision", "f32"], capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"bench_cpp: hermes-restore failed: {run.stderr.strip()}")
    figures = json.loads(run.stdout.splitlines()[-1])
    python, cpp_out = _read(py_dir / source.name).astype(np.float64), _read(ours).astype(np.float64)
    return {"tile": tile, "grid": figures["grid"], "input": list(_read(source).shape[:2]),
            "cpp_backend": figures["backend"], "psnr_db": psnr(python, cpp_out, peak=255.0),
            "max_level_difference": int(np.abs(python - cpp_out).max()),
            "differing_samples": int(np.count_nonzero(python != cpp_out)), "samples": int(python.size)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", type=Path, default=None, help="portable FP32 graph (default: export the bundled model)")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--build-dir", type=Path, default=ROOT / "build" / "cpp-bench")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--accuracy", action="store_true",
                    help="C++ output vs hermes-export infer (PSNR) instead of the timings")
    ap.add_argument("--accuracy-tiles", type=int, nargs="+", default=[144, 128],
                    help="tiles for --accuracy (on the 256x256 sample: 144 -> 2x2 grid, 128 -> 3x3)")
    args = ap.parse_args()

    from header import header, print_header
    from hermes_deploy.cpu import cpu_flags, describe_cpu, has_precision
    from hermes_deploy.engines.ort_runner import OrtRunner
    from hermes_deploy.engines.ov_runner import OvRunner

    if args.accuracy:
        head = header("C++ libhermes OpenVINO vs Python runtime onnxruntime (hermes-export infer)", "f32",
                      args.threads, image="sample photo (astronaut downscaled 2x, 256x256) -> 512x512")
    else:
        head = header("C++ libhermes OpenVINO; Python runtime onnxruntime and OpenVINO", "f32 all rows; bf16 "
                      "C++ OpenVINO row where the CPU has bf16 units", args.threads,
                      image="astronaut 512x512 -> 1024x1024", tile=args.tile)
    if not args.json:
        print_header(head)
    tool = built(args.build_dir, "hermes-restore", "bench_cpp")
    if args.accuracy:
        with tempfile.TemporaryDirectory(prefix="hermes-bench-cpp-") as tmp:
            tmp = Path(tmp)
            onnx = default_graph(args.onnx, tmp)
            results = []
            for tile in args.accuracy_tiles:
                print(f"... tile {tile}: hermes-export infer, then hermes-restore", file=sys.stderr, flush=True)
                results.append(accuracy(tool, onnx, tmp, tile, args.threads))
        if args.json:
            print(json.dumps({"header": head, "rows": results}, indent=2))
            return
        print("libhermes (hermes-restore) output against hermes-export infer output, same input and tile:")
        for r in results:
            print(f"  tile {r['tile']}, grid {r['grid'][0]}x{r['grid'][1]}: PSNR {r['psnr_db']:.1f} dB (peak 255); "
                  f"largest difference {r['max_level_difference']} level(s); {r['differing_samples']} of "
                  f"{r['samples']} samples differ")
        return
    with tempfile.TemporaryDirectory(prefix="hermes-bench-cpp-") as tmp:
        tmp = Path(tmp)
        onnx = default_graph(args.onnx, tmp)
        photo = astronaut_png(tmp)
        rows: dict[str, dict] = {}
        for precision in ("f32", "bf16"):
            if precision == "bf16" and not has_precision("bf16"):
                rows["C++ OpenVINO bf16"] = {"skipped": "this CPU has no bf16 units (AVX512-BF16 / AMX-BF16)"}
                continue
            print(f"... C++ OpenVINO {precision}", file=sys.stderr, flush=True)
            rows[f"C++ OpenVINO {precision}"] = _cpp_rows(tool, onnx, photo, tmp / "cpp.png", args.tile,
                                                          args.threads, args.repeats, precision)
            if precision == "f32":  # the library alone: no decoding or encoding in the time
                rows["C++ OpenVINO f32 in-memory"] = _cpp_rows(tool, onnx, photo, tmp / "cpp-mem.png", args.tile,
                                                               args.threads, args.repeats, precision, True)
        print("... Python runtime, onnxruntime f32", file=sys.stderr, flush=True)
        with OrtRunner(onnx, threads=args.threads) as runner:
            rows["Python onnxruntime f32"] = _python_rows(runner, photo, tmp / "py.png", args.tile, args.repeats)
        print("... Python runtime, OpenVINO f32", file=sys.stderr, flush=True)
        with OvRunner(onnx, threads=args.threads) as runner:
            rows["Python OpenVINO f32"] = _python_rows(runner, photo, tmp / "py-ov.png", args.tile, args.repeats)
    base = rows["Python onnxruntime f32"]["wall"]
    for row in rows.values():
        if "wall" in row:
            row["mp_per_s"] = 512 * 512 / 1e6 / row["wall"]
            row["overhead"] = row["wall"] / row["compute"]
            row["vs_python_ort"] = base / row["wall"]
    info = {"cpu": describe_cpu(), "flags": sorted(f for f in cpu_flags() if f.startswith(("avx", "amx"))),
            "threads": args.threads, "tile": args.tile, "image": "astronaut 512x512 -> 1024x1024",
            "repeats": args.repeats, "rows": rows, "header": head}
    if args.json:
        print(json.dumps(info, indent=2))
        return
    first = next(r for r in rows.values() if "grid" in r)
    print(f"{info['image']}, tile {args.tile}, grid {first['grid'][0]}x{first['grid'][1]} "
          f"({first['tiles']} tiles), {args.threads} threads, median of {args.repeats}")
    print(f"{'runtime / backend':<29}{'s/image':>9}{'MP/s':>8}{'backend s':>11}{'overhead':>10}{'vs Py ORT':>11}")
    for name, row in rows.items():
        if "skipped" in row:
            print(f"{name:<29}  skipped: {row['skipped']}")
            continue
        print(f"{name:<29}{row['wall']:>9.3f}{row['mp_per_s']:>8.3f}{row['compute']:>11.3f}"
              f"{row['overhead']:>9.3f}x{row['vs_python_ort']:>10.2f}x")


if __name__ == "__main__":
    main()
