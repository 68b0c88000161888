"""``--backend auto`` on a CPU: measure which graph backend is faster, once per graph.

Which of onnxruntime and OpenVINO runs a HERMES graph faster depends on the CPU: on a
Xeon with AMX OpenVINO f32 measured 1.46x onnxruntime, on an AVX-512 AMD EPYC at two
threads 0.96x (BENCHMARKS.md). So ``auto`` does not trust a fixed order: the first time a
graph runs at a given precision and thread count on a machine, both backends run the
same random tile (the graph's fixed tile, else 256x256; one warm-up, then the best of
two), the faster one is used, and the measurement is kept in the cache folder
(``choices/``, keyed by CPU, graph sha256, precision and threads) so later runs reuse it.
The reason printed names both timings.

``--precision auto`` goes one step further and picks the precision too: the
*recommendation* for a graph on this CPU is the fastest of onnxruntime/OpenVINO at f32,
OpenVINO at bf16 (where the CPU has bf16 units) and int8 (where an INT8 graph of this
graph is kept, :func:`kept_int8_path`) whose loss of PSNR-Y against ground truth on the
held-out photographs, against onnxruntime f32, is at most :data:`LOSS_BUDGET_DB`
(0.05 dB: the bound the docs judge precisions by; int8 with default calibration lost
0.13-0.25 dB and is refused by it, with its sensitivity islands 0.011-0.019 dB and
passes). ``hermes-export bench --compare`` measures it on its table and keeps it
(``choices/recommended-*.json``, keyed by CPU and graph sha256); ``infer --precision
auto`` takes the kept one, or measures once (the tiled runtime on the held-out photos)
when none is kept. The quality half runs the same harness as ``hermes-export eval``
(:mod:`hermes_deploy.quality.harness`), through the tiled runtime at the probe tile.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..cache import cache_dir
from ..cpu import cpu_flags, cpu_name
from ..errors import HermesError, InputError
from .precision import describe_precision

BACKENDS = ("onnxruntime", "openvino")
PROBE_TILE = (256, 256)
LOSS_BUDGET_DB = 0.05  # held-out PSNR-Y a precision may lose against onnxruntime f32


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _machine() -> str:
    return f"{cpu_name()}|{','.join(sorted(cpu_flags()))}"


def _key(path: Path, precision: str | None, threads: int) -> str:
    key = f"{_machine()}|{_digest(path)}|{precision}|{threads}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def choice_path(path: Path, precision: str | None, threads: int) -> Path:
    """Where the measured choice for this graph, precision and thread count is kept."""
    return cache_dir() / "choices" / f"{_key(path, precision, threads)}.json"


def _seconds(runner, repeats: int = 2, tile: tuple[int, int] | None = None) -> float:
    s = runner.spec
    h, w = s.tile or tile or PROBE_TILE
    x = np.random.default_rng(0).random((s.batch or 1, s.in_channels, h, w), dtype=np.float32)
    ctx = runner.context(x)
    runner.infer(x, ctx)  # warm-up (first-call allocations, kernel selection)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        runner.infer(x, ctx)
        best = min(best, time.perf_counter() - start)
    return best


def _describe(record: dict, cached: bool) -> str:
    t = record["seconds"]
    tile = "x".join(map(str, record["tile"]))
    return (f"measured faster on this CPU: onnxruntime {t['onnxruntime']:.3f} s, OpenVINO "
            f"{t['openvino']:.3f} s per {tile} tile" + ("; cached" if cached else ""))


def measured_choice(path: str | Path, open_backend, threads: int, precision: str | None, say=None):
    """``(runner, why)``: the faster of onnxruntime and OpenVINO for ``path`` here.

    ``open_backend(name)`` opens the runner of one backend. A kept measurement is reused;
    otherwise both are measured now and the result is kept (a read-only cache only
    costs the measurement next time).
    """
    path = Path(path)
    record_path = choice_path(path, precision, threads)
    try:
        record = json.loads(record_path.read_text())
        if record.get("choice") in BACKENDS:
            return open_backend(record["choice"]), _describe(record, cached=True)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no measurement yet (or a damaged one): measure
    if say:
        say("measuring onnxruntime and OpenVINO on this CPU (once per graph; kept in the cache)")
    runners, refused = {}, {}
    for name in BACKENDS:
        try:
            runners[name] = open_backend(name)
        except HermesError as exc:  # e.g. OpenVINO int8 on a CPU without VNNI
            refused[name] = str(exc)
    if not runners:
        raise InputError("; ".join(f"{name}: {reason}" for name, reason in refused.items()))
    if refused:
        name, reason = next(iter(refused.items()))
        (only,) = runners
        return runners[only], f"{name} cannot run it here ({reason})"
    seconds = {name: _seconds(runner) for name, runner in runners.items()}
    choice = min(seconds, key=seconds.get)
    record = {"choice": choice, "seconds": seconds, "tile": list(runners[choice].spec.tile or PROBE_TILE),
              "cpu": cpu_name(), "graph": path.name, "precision": precision, "threads": threads}
    for name, runner in runners.items():
        if name != choice:
            runner.__exit__(None, None, None)
    try:
        with atomic_path(record_path) as tmp:
            tmp.write_text(json.dumps(record, indent=2))
    except OSError:
        pass
    return runners[choice], _describe(record, cached=False)


# ------------------------------------------------------------------ --precision auto


def kept_int8_path(path: str | Path) -> Path:
    """Where the INT8 graph calibrated from the FP32 graph ``path`` is kept (its context
    graph and ranges beside it), keyed by the FP32 graph's sha256."""
    path = Path(path)
    return cache_dir() / "int8" / f"{path.stem}-{_digest(path)[:16]}.int8.onnx"


