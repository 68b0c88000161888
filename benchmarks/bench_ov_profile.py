"""Where OpenVINO's CPU time goes on one tile: by op type, kernel precision and model
block, and the slowest nodes, with GFLOP/s against a matmul peak from the same process.

    python benchmarks/bench_ov_profile.py --onnx GRAPH [--precision bf16] [--tile 256]
        [--threads 2] [--repeats 3] [--top 15] [--json]

GRAPH is an exported graph (``hermes-export onnx default -o m/default.onnx``) or an
INT8 graph with ``--precision int8``. The measuring code is
:mod:`hermes_deploy.checks.ov_profile`. Node times are the plugin's own counters; their
sum is a little below the wall time of an uncounted run.
"""

from __future__ import annotations

import argparse
import json
import os


def _table(title: str, groups: list[dict], key: str, peak: float, limit: int = 12) -> str:
    lines = [f"{title}:", f"  {key:<34} {'nodes':>5} {'ms':>8} {'share':>6} {'GFLOP':>7} "
             f"{'GFLOP/s':>8} {'of peak':>7}"]
    for g in groups[:limit]:
        gf = g["flops"] / 1e9
        rate = g["gflops_per_s"]
        lines.append(f"  {str(g[key])[:34]:<34} {g['nodes']:>5} {g['seconds'] * 1e3:>8.2f} "
                     f"{g['share'] * 100:>5.1f}% {gf:>7.2f} {rate:>8.1f} "
                     f"{(rate / peak * 100 if rate else 0):>6.1f}%")
    if len(groups) > limit:
        rest = groups[limit:]
        lines.append(f"  {'(' + str(len(rest)) + ' more)':<34} {sum(g['nodes'] for g in rest):>5} "
                     f"{sum(g['seconds'] for g in rest) * 1e3:>8.2f} "
                     f"{sum(g['share'] for g in rest) * 100:>5.1f}%")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--precision", default="bf16", choices=("f32", "bf16", "int8"))
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch

    from hermes_deploy.checks.cpu_bench import matmul_peak
    from hermes_deploy.checks.ov_profile import profile_openvino, summarize
    from header import header, print_header
    from hermes_deploy.cpu import check_precision, describe_cpu

    check_precision(args.precision)
    head = header("openvino (CPU plugin)", args.precision, args.threads, onnx=args.onnx, tile=args.tile)
    if not args.json:
        print_header(head)
    torch.set_num_threads(args.threads)
    peak_dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    peak = matmul_peak(peak_dtype)
    info = profile_openvino(args.onnx, args.precision, args.tile, args.threads, args.repeats)
    rows = info["rows"]
    info["matmul_peak_gflops"] = peak
    info["cpu"] = describe_cpu()
    info["header"] = head
    info["by_type"] = summarize(rows, "type")
    info["by_precision"] = summarize(rows, "precision")
    info["by_block"] = summarize(rows, "block")
    counted = [r for r in rows if r["flops"]]
    info["counted"] = {"nodes": len(counted), "seconds": sum(r["seconds"] for r in counted)}
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return
    total = info["node_seconds"]
    print(f"{info['runner']}, {args.tile}x{args.tile} tile, {args.threads} threads, "
          f"median of {args.repeats}")
    print(f"node time {total * 1e3:.1f} ms per tile; counted work {info['counted_gflop']:.2f} GFLOP "
          f"(convolutions and matrix products) = {info['counted_gflop'] / total:.1f} GFLOP/s over the "
          f"whole tile; matmul peak ({str(peak_dtype).split('.')[-1]}, torch, same threads) "
          f"{peak:.0f} GFLOP/s")
    c = info["counted"]
    print(f"convolutions and matrix products: {c['nodes']} nodes, {c['seconds'] / total * 100:.1f}% of "
          f"the time, {info['counted_gflop'] / c['seconds'] if c['seconds'] else 0:.1f} GFLOP/s "
          f"({info['counted_gflop'] / c['seconds'] / peak * 100 if c['seconds'] else 0:.1f}% of peak); "
          f"everything else: {(1 - c['seconds'] / total) * 100:.1f}% of the time")
    print()
    print(_table("by op type", info["by_type"], "type", peak))
    print()
    print(_table("by kernel precision", info["by_precision"], "precision", peak))
    print()
    print(_table("by model block", info["by_block"], "block", peak, limit=16))
    print()
    print(f"slowest {args.top} nodes:")
    for r in sorted(rows, key=lambda r: -r["seconds"])[: args.top]:
        rate = r["flops"] / r["seconds"] / 1e9 if r["flops"] and r["seconds"] else 0
        print(f"  {r['seconds'] * 1e3:7.2f} ms {r['type']:<16} {r['kernel']:<28} "
              f"{(f'{rate:6.1f} GFLOP/s' if rate else ''):<14} {r['block']:<16} "
              f"{'x'.join(map(str, r['shape'] or [])):<18} {r['node'][:48]}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
