"""``--backend auto`` on a CPU: measure which graph backend is faster, once per graph.

Which of onnxruntime and OpenVINO runs a HERMES graph faster depends on the CPU: on a
Xeon with AMX OpenVINO f32 measured 1.46x onnxruntime, on an AVX-512 AMD EPYC at two
threads 0.96x (BENCHMARKS.md). So ``auto`` does not trust a fixed order: the first time a
graph runs at a given precision and thread count on a machine, both backends run the
same random tile (the graph's fixed tile, else 256x256; one warm-up, then the best of
two), the faster one is used, and the measurement is kept in the cache folder
(``choices/``, keyed by CPU, graph sha256, precision and threads) so later runs reuse it.
The reason printed names both timings.
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

BACKENDS = ("onnxruntime", "openvino")
PROBE_TILE = (256, 256)


def _key(path: Path, precision: str | None, threads: int) -> str:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    machine = f"{cpu_name()}|{','.join(sorted(cpu_flags()))}"
    return hashlib.sha256(f"{machine}|{digest}|{precision}|{threads}".encode()).hexdigest()[:16]


def choice_path(path: Path, precision: str | None, threads: int) -> Path:
    """Where the measured choice for this graph, precision and thread count is kept."""
    return cache_dir() / "choices" / f"{_key(path, precision, threads)}.json"


def _seconds(runner, repeats: int = 2) -> float:
    s = runner.spec
    h, w = s.tile or PROBE_TILE
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