def recommendation_path(path: str | Path) -> Path:
    """Where the recommendation for the FP32 graph ``path`` on this CPU is kept."""
    key = hashlib.sha256(f"{_machine()}|{_digest(Path(path))}".encode()).hexdigest()[:16]
    return cache_dir() / "choices" / f"recommended-{key}.json"


def recommend(rows: list[dict], budget_db: float = LOSS_BUDGET_DB) -> dict:
    """The fastest of ``rows`` (``backend``, ``precision``, ``speedup`` against
    onnxruntime f32, ``loss_db`` of held-out PSNR-Y; None = not measured, never chosen)
    whose loss is within ``budget_db``, with the faster rows it left out and why."""
    measured = [r for r in rows if r.get("loss_db") is not None and r.get("speedup")]
    passing = [r for r in measured if r["loss_db"] <= budget_db]
    if not passing:
        raise InputError("no backend and precision measured here stays within the "
                         f"{budget_db} dB PSNR-Y budget; run with --precision f32")
    best = max(passing, key=lambda r: r["speedup"])
    left_out = [{"backend": r["backend"], "precision": r["precision"], "speedup": r["speedup"],
                 "loss_db": r["loss_db"],
                 "reason": f"held-out PSNR-Y loss {r['loss_db']:.3f} dB > {budget_db} dB"}
                for r in measured if r["loss_db"] > budget_db and r["speedup"] > best["speedup"]]
    return {"backend": best["backend"], "precision": best["precision"], "speedup": best["speedup"],
            "loss_db": best["loss_db"], "budget_db": budget_db, "left_out": left_out}


def describe_recommendation(record: dict) -> str:
    """``openvino bf16: 2.10x onnxruntime f32, held-out PSNR-Y loss 0.007 dB (<= 0.05 dB)``."""
    return (f"{record['backend']} {describe_precision(record['precision'], record['backend'])}: "
            f"{record['speedup']:.2f}x onnxruntime f32, held-out PSNR-Y loss "
            f"{max(record['loss_db'], 0.0):.3f} dB (<= {record['budget_db']} dB)")


def save_recommendation(path: str | Path, record: dict) -> Path | None:
    """Keep ``record`` for the FP32 graph ``path`` on this CPU; None if the cache is
    read-only (the next run measures again)."""
    target = recommendation_path(path)
    record = {**record, "cpu": cpu_name()}
    try:
        with atomic_path(target) as tmp:
            tmp.write_text(json.dumps(record, indent=2))
    except OSError:
        return None
    return target


def load_recommendation(path: str | Path) -> dict | None:
    """The kept recommendation for ``path`` here, or None (none, damaged, or its graph gone)."""
    try:
        record = json.loads(recommendation_path(path).read_text())
        if record["backend"] not in BACKENDS or not Path(record["graph"]).is_file():
            return None
        float(record["speedup"]), float(record["loss_db"]), float(record["budget_db"])
        return record
    except (OSError, ValueError, KeyError, TypeError):
        return None


