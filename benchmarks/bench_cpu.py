"""CPU backends and precisions side by side, on the same tiles, in one process.

    python benchmarks/bench_cpu.py [--model default] [--tile 256] [--threads 2] [--repeats 3]
        [--onnx GRAPH] [--int8 GRAPH | --no-int8] [--no-compile] [--json]

Rows (each where it can run here; a row that cannot says why):

- torch eager (deploy form, fidelity) and ``torch.compile`` (inductor, CPU) of it;
- onnxruntime f32 and int8 (the INT8 Q/DQ graph from ``hermes-export calibrate``);
- OpenVINO f32, bf16 (CPUs with AVX512-BF16/AMX-BF16) and int8 (VNNI/AMX-INT8).

For each: seconds per tile (median after a warm-up), input megapixels per second, the
ratio to onnxruntime f32, and the achieved GFLOP/s (2 x MACs of the network at this
tile, counted by ``torch.utils.flop_counter``) against a matmul peak measured in the same
process (torch f32 and bf16 GEMM at the same thread count): bf16 rows against the bf16
peak, the others (int8 included: no int8 GEMM peak is measured) against the f32 peak.
The CPU and its flags are printed first. The per-image context is excluded, as in the tiled runtime.

Without ``--onnx`` the model is exported once to a temporary folder; without ``--int8``
(and without ``--no-int8``) an INT8 graph is calibrated there from it (about a minute).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _time(fn, repeats: int) -> float:
    """Median seconds per call after one warm-up call; backends run one after another
    (taking turns on 2 cores makes each slow the other)."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n x n x n GEMM in ``dtype`` at torch's thread count (best of runs)."""
    a = torch.rand(n, n).to(dtype)
    b = torch.rand(n, n).to(dtype)
    torch.mm(a, b)
    best = min(_time(lambda: torch.mm(a, b), 1) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


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

    from hermes_deploy.cpu import check_precision, describe_cpu
    from hermes_deploy.engines.ort_runner import OrtRunner
    from hermes_deploy.model.api import load_model
    from hermes_deploy.model.deploy import deploy
    from hermes_deploy.model.stats import count_macs
    from hermes_deploy.optional import has
    from hermes_deploy.quality.photos import load_photo

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="hermes-bench-cpu-"))
    model = deploy(load_model(args.model), fidelity=True).eval()
    t = args.tile
    gflop = 2 * count_macs(model, t * model.config.scale, t * model.config.scale) / 1e9
    onnx_path = Path(args.onnx) if args.onnx else None
    if onnx_path is None:
        from hermes_deploy.export.onnx_export import ExportOptions, export_onnx

        onnx_path = export_onnx(args.model, work / "model.onnx", ExportOptions()).path
    int8_path = None if args.no_int8 else (Path(args.int8) if args.int8 else None)
    if not args.no_int8 and int8_path is None:
        from hermes_deploy.export.int8 import Int8Options, calibrate_int8

        int8_path = calibrate_int8(onnx_path, work / "model.int8.onnx", Int8Options()).path

    photo = load_photo("astronaut")
    x = np.ascontiguousarray(photo[:t, :t].transpose(2, 0, 1)[None], np.float32)
    with OrtRunner(onnx_path, threads=args.threads) as ref:
        ctx = ref.context(x)
        expected = ref.infer(x, ctx)

    peaks = {"f32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    rows: list[dict] = []

    def add(name: str, make, precision: str) -> None:
        """``make()`` returns a callable tile -> output; errors become a 'skipped' row."""
        try:
            fn = make()
            out = np.asarray(fn(), np.float32)
            seconds = _time(fn, args.repeats)
        except Exception as exc:  # a row that cannot run here says why; the others go on
            rows.append({"backend": name, "skipped": " ".join(str(exc).split())[:160]})
            return
        mse = float(np.mean((out.astype(np.float64) - expected) ** 2))
        rows.append({"backend": name, "precision": precision, "s_per_tile": seconds,
                     "mp_per_s": t * t / 1e6 / seconds, "gflop_per_s": gflop / seconds,
                     "psnr_vs_ort_f32": float("inf") if mse == 0 else 10 * np.log10(1 / mse)})

    xt, ct = torch.from_numpy(x), torch.from_numpy(ctx)

    def torch_eager():
        def run():
            with torch.inference_mode():
                return model(xt, context=ct).numpy()
        return run

    def torch_compiled():
        if args.no_compile:
            raise RuntimeError("--no-compile")
        compiled = torch.compile(model, backend="inductor")

        def run():
            with torch.inference_mode():
                return compiled(xt, context=ct).numpy()
        return run

    def graph(path, backend: str, precision: str):
        def make():
            if path is None:
                raise RuntimeError("no INT8 graph (--no-int8)")
            if backend == "openvino":
                from hermes_deploy.engines.ov_runner import OvRunner

                runner = OvRunner(path, threads=args.threads, precision=precision)
            else:
                runner = OrtRunner(path, threads=args.threads, precision=precision)
            return lambda: runner.infer(x, ctx)
        return make

    add("torch eager", torch_eager, "f32")
    add("torch.compile (inductor)", torch_compiled, "f32")
    add("onnxruntime", graph(onnx_path, "onnxruntime", "f32"), "f32")
    if has("openvino"):
        add("openvino", graph(onnx_path, "openvino", "f32"), "f32")
        add("openvino", graph(onnx_path, "openvino", "bf16"), "bf16")
    else:
        rows.append({"backend": "openvino", "skipped": "not installed (pip install 'hermes-deploy[openvino]')"})
    add("onnxruntime", graph(int8_path, "onnxruntime", "int8"), "int8")
    if has("openvino"):
        add("openvino", graph(int8_path, "openvino", "int8"), "int8")

    base = next(r["s_per_tile"] for r in rows if r.get("backend") == "onnxruntime" and r.get("precision") == "f32")
    for r in rows:
        if "s_per_tile" in r:
            r["vs_ort_f32"] = base / r["s_per_tile"]
            peak = peaks["bf16" if r["precision"] == "bf16" else "f32"]
            r["of_peak"] = r["gflop_per_s"] / peak
    info = {"cpu": describe_cpu(), "flags_bf16": _has_precision(check_precision, "bf16"),
            "flags_int8": _has_precision(check_precision, "int8"), "threads": args.threads,
            "tile": [t, t], "gflop_per_tile": gflop, "peak_gflop_per_s": peaks, "rows": rows}
    if args.json:
        print(json.dumps(info, indent=2))
        return
    print(f"CPU: {info['cpu']}; {args.threads} threads; tile {t}x{t}, {gflop:.1f} GFLOP per tile")
    print(f"matmul peak here: f32 {peaks['f32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s")
    print(f"{'backend':<26}{'prec':<6}{'s/tile':>8}{'MP/s':>8}{'x ort f32':>10}{'GFLOP/s':>9}"
          f"{'of peak':>9}{'PSNR vs f32':>13}")
    for r in rows:
        if "skipped" in r:
            print(f"{r['backend']:<26}skipped: {r['skipped']}")
            continue
        print(f"{r['backend']:<26}{r['precision']:<6}{r['s_per_tile']:8.3f}{r['mp_per_s']:8.3f}"
              f"{r['vs_ort_f32']:10.2f}{r['gflop_per_s']:9.1f}{r['of_peak']:9.1%}"
              f"{r['psnr_vs_ort_f32']:12.1f} dB")


def _has_precision(check, precision: str) -> bool:
    try:
        check(precision)
        return True
    except Exception:
        return False


if __name__ == "__main__":
    main()
