"""onnxruntime CPU vs PyTorch eager on 256x256 tiles, side by side in one run.

    python benchmarks/bench_onnx_vs_torch.py [--model default] [--tile 256] [--batch 1]
        [--repeats 5] [--threads 2] [--onnx GRAPH ...] [--json]

Measures, for the same model and the same tiles: torch eager training form, torch eager
deploy form (re-parameterized, fidelity), and the exported portable FP32 ONNX graph in
onnxruntime (CPU EP, graph optimizations on). Reports megapixels of input per second
and the ratios; the context (once per image) is excluded, as in the tiled runtime.
``--onnx`` reuses exported portable graphs instead of exporting one; given several times
(e.g. graphs exported by two versions of the code) each gets a row, measured in the same
run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import tempfile
from pathlib import Path

import torch

from hermes_deploy.checks.cpu_bench import median_seconds



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="0 = library defaults")
    ap.add_argument("--onnx", action="append", default=None,
                    help="reuse an exported portable graph (repeatable: one row per graph)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from header import header, print_header
    from hermes_deploy.export.onnx_export import ExportOptions, export_onnx
    from hermes_deploy.export.ort import ort_session

    head = header("torch eager (training and deploy forms), onnxruntime (CPU execution provider)", "f32",
                  args.threads, model=args.model, tile=args.tile, batch=args.batch)
    if not args.json:
        print_header(head)
    from hermes_deploy.model.api import load_model
    from hermes_deploy.model.deploy import deploy

    if args.threads:
        torch.set_num_threads(args.threads)
    train_form = load_model(args.model).eval()
    train_form.set_fidelity(True)
    deploy_form = deploy(train_form, fidelity=True)
    x = torch.rand(args.batch, 3, args.tile, args.tile, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ctx = deploy_form.compute_context(x)

    onnx_paths = args.onnx
    if not onnx_paths:
        onnx_paths = [str(Path(tempfile.mkdtemp()) / "bench.onnx")]
        export_onnx(args.model, onnx_paths[0], ExportOptions(target="portable"))
    sessions = {p: ort_session(p, threads=args.threads) for p in onnx_paths}
    feeds = {"input": x.numpy(), "context": ctx.numpy()}

    def run_torch(m):
        def f():
            with torch.no_grad():
                m(x, context=ctx)
        return f

    fns = {"torch eager, training form": run_torch(train_form),
           "torch eager, deploy form": run_torch(deploy_form)}
    for path, sess in sessions.items():
        label = "onnxruntime CPU, portable fp32"
        if len(sessions) > 1:
            label += f" ({Path(path).name})"
        fns[label] = functools.partial(sess.run, None, feeds)
    results = {k: median_seconds(fn, args.repeats) for k, fn in fns.items()}
    mpix = args.batch * args.tile * args.tile / 1e6
    base = results["torch eager, training form"]
    rows = {k: {"seconds": v, "mp_per_s": mpix / v, "vs_training_eager": base / v} for k, v in results.items()}
    if args.json:
        print(json.dumps({"header": head, "tile": args.tile, "batch": args.batch, "model": args.model,
                          "threads": args.threads, "load_average_after": os.getloadavg(), "results": rows},
                         indent=2))
        return
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"model {args.model}, {args.batch}x{args.tile}x{args.tile} input tiles, median of {args.repeats}, "
          f"threads {args.threads or 'default'}, load average after the runs {load}")
    width = max(34, *(len(k) + 2 for k in rows))
    print(f"{'backend':<{width}}{'s/tile':>9}{'MP/s':>9}{'x train eager':>15}")
    for k, r in rows.items():
        print(f"{k:<{width}}{r['seconds']:9.3f}{r['mp_per_s']:9.4f}{r['vs_training_eager']:15.2f}")


if __name__ == "__main__":
    main()