def heldout_psnr_y(runner, tile: tuple[int, int], images=None) -> float:
    """Mean PSNR-Y against ground truth of ``runner`` through the tiled runtime at
    ``tile`` on ``images`` (default: the held-out photographs), as ``eval`` scores."""
    from ..quality.degrade import Degradation
    from ..quality.harness import evaluate
    from ..quality.photos import load_images
    from ..runtime.pipeline import restore_array
    from ..runtime.plan import TileOptions

    scale = runner.spec.scale
    degradation = Degradation.sr(scale) if scale > 1 else Degradation.denoise(15 / 255)
    options = TileOptions(tile=tuple(tile))
    report = evaluate(lambda lq: restore_array(runner, lq, options)[0], load_images(images),
                      degradation)
    return report.mean("psnr")


def _candidates(path: Path) -> list[tuple[str, str, Path]]:
    """(backend, precision, graph) worth measuring for the FP32 graph ``path`` here."""
    from ..cpu import has_precision
    from ..optional import has

    found = [("onnxruntime", "f32", path)] if has("onnxruntime") else []
    if has("openvino"):
        found.append(("openvino", "f32", path))
        if has_precision("bf16"):
            found.append(("openvino", "bf16", path))
    int8 = kept_int8_path(path)
    if int8.is_file():
        if has("onnxruntime"):
            found.append(("onnxruntime", "int8", int8))
        if has("openvino") and has_precision("int8"):
            found.append(("openvino", "int8", int8))
    return found


def measure_recommendation(path: str | Path, open_backend, threads: int, say=None,
                           tile: tuple[int, int] | None = None, images=None) -> dict:
    """Measure every candidate (speed on one tile, held-out PSNR-Y loss), keep and return
    the recommendation record. ``open_backend(backend, precision, graph)`` opens a runner."""
    path = Path(path)
    tile = tuple(tile or PROBE_TILE)
    rows = []
    for backend, precision, graph in _candidates(path):
        if say:
            say(f"measuring {backend} {describe_precision(precision, backend)}: speed and "
                "held-out PSNR-Y")
        try:
            runner = open_backend(backend, precision, graph)
        except HermesError:
            continue  # cannot run here: not a candidate
        with runner:
            rows.append({"backend": backend, "precision": precision, "graph": str(graph),
                         "seconds": _seconds(runner, tile=tile),
                         "psnr_y": heldout_psnr_y(runner, runner.spec.tile or tile, images)})
    if not rows:
        raise InputError("neither onnxruntime nor OpenVINO can run this graph here; "
                         "pip install 'hermes-deploy[openvino]'")
    base = rows[0]  # onnxruntime f32 where installed, else OpenVINO f32
    for r in rows:
        r["speedup"] = base["seconds"] / r["seconds"]
        r["loss_db"] = base["psnr_y"] - r["psnr_y"]
    record = recommend(rows)
    chosen = next(r for r in rows if (r["backend"], r["precision"]) == (record["backend"], record["precision"]))
    record.update(graph=chosen["graph"], source="measured by infer --precision auto",
                  threads=threads, tile=list(tile), rows=rows)
    save_recommendation(path, record)
    return record


def recommended_runner(path: str | Path, open_backend, threads: int, say=None,
                       tile: tuple[int, int] | None = None, images=None):
    """``(runner, why)`` for ``--precision auto``: the kept recommendation for the FP32
    graph ``path`` on this CPU, or one measured now and kept (see the module doc)."""
    record = load_recommendation(path)
    kept = record is not None
    if not kept:
        if say:
            say("measuring backends and precisions on this CPU for --precision auto (once per "
                "graph; kept in the cache; bench --compare measures the same with its table)")
        record = measure_recommendation(path, open_backend, threads, say, tile, images)
    runner = open_backend(record["backend"], record["precision"], Path(record["graph"]))
    source = record.get("source", "bench --compare")
    how = f"recommended by {source} on this CPU, kept" if kept else "measured now, kept for next runs"
    return runner, f"--precision auto: {describe_recommendation(record)}; {how}"
