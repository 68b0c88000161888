"""onnxruntime CPU throughput: INT8 Q/DQ graph against its FP32 graph, side by side.

    python benchmarks/bench_int8.py [--fp32 x2.onnx --int8 x2.int8.onnx] [--tile 256]
        [--batch 1] [--repeats 5] [--threads 2] [--json]

Without ``--fp32``/``--int8`` it exports the default model (portable FP32) and
calibrates it (``hermes-export calibrate default --exclude`` with the float islands
``--sensitivity`` picks for it; ranges from the training photographs). Both graphs run
on the same seeded tile and context with the CPU execution provider, graph
optimizations on (onnxruntime fuses DQ -> Conv -> Q into QLinearConv-style INT8 kernels
where its CPU provider has them). Reports seconds per tile (median), input megapixels
per second, and INT8's speed-up over FP32; the two graphs run alternately. The context (once per image) is excluded, as
in the tiled runtime.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ISLANDS = "head,local_blocks.0,upsample"


def _time_interleaved(fns: dict, repeats: int) -> dict:
    """Median seconds of each function, runs alternating so that a load change on a
    shared machine hits both sides alike."""
    for fn in fns.values():
        fn()  # warm-up
    samples: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in samples.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fp32", default=None, help="exported FP32 graph (default: export the default model)")
    ap.add_argument("--int8", default=None, help="INT8 graph (default: calibrate the default model)")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="0 = library defaults")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from header import header, print_header
    from hermes_deploy.engines.ort_runner import OrtRunner

    head = header("onnxruntime (CPU execution provider)", "f32 vs int8 Q/DQ", args.threads,
                  fp32=args.fp32 or "default model, exported here", int8=args.int8 or "calibrated here")
    if not args.json:
        print_header(head)
    tmp = Path(tempfile.mkdtemp())
    fp32, int8 = args.fp32, args.int8
    if fp32 is None:
        from hermes_deploy.export.onnx_export import ExportOptions, export_onnx

        fp32 = str(export_onnx("default", tmp / "x2.onnx", ExportOptions(target="portable")).path)
    if int8 is None:
        from hermes_deploy.export.int8 import Int8Options, calibrate_int8

        int8 = str(calibrate_int8("default", tmp / "x2.int8.onnx",
                                  Int8Options(exclude=tuple(ISLANDS.split(",")))).path)
    x = np.random.default_rng(0).random((args.batch, 3, args.tile, args.tile), dtype=np.float32)
    fns = {}
    for label, path in (("onnxruntime CPU, fp32", fp32), ("onnxruntime CPU, int8 Q/DQ", int8)):
        runner = OrtRunner(path, threads=args.threads)
        ctx = runner.context(x)
        fns[label] = (lambda r, c: (lambda: r.infer(x, c)))(runner, ctx)
    results = _time_interleaved(fns, args.repeats)
    mpix = args.batch * args.tile * args.tile / 1e6
    base = results["onnxruntime CPU, fp32"]
    rows = {k: {"seconds": v, "mp_per_s": mpix / v, "vs_fp32": base / v} for k, v in results.items()}
    if args.json:
        print(json.dumps({"header": head, "tile": args.tile, "batch": args.batch, "repeats": args.repeats,
                          "fp32": fp32, "int8": int8, "rows": rows}, indent=2))
        return
    print(f"{args.batch}x{args.tile}x{args.tile} input, median of {args.repeats}")
    print(f"{'backend':<30}{'s/tile':>10}{'MP/s':>10}{'vs fp32':>10}")
    for k, r in rows.items():
        print(f"{k:<30}{r['seconds']:10.3f}{r['mp_per_s']:10.4f}{r['vs_fp32']:10.2f}")


if __name__ == "__main__":
    main()
