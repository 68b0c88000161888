"""The folder batch on a Ray cluster: Ray Data with an actor pool of runners.

:func:`run_ray_batch` is ``hermes-export infer`` for libraries too large for one
machine (``infer --ray [ADDRESS]``). The pipeline is

    the file list (paths only) -> ``map_batches(RestoreActor, ActorPoolStrategy(size=N))``
    -> one result row per file -> a :class:`~hermes_deploy.runtime.batch.BatchReport`

- **The dataset holds paths, never pixels.** Each actor opens the file itself and runs
  it through the streaming runtime (:func:`~hermes_deploy.runtime.pipeline.restore_file`:
  rows decoded in order, tiles, blended rows encoded straight to disk), so an image of
  any size costs an actor one band of rows and nothing enters Ray's object store but
  a path and a result line.
- **One loaded model per actor**, opened once in the actor's constructor; the backend
  and the graph are resolved once on the driver (an ``auto`` choice or a bundled
  model's ONNX export are not redone, or raced, by every actor). Each actor gets
  ``num_gpus`` when the cluster has GPUs and ``threads`` intra-op threads (default:
  the cluster's CPUs divided by the actors, so actors do not oversubscribe cores).
- **The local batch's rules, by calling the local batch.** Every file is restored by
  :func:`hermes_deploy.runtime.batch.run_batch` inside the actor: an existing output is
  skipped (rerun = resume), every output is written under a temporary name and
  renamed when complete, an output that would replace an input fails, one failing file
  is one ``failed`` item and the job goes on. Inputs that would produce the same output
  name go to the same call, so its duplicate check sees them together.
- **Actor deaths are retried by Ray**: Ray Data gives actor-pool actors
  ``max_restarts=-1`` and ``max_task_retries=-1`` (its defaults, read in Ray 2.60's
  ``actor_pool_map_operator.py``; passing them again is deprecated), so a dead actor is
  restarted and its unfinished calls run again. A killed actor can
  leave only temporaries, never a partial output under the final name; the retry, or
  the driver at the end, removes them (:func:`hermes_deploy.atomic.sweep`: temporaries
  of dead processes only).
- On a multi-node cluster, inputs, output folder and model file must be at the same
  path on every node (a shared file system), as with any Ray file pipeline.

After Ray Data's batch-inference pattern (a callable class whose constructor loads the
model, run with ``map_batches`` over an actor pool).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Iterator

from ..atomic import sweep
from ..engines.select import cached_onnx, open_runner
from ..errors import HermesError, InputError
from ..optional import require
from ..runtime.batch import (BatchReport, ItemResult, check_writable, collect, file_id,
                             ignored_items, no_inputs_error, output_for, run_batch)
from ..runtime.images import output_suffix
from ..runtime.plan import TileOptions, check_options

__all__ = ["RestoreActor", "RayPlan", "plan_job", "run_ray_batch"]

PURPOSE = "Batch inference on a Ray cluster (hermes-export infer --ray)"
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
_ITEM_FIELDS = {f.name for f in fields(ItemResult)}


class RestoreActor:
    """One Ray actor: one loaded runner; ``__call__`` restores a batch of file groups.

    Each row of the batch is a JSON list of input paths that share one output name
    (normally one path). The result row holds the group's items (``ItemResult`` as
    JSON) and the lines the batch said, in order.
    """

    def __init__(self, model: str, backend: str, threads: int, precision: str | None,
                 outdir: str, options: TileOptions, fmt: str, overwrite: bool,
                 max_pixels: int | None) -> None:
        self.runner, _ = open_runner(model, backend, threads=threads, precision=precision)
        self.runner.__enter__()
        self.outdir, self.options, self.fmt = outdir, options, fmt
        self.overwrite, self.max_pixels = overwrite, max_pixels

    def __call__(self, batch: dict) -> dict:
        items, logs = [], []
        for group in batch["group"]:
            sources = json.loads(str(group))
            lines: list[str] = []
            try:
                report = run_batch(self.runner, sources, self.outdir, self.options, fmt=self.fmt,
                                   overwrite=self.overwrite, max_pixels=self.max_pixels,
                                   say=lines.append)
                done = [asdict(i) for i in report.items]
            except HermesError as exc:  # the folder or settings, for this group only
                done = [asdict(ItemResult(source=s, output=None, status="failed",
                                          message=f"{Path(s).name}: {exc}")) for s in sources]
                lines += [f"failed  {d['message']}" for d in done]
            items.append(json.dumps(done))
            logs.append(json.dumps(lines))
        return {"group": batch["group"], "items": items, "logs": logs}


class RayPlan:
    """What the driver resolved before any actor starts (see :func:`plan_job`)."""

    def __init__(self, model: str, backend: str, runner_name: str, groups: list[list[str]],
                 ignored: list[ItemResult] | None = None) -> None:
        self.ignored = ignored or []  # files of a folder or glob that are not image inputs
        self.model = model  # the artifact every actor opens (an absolute path, or a name for torch)
        self.backend = backend  # onnxruntime | openvino | torch | tensorrt
        self.runner_name = runner_name
        self.groups = groups  # absolute input paths, grouped by output name, in input order


def plan_job(inputs: list[str], outdir: str | os.PathLike, model: str = "default",
             backend: str = "auto", options: TileOptions = TileOptions(), fmt: str = "auto",
             precision: str | None = None, say=None) -> RayPlan:
    """Resolve the model, backend and file groups once, on the driver; refuse bad settings
    (model, backend, precision, tile options, output folder, format) before Ray starts."""
    collected = collect(list(inputs))
    sources = collected.sources
    if not sources:
        raise no_inputs_error(collected)
    output_suffix(fmt, ".png")
    outdir = Path(outdir)
    runner, _ = open_runner(model, backend, threads=1, precision=precision, say=say)
    with runner:
        check_options(runner.spec, options)
        name = runner.name
    suffix = Path(model).suffix.lower()
    if suffix in ENGINE_SUFFIXES:
        key, artifact = "tensorrt", os.path.abspath(model)
    else:
        key = name.split()[0]
        if suffix == ".onnx":
            artifact = os.path.abspath(model)
        elif key == "torch":
            artifact = os.path.abspath(model) if Path(model).is_file() else model
        else:
            artifact = str(cached_onnx(model).resolve())
    check_writable(outdir)
    groups: dict[Path, list[str]] = {}
    for source in sources:
        groups.setdefault(output_for(source, outdir, fmt), []).append(os.path.abspath(source))
    return RayPlan(artifact, key, name, list(groups.values()), ignored_items(collected))


def _resources(ray, actors: int, threads: int, gpus: float | None) -> tuple[int, float, float]:
    """(threads per actor, CPUs reserved per actor, GPUs per actor)."""
    have = ray.cluster_resources()
    cpus = float(have.get("CPU", 1.0))
    per_actor = cpus / actors
    threads = threads or max(1, int(per_actor))
    num_cpus = min(float(threads), per_actor)
    if gpus is None:
        gpus = min(1.0, float(have.get("GPU", 0.0)) / actors)
    return threads, num_cpus, float(gpus)


def run_ray_batch(inputs: list[str], outdir: str | os.PathLike, model: str = "default",
                  backend: str = "auto", options: TileOptions = TileOptions(), fmt: str = "auto",
                  overwrite: bool = False, max_pixels: int | None = None,
                  precision: str | None = None, threads: int = 0, actors: int = 2,
                  address: str | None = None, gpus: float | None = None, say=None,
                  progress: bool = False) -> BatchReport:
    """Restore every input into ``outdir`` on a Ray cluster; see module doc.

    ``address`` is a running cluster (``ray://host:10001``, ``host:6379`` or ``auto``);
    None or ``"local"`` starts a local one for this call (or uses the one this process
    already joined). ``actors`` runners work at once; ``threads`` is each one's intra-op thread
    count (0: the cluster's CPUs / ``actors``); ``gpus`` per actor (None: 1 when the
    cluster has a GPU per actor, else what there is, 0 without GPUs). The report has the
    local batch's shape, its items in input order.
    """
    say = say or (lambda msg: None)
    if actors < 1:
        raise InputError(f"--actors must be >= 1, got {actors}")
    ray = require("ray", extra="ray", purpose=PURPOSE)
    require("ray.data", extra="ray", purpose=PURPOSE)
    plan = plan_job(inputs, outdir, model, backend, options, fmt, precision, say=say)
    for item in plan.ignored:
        say(f"ignored {item.message}")
    results = {} if overwrite else skipped_on_driver(plan.groups, Path(outdir), fmt, say)
    todo = [i for i in range(len(plan.groups)) if i not in results]
    wall = 0.0
    actors = min(actors, max(1, len(todo)))  # an actor beyond the files would only idle
    if todo:  # a cluster (or a local one's start: seconds) only for files with work to do
        settings = dict(precision=precision, outdir=os.path.abspath(outdir), options=options,
                        fmt=fmt, overwrite=overwrite, max_pixels=max_pixels)
        wall = _run_on_ray(ray, plan, todo, results, settings, threads=threads, actors=actors,
                           address=address, gpus=gpus, say=say, progress=progress)
    stale = sweep(Path(outdir))  # left by actors killed mid-file (their retries redid the file)
    if stale:
        say(f"removed {len(stale)} temporary file(s) left by actors that were killed")
    report = BatchReport(backend=f"{plan.runner_name} x{actors} Ray actors")
    lost = [ItemResult(source=s, output=None, status="failed",
                       message=f"{Path(s).name}: no result came back from the Ray cluster")
            for i, g in enumerate(plan.groups) if i not in results for s in g]
    report.items = (plan.ignored + [item for i in range(len(plan.groups))
                                    for item in results.get(i, [])] + lost)
    report.wall_seconds = wall
    return report


def skipped_on_driver(groups: list[list[str]], outdir: Path, fmt: str, say) -> dict[int, list[ItemResult]]:
    """The local batch's skip rule, applied before Ray starts: a file whose output exists
    is skipped with the local batch's message. Left to the actors: groups sharing an
    output name and outputs that are an input file (they fail there, as locally)."""
    inputs = {file_id(source) for group in groups for source in group} - {None}
    skipped = {}
    for i, group in enumerate(groups):
        out = output_for(Path(group[0]), outdir, fmt)
        if len(group) != 1 or not os.path.isfile(group[0]) or not out.is_file() \
                or file_id(out) in inputs:
            continue
        name = Path(group[0]).name
        say(f"skipped {name}: {out.name} exists (use --overwrite to redo)")
        skipped[i] = [ItemResult(source=group[0], output=str(out), status="skipped",
                                 message="output exists (use --overwrite to redo)")]
    return skipped


@contextlib.contextmanager
def _quiet_ray_start() -> Iterator[None]:
    """Start Ray without its own messages on this command's stderr (they stay in the
    session's log files): the token-auth notice and the core worker's notice about
    actor constructor arguments, both error-free, would come with every run. The core
    worker reads RAY_BACKEND_LOG_LEVEL at ``ray.init`` (a value the user set wins) and
    says so on file descriptor 2 from C++, which is held in a file during the start and
    shown only if the start fails."""
    ours = "RAY_BACKEND_LOG_LEVEL" not in os.environ
    if ours:
        os.environ["RAY_BACKEND_LOG_LEVEL"] = "fatal"
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if ours:  # read once, at the start; later ray.init calls of a caller get Ray's default
                os.environ.pop("RAY_BACKEND_LOG_LEVEL", None)


def _run_on_ray(ray, plan: RayPlan, todo: list[int], results: dict[int, list[ItemResult]],
                settings: dict, *, threads: int, actors: int, address: str | None,
                gpus: float | None, say, progress: bool) -> float:
    """Restore ``plan.groups[i]`` for ``i`` in ``todo`` on the actor pool into ``results``
    (``settings``: the actors' batch settings); returns the wall time in seconds."""
    started = not ray.is_initialized()
    if started:
        with _quiet_ray_start():
            ray.init(address=None if address in (None, "", "local") else address,
                     include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        import ray.data

        for handler in logging.getLogger("ray.data").handlers:  # the console, not the log file
            if not isinstance(handler, logging.FileHandler) and "File" not in type(handler).__name__:
                handler.setLevel(logging.ERROR)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        threads, num_cpus, num_gpus = _resources(ray, actors, threads, gpus)
        say(f"Ray: {actors} actor(s), {threads} thread(s) and {num_cpus:g} CPU(s)"
            + (f", {num_gpus:g} GPU(s)" if num_gpus else "") + f" each; {plan.runner_name}")
        start = time.perf_counter()
        groups = [plan.groups[i] for i in todo]
        rows = [{"group": json.dumps(g)} for g in groups]
        blocks = min(len(rows), max(8 * actors, -(-len(rows) // 64)))
        ds = ray.data.from_items(rows, override_num_blocks=blocks)
        ds = ds.map_batches(
            RestoreActor, batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            fn_constructor_kwargs=dict(model=plan.model, backend=plan.backend, threads=threads,
                                       **settings),
            num_cpus=num_cpus, num_gpus=num_gpus or None)
        order = {json.dumps(g): i for g, i in zip(groups, todo)}
        for row in ds.iter_rows():
            for line in json.loads(row["logs"]):
                say(line)
            results[order[str(row["group"])]] = [
                ItemResult(**{k: v for k, v in d.items() if k in _ITEM_FIELDS})
                for d in json.loads(row["items"])]
        return time.perf_counter() - start
    finally:
        if started:
            ray.shutdown()
