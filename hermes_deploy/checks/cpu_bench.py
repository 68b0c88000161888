"""CPU backends and precisions side by side, on the same tiles, in one process.

The library side of ``hermes-export bench --compare`` and ``benchmarks/bench_cpu.py``.
Rows (each where it can run here; a row that cannot says why):

- torch eager (deploy form, fidelity) and ``torch.compile`` (inductor, CPU) of it;
- onnxruntime f32 and int8 (the INT8 Q/DQ graph from ``hermes-export calibrate``);
- OpenVINO f32, bf16 (CPUs with AVX512-BF16/AMX-BF16) and int8 (VNNI/AMX-INT8).

For each: seconds per tile (median after a warm-up), input megapixels per second, the
ratio to onnxruntime f32, PSNR against onnxruntime f32 on the same tile (``-`` for
onnxruntime f32 itself), for the graph rows the held-out PSNR-Y loss against
onnxruntime f32 (PSNR-Y against ground truth on the held-out photographs through the
tiled runtime at the same tile, the quality harness of ``hermes-export eval``), and the
achieved GFLOP/s (2 x MACs of the network at this tile, counted by
``torch.utils.flop_counter``) against a matmul peak measured in the same process (torch
f32 and bf16 GEMM at the same thread count): bf16 rows against the bf16 peak, the
others (int8 included: no int8 GEMM peak is measured) against the f32 peak. The
per-image context is excluded, as in the tiled runtime.

The table ends with the recommendation for this CPU (:func:`..engines.choose.recommend`:
the fastest graph row whose held-out loss is within 0.05 dB), which is kept for
``infer --backend auto --precision auto``. A model name is exported once into the
cache folder (reused by ``infer``), and the INT8 graph calibrated for the int8 rows is
kept there too (:func:`kept_int8`), its path printed.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from ..errors import InputError


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



def kept_int8(onnx: str | Path, say=None) -> Path:
    """The INT8 graph of the FP32 graph ``onnx``, calibrated once (default options, about
    a minute) and kept in the cache folder (:func:`..engines.choose.kept_int8_path`)."""
    from ..engines.choose import kept_int8_path
    from ..export import int8 as int8_export

    say = say or (lambda message: None)
    path = kept_int8_path(onnx)
    if path.is_file() and path.with_name(path.stem + ".context.onnx").is_file():
        say(f"reusing the INT8 graph kept at {path}")
        return path
    say("calibrating an INT8 graph (about a minute; kept for later runs)")
    path.parent.mkdir(parents=True, exist_ok=True)
    made = int8_export.calibrate_int8(onnx, path, int8_export.Int8Options()).path
    say(f"INT8 graph kept at {made}")
    return Path(made)


def compare_cpu(model: str = "default", onnx: str | Path | None = None, int8: str | Path | None = None,
                tile: int = 256, threads: int = 2, repeats: int = 3, compile: bool = True,
                int8_rows: bool = True, say=None, quality_images=None, peak_n: int = 2048) -> dict:
    """Measure every CPU row (see module doc) and return them with the CPU facts and the
    recommendation, which is also kept for ``infer --precision auto``.

    Without ``onnx`` the model's cached export is used (exported once if absent); without
    ``int8`` (and with ``int8_rows``) the kept INT8 graph (calibrated once if absent).
    ``quality_images``: where the held-out PSNR-Y is measured (default: the held-out
    photographs); ``peak_n``: the GEMM size of the matmul peak.
    """
    import torch

    from ..cpu import describe_cpu, has_precision
    from ..engines.choose import heldout_psnr_y, recommend, save_recommendation
    from ..engines.ort_runner import OrtRunner
    from ..engines.precision import float_ops
    from ..engines.select import cached_onnx
    from ..model.api import load_model
    from ..model.deploy import deploy
    from ..model.stats import count_macs
    from ..optional import has
    from ..quality.photos import load_photo

    say = say or (lambda message: None)
    torch.set_num_threads(threads)
    net = deploy(load_model(model), fidelity=True).eval()
    t = tile
    gflop = 2 * count_macs(net, t * net.config.scale, t * net.config.scale) / 1e9
    onnx_path = Path(onnx) if onnx else cached_onnx(model, say=say)
    int8_path = Path(int8) if int8 else None
    if int8_rows and int8_path is None:
        int8_path = kept_int8(onnx_path, say)

    photo = load_photo("astronaut")
    x = np.ascontiguousarray(photo[:t, :t].transpose(2, 0, 1)[None], np.float32)
    with OrtRunner(onnx_path, threads=threads) as ref:
        ctx = ref.context(x)
        expected = ref.infer(x, ctx)

    say("measuring the matmul peak")
    # a bf16 GEMM on a CPU without bf16 units runs emulated, minutes at n=2048 on two
    # cores, and no bf16 row runs there to compare against it: not measured (None)
    peaks = {"f32": matmul_peak(torch.float32, peak_n),
             "bf16": matmul_peak(torch.bfloat16, peak_n) if has_precision("bf16") else None}
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
        row = {"backend": name, "precision": precision, "s_per_tile": seconds,
               "mp_per_s": t * t / 1e6 / seconds, "gflop_per_s": gflop / seconds,
               "psnr_vs_ort_f32": None if mse == 0 else float(10 * np.log10(1 / mse)),
               "psnr_y": None}
        runner = getattr(fn, "runner", None)
        if runner is not None:  # a graph row: its held-out quality, at the same tile
            say(f"held-out PSNR-Y of {name} {precision}")
            row["float_ops"] = float_ops(precision, name)
            row["psnr_y"] = heldout_psnr_y(runner, (t, t), quality_images)
            runner.__exit__(None, None, None)
        rows.append(row)

    xt, ct = torch.from_numpy(x), torch.from_numpy(ctx)

    def torch_eager():
        def run():
            with torch.inference_mode():
                return net(xt, context=ct).numpy()
        return run

    def torch_compiled():
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

            def run():
                return runner.infer(x, ctx)
            run.runner = runner
            return run
        return make

    add("torch eager", torch_eager, "f32")
    if compile:  # --no-compile: no row at all
        add("torch.compile (inductor)", torch_compiled, "f32")
    add("onnxruntime", graph(onnx_path, "onnxruntime", "f32"), "f32")
    add("openvino", graph(onnx_path, "openvino", "f32"), "f32")
    add("openvino", graph(onnx_path, "openvino", "bf16"), "bf16")
    add("onnxruntime", graph(int8_path, "onnxruntime", "int8"), "int8")
    add("openvino", graph(int8_path, "openvino", "int8"), "int8")

    base = next(r for r in rows if r["backend"] == "onnxruntime" and r["precision"] == "f32")
    if "s_per_tile" not in base:
        raise InputError(f"onnxruntime f32, the baseline, did not run: {base['skipped']}")
    base["psnr_vs_ort_f32"] = None  # the baseline itself: printed as -
    for r in rows:
        if "s_per_tile" in r:
            r["vs_ort_f32"] = base["s_per_tile"] / r["s_per_tile"]
            peak = peaks["bf16" if r["precision"] == "bf16" else "f32"]
            r["of_peak"] = r["gflop_per_s"] / peak if peak else None
            r["psnr_y_loss"] = None if r["psnr_y"] is None else base["psnr_y"] - r["psnr_y"]
    graphs = {"f32": onnx_path, "bf16": onnx_path, "int8": int8_path}
    rec = recommend([{"backend": r["backend"], "precision": r["precision"], "speedup": r["vs_ort_f32"],
                      "loss_db": r["psnr_y_loss"]} for r in rows if "s_per_tile" in r])
    rec.update(graph=str(Path(graphs[rec["precision"]]).resolve()), source="bench --compare",
               threads=threads, tile=[t, t])
    kept = save_recommendation(onnx_path, {**rec, "rows": rows})
    return {"cpu": describe_cpu(), "bf16": has_precision("bf16"), "int8": has_precision("int8"),
            "openvino": has("openvino"), "threads": threads, "tile": [t, t],
            "gflop_per_tile": gflop, "peak_gflop_per_s": peaks, "rows": rows,
            "onnx": str(onnx_path), "int8_graph": None if int8_path is None else str(int8_path),
            "model": str(onnx) if onnx else model, "recommendation": rec,
            "recommendation_kept": None if kept is None else str(kept)}


def format_compare(info: dict) -> str:
    """The table :func:`compare_cpu` measured, for a terminal, ending with the
    recommendation and how ``infer`` takes it."""
    from ..engines.choose import describe_recommendation

    t = info["tile"][0]
    peaks = info["peak_gflop_per_s"]
    lines = [f"CPU: {info['cpu']}; {info['threads']} threads; tile {t}x{t}, "
             f"{info['gflop_per_tile']:.1f} GFLOP per tile",
             f"matmul peak here: f32 {peaks['f32']:.0f} GFLOP/s, bf16 "
             + (f"{peaks['bf16']:.0f} GFLOP/s" if peaks["bf16"] else "not measured (no bf16 units)"),
             f"{'backend':<26}{'prec':<6}{'s/tile':>8}{'MP/s':>8}{'x ort f32':>10}{'GFLOP/s':>9}"
             f"{'of peak':>9}{'PSNR vs f32':>13}{'PSNR-Y loss':>13}"]
    for r in info["rows"]:
        if "skipped" in r:
            lines.append(f"{r['backend']:<26}{r['precision']:<6}skipped: {r['skipped']}")
            continue
        baseline = r["backend"] == "onnxruntime" and r["precision"] == "f32"
        vs_f32 = ("-" if baseline else "exact") if r["psnr_vs_ort_f32"] is None else \
            f"{r['psnr_vs_ort_f32']:.1f} dB"
        loss = ("-" if baseline or r["psnr_y_loss"] is None else f"{r['psnr_y_loss']:.3f} dB")
        of_peak = "-" if r["of_peak"] is None else f"{r['of_peak']:.1%}"
        lines.append(f"{r['backend']:<26}{r['precision']:<6}{r['s_per_tile']:8.3f}{r['mp_per_s']:8.3f}"
                     f"{r['vs_ort_f32']:10.2f}{r['gflop_per_s']:9.1f}{of_peak:>9}"
                     f"{vs_f32:>13}{loss:>13}")
    ov_int8 = next((r for r in info["rows"] if r["backend"] == "openvino" and r["precision"] == "int8"
                    and "float_ops" in r), None)
    if ov_int8:
        lines.append(f"openvino int8: the quantized Convs in int8, the unquantized ops (scan, DFT, "
                     f"attention, float islands) in {ov_int8['float_ops']} on this CPU")
    lines.append("PSNR-Y loss: held-out photographs against ground truth, dB below onnxruntime f32")
    if info.get("int8_graph"):
        lines.append(f"INT8 graph: {info['int8_graph']}")
    rec = info["recommendation"]
    for r in rec["left_out"]:
        lines.append(f"not recommended: {r['backend']} {r['precision']} ({r['speedup']:.2f}x), "
                     f"{r['reason']}")
    lines.append(f"recommended on this CPU: {describe_recommendation(rec)}")
    model = info.get("model", "default")
    lines.append(f"use it: hermes-export infer IMAGES -o OUT --model {model} --backend auto "
                 "--precision auto" + ("" if info.get("recommendation_kept") else
                                       " (the cache is read-only: it will measure again)"))
    return "\n".join(lines)
