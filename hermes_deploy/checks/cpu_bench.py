"""CPU backends and precisions side by side, on the same tiles, in one process.

The library side of ``hermes-export bench --compare`` and ``benchmarks/bench_cpu.py``.
Rows (each where it can run here; a row that cannot says why):

- torch eager (deploy form, fidelity) and ``torch.compile`` (inductor, CPU) of it;
- onnxruntime f32 and int8 (the INT8 Q/DQ graph from ``hermes-export calibrate``);
- OpenVINO f32, bf16 (CPUs with AVX512-BF16/AMX-BF16) and int8 (VNNI/AMX-INT8).

For each: seconds per tile (median after a warm-up), input megapixels per second, the
ratio to onnxruntime f32, PSNR against onnxruntime f32 on the same tile, and the
achieved GFLOP/s (2 x MACs of the network at this tile, counted by
``torch.utils.flop_counter``) against a matmul peak measured in the same process (torch
f32 and bf16 GEMM at the same thread count): bf16 rows against the bf16 peak, the
others (int8 included: no int8 GEMM peak is measured) against the f32 peak. The
per-image context is excluded, as in the tiled runtime.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def median_seconds(fn, repeats: int) -> float:
    """Median seconds per call after one warm-up call. Backends are timed one after the
    other, not in turns: torch's OpenMP workers and onnxruntime's pool spin-wait after
    each call, and on a 2-core machine taking turns makes each slow the other."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def matmul_peak(dtype, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n x n x n GEMM in ``dtype`` at torch's thread count (best of runs)."""
    import torch

    a = torch.rand(n, n).to(dtype)
    b = torch.rand(n, n).to(dtype)
    torch.mm(a, b)
    best = min(median_seconds(lambda: torch.mm(a, b), 1) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9



def compare_cpu(model: str = "default", onnx: str | Path | None = None, int8: str | Path | None = None,
                tile: int = 256, threads: int = 2, repeats: int = 3, compile: bool = True,
                int8_rows: bool = True, say=None) -> dict:
    """Measure every CPU row (see module doc) and return them with the CPU facts.

    Without ``onnx`` the model is exported once to a temporary folder; without ``int8``
    (and with ``int8_rows``) an INT8 graph is calibrated there from it (about a minute).
    """
    import torch

    from ..cpu import describe_cpu, has_precision
    from ..engines.ort_runner import OrtRunner
    from ..model.api import load_model
    from ..model.deploy import deploy
    from ..model.stats import count_macs
    from ..optional import has
    from ..quality.photos import load_photo

    say = say or (lambda message: None)
    torch.set_num_threads(threads)
    work = Path(tempfile.mkdtemp(prefix="hermes-bench-cpu-"))
    net = deploy(load_model(model), fidelity=True).eval()
    t = tile
    gflop = 2 * count_macs(net, t * net.config.scale, t * net.config.scale) / 1e9
    onnx_path = Path(onnx) if onnx else None
    if onnx_path is None:
        from ..export.onnx_export import ExportOptions, export_onnx

        say(f"exporting {model} to ONNX")
        onnx_path = export_onnx(model, work / "model.onnx", ExportOptions()).path
    int8_path = Path(int8) if int8 else None
    if int8_rows and int8_path is None:
        from ..export.int8 import Int8Options, calibrate_int8

        say("calibrating an INT8 graph (about a minute)")
        int8_path = calibrate_int8(onnx_path, work / "model.int8.onnx", Int8Options()).path

    photo = load_photo("astronaut")
    x = np.ascontiguousarray(photo[:t, :t].transpose(2, 0, 1)[None], np.float32)
    with OrtRunner(onnx_path, threads=threads) as ref:
        ctx = ref.context(x)
        expected = ref.infer(x, ctx)

    say("measuring the matmul peak")
    peaks = {"f32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    rows: list[dict] = []

    def add(name: str, make, precision: str) -> None:
        """``make()`` returns a callable running the tile; failures become a 'skipped' row."""
        say(f"timing {name} {precision}")
        try:
            fn = make()
            out = np.asarray(fn(), np.float32)
            seconds = median_seconds(fn, repeats)
        except Exception as exc:  # a row that cannot run here says why; the others go on
            rows.append({"backend": name, "precision": precision,
                         "skipped": " ".join(str(exc).split())[:160]})
            return
        mse = float(np.mean((out.astype(np.float64) - expected) ** 2))
        rows.append({"backend": name, "precision": precision, "s_per_tile": seconds,
                     "mp_per_s": t * t / 1e6 / seconds, "gflop_per_s": gflop / seconds,
                     "psnr_vs_ort_f32": float("inf") if mse == 0 else 10 * np.log10(1 / mse)})

    xt, ct = torch.from_numpy(x), torch.from_numpy(ctx)

    def torch_eager():
        def run():
            with torch.inference_mode():
                return net(xt, context=ct).numpy()
        return run

    def torch_compiled():
        if not compile:
            raise RuntimeError("left out (--no-compile)")
        compiled = torch.compile(net, backend="inductor")

        def run():
            with torch.inference_mode():
                return compiled(xt, context=ct).numpy()
        return run

    def graph(path, backend: str, precision: str):
        def make():
            if path is None:
                raise RuntimeError("no INT8 graph (--no-int8)")
            if backend == "openvino":
                from ..engines.ov_runner import OvRunner

                runner = OvRunner(path, threads=threads, precision=precision)
            else:
                runner = OrtRunner(path, threads=threads, precision=precision)
            return lambda: runner.infer(x, ctx)
        return make

    add("torch eager", torch_eager, "f32")
    add("torch.compile (inductor)", torch_compiled, "f32")
    add("onnxruntime", graph(onnx_path, "onnxruntime", "f32"), "f32")
    add("openvino", graph(onnx_path, "openvino", "f32"), "f32")
    add("openvino", graph(onnx_path, "openvino", "bf16"), "bf16")
    add("onnxruntime", graph(int8_path, "onnxruntime", "int8"), "int8")
    add("openvino", graph(int8_path, "openvino", "int8"), "int8")

    base = next(r["s_per_tile"] for r in rows if r["backend"] == "onnxruntime"
                and r["precision"] == "f32" and "s_per_tile" in r)
    for r in rows:
        if "s_per_tile" in r:
            r["vs_ort_f32"] = base / r["s_per_tile"]
            r["of_peak"] = r["gflop_per_s"] / peaks["bf16" if r["precision"] == "bf16" else "f32"]
    return {"cpu": describe_cpu(), "bf16": has_precision("bf16"), "int8": has_precision("int8"),
            "openvino": has("openvino"), "threads": threads, "tile": [t, t],
            "gflop_per_tile": gflop, "peak_gflop_per_s": peaks, "rows": rows}


def format_compare(info: dict) -> str:
    """The table :func:`compare_cpu` measured, for a terminal."""
    t = info["tile"][0]
    peaks = info["peak_gflop_per_s"]
    lines = [f"CPU: {info['cpu']}; {info['threads']} threads; tile {t}x{t}, "
             f"{info['gflop_per_tile']:.1f} GFLOP per tile",
             f"matmul peak here: f32 {peaks['f32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s",
             f"{'backend':<26}{'prec':<6}{'s/tile':>8}{'MP/s':>8}{'x ort f32':>10}{'GFLOP/s':>9}"
             f"{'of peak':>9}{'PSNR vs f32':>13}"]
    for r in info["rows"]:
        if "skipped" in r:
            lines.append(f"{r['backend']:<26}{r['precision']:<6}skipped: {r['skipped']}")
            continue
        lines.append(f"{r['backend']:<26}{r['precision']:<6}{r['s_per_tile']:8.3f}{r['mp_per_s']:8.3f}"
                     f"{r['vs_ort_f32']:10.2f}{r['gflop_per_s']:9.1f}{r['of_peak']:9.1%}"
                     f"{r['psnr_vs_ort_f32']:10.1f} dB")
    return "\n".join(lines)
