"""CPU backends and precisions side by side, on the same tiles, in one run.

    python benchmarks/bench_cpu.py [--model default] [--tile 256] [--threads 2] [--repeats 3]
        [--onnx GRAPH] [--int8 GRAPH | --no-int8] [--no-compile] [--json]

torch eager, torch.compile (inductor), onnxruntime f32/int8, OpenVINO f32/bf16/int8:
seconds per tile, MP/s, ratio to onnxruntime f32, PSNR against it, GFLOP/s against a
matmul peak measured in the same process, and the CPU's flags. The measuring code is
:mod:`hermes_deploy.checks.cpu_bench`, also behind ``hermes-export bench --compare``.
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--onnx", default=None, help="an exported portable FP32 graph (default: export --model)")
    ap.add_argument("--int8", default=None, help="an INT8 Q/DQ graph (default: calibrate one)")
    ap.add_argument("--no-int8", action="store_true", help="skip the int8 rows")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (minutes on 2 cores)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from header import header, print_header
    from hermes_deploy.checks.cpu_bench import compare_cpu, format_compare

    head = header("torch eager, torch.compile" + (" (skipped: --no-compile)" if args.no_compile else "")
                  + ", onnxruntime, OpenVINO (one row each)",
                  "f32 all; bf16 OpenVINO where the CPU has bf16 units; int8 onnxruntime and OpenVINO"
                  + (" (skipped: --no-int8)" if args.no_int8 else ""), args.threads, model=args.onnx or args.model,
                  tile=args.tile)
    if not args.json:
        print_header(head)
    info = compare_cpu(args.model, args.onnx, args.int8, tile=args.tile, threads=args.threads,
                       repeats=args.repeats, compile=not args.no_compile, int8_rows=not args.no_int8,
                       say=lambda m: print(f"... {m}", file=sys.stderr, flush=True))
    print(json.dumps({"header": head, **info}, indent=2) if args.json else format_compare(info))


if __name__ == "__main__":
    main()
