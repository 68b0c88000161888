"""Batch driver: many inputs (files, folders, globs) -> one output folder.

- Outputs are named ``<stem><suffix>`` in the output folder; existing outputs are
  skipped unless ``overwrite``, so a killed run resumes where it stopped.
- Every output is written under a temporary name and renamed when complete
  (:class:`~hermes_deploy.runtime.images.ImageSink`): never a partial file.
- Temporaries left by a run that was killed outright (``kill -9``) are removed by the
  next run into the same folder (:func:`hermes_deploy.atomic.sweep`), and it says so;
  those of a concurrent live run are left alone.
- No input is ever replaced: an output whose name is an input file (the same file,
  a link to it, or another input of the same stem under ``--format``) fails that input.
- A failing input is reported in one line and the batch goes on; the report counts
  failures so the caller can exit non-zero.
"""

from __future__ import annotations

import glob
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from ..atomic import discard, sweep, temp_file, write_text
from ..errors import HermesError, InputError
from ..formats import STREAMING_SUFFIXES as INPUT_SUFFIXES
from .images import OutputError, output_suffix
from .pipeline import FileResult, restore_file
from .plan import TileOptions, check_options


@dataclass
class ItemResult:
    source: str
    output: str | None
    status: str  # done | skipped (output exists) | failed | ignored (not an image input)
    message: str = ""
    seconds: float = 0.0
    megapixels: float = 0.0  # input megapixels
    tiles: int = 0
    compute_seconds: float = 0.0
    frames: int = 0  # a video's frames


@dataclass
class BatchReport:
    backend: str
    items: list[ItemResult] = field(default_factory=list)
    wall_seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)

    @property
    def failed(self) -> int:
        return self.count("failed")

    def to_dict(self) -> dict:
        mp = sum(i.megapixels for i in self.items if i.status == "done")
        return {"backend": self.backend, "done": self.count("done"),
                "skipped": self.count("skipped"), "failed": self.failed,
                "ignored": self.count("ignored"),
                "megapixels": round(mp, 4), "wall_seconds": round(self.wall_seconds, 3),
                "megapixels_per_second": round(mp / self.wall_seconds, 4) if self.wall_seconds else 0,
                "items": [asdict(i) for i in self.items]}


@dataclass
class Collected:
    """What a list of inputs expands to: the files to try, and those passed over with why."""
    sources: list[Path]
    ignored: list[tuple[Path, str]]


class OtherMedia(Protocol):
    """Inputs that are not images (video), handled by a layer above this one and given to
    :func:`run_batch` by its caller."""
    suffixes: tuple[str, ...]

    def output_for(self, source: Path, outdir: Path) -> Path: ...

    def restore(self, runner, source: Path, output: Path, options: TileOptions,
                max_pixels: int | None, progress_factory, say) -> FileResult: ...


def collect(inputs: list[str], extra_suffixes: tuple[str, ...] = ()) -> Collected:
    """Expand files, folders (their images, sorted) and glob patterns, keeping order.

    Files inside a folder or matched by a glob that the runtime cannot read, and
    sub-folders of a folder, are not tried: each is listed in ``ignored`` with the
    reason, so the run can say what it passed over instead of skipping it in silence.
    An explicitly named file is always tried (and fails by name if unreadable).
    """
    found: list[Path] = []
    ignored: list[tuple[Path, str]] = []

    def sort_in(candidates) -> None:
        for p in sorted(candidates):
            if p.is_dir():
                ignored.append((p, "a folder; folders are not searched recursively "
                                   "(pass it, or a glob such as 'dir/**/*.png')"))
            elif not p.is_file():
                ignored.append((p, "not a regular file"))
            elif p.suffix.lower() in INPUT_SUFFIXES + extra_suffixes:
                found.append(p)
            else:
                ignored.append((p, f"not an input the runtime reads "
                                   f"({p.suffix.lower() or 'no suffix'}; it reads "
                                   f"{', '.join(INPUT_SUFFIXES + extra_suffixes)})"))

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            sort_in(path.iterdir())
        elif path.exists():
            found.append(path)  # an explicit file is tried whatever its suffix
        elif glob.has_magic(item):
            sort_in(Path(p) for p in glob.glob(item, recursive=True) if not Path(p).is_dir())
        else:
            found.append(path)  # reported as missing by the batch
    return Collected(_unique(found), _unique_pairs(ignored))


def collect_inputs(inputs: list[str]) -> list[Path]:
    """The files :func:`collect` would try, in order."""
    return collect(inputs).sources


def _unique(paths: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    unique = []
    for p in paths:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _unique_pairs(pairs: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    kept = {p: why for p, why in pairs}
    return [(p, kept[p]) for p in _unique([p for p, _ in pairs])]


def ignored_items(collected: Collected) -> list[ItemResult]:
    """Report rows for the files a run passed over (status ``ignored``)."""
    return [ItemResult(source=str(p), output=None, status="ignored", message=f"{p.name}: {why}")
            for p, why in collected.ignored]


def no_inputs_error(collected: Collected) -> InputError:
    passed_over = ""
    if collected.ignored:
        names = ", ".join(p.name for p, _ in collected.ignored[:5])
        more = f" and {len(collected.ignored) - 5} more" if len(collected.ignored) > 5 else ""
        passed_over = f" ({len(collected.ignored)} other file(s) passed over: {names}{more})"
    return InputError(f"no input images found{passed_over}; pass image files, folders or glob "
                      f"patterns ({', '.join(INPUT_SUFFIXES)})")


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        discard(temp_file(folder / "probe"))
    except OSError as exc:
        raise OutputError(f"cannot write to output folder '{folder}' ({exc.strerror or exc}); "
                          "choose a writable folder with -o") from None


def output_for(source: Path, outdir: Path, fmt: str) -> Path:
    return outdir / (source.stem + output_suffix(fmt, source.suffix))


def run_batch(runner, inputs: list[str], outdir: str | os.PathLike,
              options: TileOptions = TileOptions(), fmt: str = "auto", overwrite: bool = False,
              max_pixels: int | None = None, say=None, progress_factory=None,
              media: OtherMedia | None = None) -> BatchReport:
    """Restore every input into ``outdir``; see module doc. ``media`` takes the inputs
    of its suffixes (videos) instead of the image path."""
    say = say or (lambda msg: None)
    outdir = Path(outdir)
    collected = collect(inputs, media.suffixes if media is not None else ())
    sources = collected.sources
    if not sources:
        raise no_inputs_error(collected)
    # bad tile settings fail the whole batch at once, not every file in turn
    check_options(runner.spec, options)
    output_suffix(fmt, ".png")  # validate the format early
    stale = sweep(outdir)
    if stale:
        say(f"removed {len(stale)} temporary file(s) left in {outdir} by an interrupted run")
    check_writable(outdir)
    inputs_ids = {fid: p for p in sources if (fid := file_id(p)) is not None}
    report = BatchReport(backend=getattr(runner, "name", type(runner).__name__))
    for item in ignored_items(collected):
        report.items.append(item)
        say(f"ignored {item.message}")
    start = time.perf_counter()
    claimed: dict[Path, Path] = {}
    for source in sources:
        other = media if media is not None and source.suffix.lower() in media.suffixes else None
        out = other.output_for(source, outdir) if other else output_for(source, outdir, fmt)
        item = ItemResult(source=str(source), output=str(out), status="done")
        report.items.append(item)
        replaced = inputs_ids.get(file_id(out)) if out.exists() else None
        if replaced is not None:
            item.status = "failed"
            item.message = (f"{source.name}: the output would replace the input "
                            + ("itself" if replaced == source else f"{replaced.name}")
                            + "; choose another folder with -o")
            say(f"failed  {item.message}")
            continue
        if out in claimed:
            item.status, item.message = "failed", (f"{source.name}: output {out.name} is already "
                                                   f"produced by {claimed[out].name}; rename one")
            say(f"failed  {item.message}")
            continue
        claimed[out] = source
        if out.exists() and not overwrite:
            item.status, item.message = "skipped", "output exists (use --overwrite to redo)"
            say(f"skipped {source.name}: {out.name} exists (use --overwrite to redo)")
            continue
        t0 = time.perf_counter()
        try:
            if other is not None:
                result = other.restore(runner, source, out, options, max_pixels,
                                       progress_factory, say)
            else:
                result = restore_file(runner, source, out, options, max_pixels,
                                      progress_factory, say=say)
        except HermesError as exc:
            item.status, item.message = "failed", _named(source, str(exc))
            say(f"failed  {item.message}")
            continue
        except MemoryError:
            item.status = "failed"
            item.message = f"{source.name}: out of memory; lower --tile or --batch"
            say(f"failed  {item.message}")
            continue
        item.seconds = time.perf_counter() - t0
        item.megapixels = result.stats.pixels / 1e6  # a video's: every frame done this run
        item.tiles = result.stats.tiles
        item.compute_seconds = result.stats.compute_seconds
        item.frames = result.frames
        say(f"done    {source.name} -> {out.name}  {result.size[0]}x{result.size[1]} -> "
            f"{result.out_size[0]}x{result.out_size[1]}, "
            + (f"{result.note}, " if result.note else
               f"{result.stats.tiles} tiles {result.stats.grid[0]}x{result.stats.grid[1]}, ")
            + f"{item.seconds:.1f}s")
    report.wall_seconds = time.perf_counter() - start
    return report


def file_id(path) -> tuple[int, int] | None:
    """(device, inode) of ``path``, or None where it cannot be read: one file under any name."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


REPORT_FORMAT = "hermes-report/2"


def check_report_path(path: Path) -> dict | None:
    """Refuse a report path that can never be written, before any work is done.

    Returns the report already at ``path`` (which the new run's figures are merged
    into), or None. A file there that is not a hermes-deploy run report is refused
    rather than overwritten.
    """
    if path.is_dir():
        raise InputError(f"--report {path} is a folder; give a file name such as "
                         f"{path / 'hermes-report.json'}")
    if not path.exists():
        return None
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problem = getattr(exc, "strerror", None) or "not JSON"
        previous, why = None, problem
    else:
        why = "not a hermes-deploy run report"
    if not (isinstance(previous, dict) and isinstance(previous.get("items"), list)
            and "backend" in previous):
        raise InputError(f"report file {path} exists and cannot be extended ({why}); "
                         "pass another --report file or remove it")
    return previous


def merge_report(previous: dict | None, current: dict) -> dict:
    """The report of this run, with the figures of earlier runs into the same file kept.

    Top-level counts and ``items`` are this run's. ``runs`` lists every run's summary;
    ``inputs`` holds one row per input over all runs: the newest, except that a row
    skipped because its output exists never hides the earlier run that made it (so a
    resumed batch keeps the figures of the files it did not redo).
    """
    summary_keys = ("backend", "done", "skipped", "failed", "ignored", "megapixels",
                    "wall_seconds", "megapixels_per_second")
    this_run = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **{k: current.get(k) for k in summary_keys if k in current}}
    runs: list[dict] = []
    inputs: dict[str, dict] = {}
    if previous is not None:
        if previous.get("format") == REPORT_FORMAT:
            runs = list(previous.get("runs", []))
            earlier = previous.get("inputs", [])
        else:  # a report of the first format: one earlier run
            runs = [{k: previous.get(k) for k in summary_keys if k in previous}]
            earlier = previous.get("items", [])
        inputs = {row["source"]: row for row in earlier
                  if isinstance(row, dict) and "source" in row}
    run_index = len(runs)
    for row in current.get("items", []):
        old = inputs.get(row["source"])
        if (row.get("status") == "skipped" and old is not None and old.get("status") == "done"
                and old.get("output") == row.get("output")):
            continue
        inputs[row["source"]] = {**row, "run": run_index}
    rows = list(inputs.values())
    totals = {status: sum(1 for r in rows if r.get("status") == status)
              for status in ("done", "skipped", "failed", "ignored")}
    return {"format": REPORT_FORMAT, **current, "runs": runs + [this_run],
            "inputs": rows, "totals": totals}


def write_report(path: Path, data: dict, previous: dict | None = None) -> dict:
    """Write the JSON run report atomically, merged with ``previous`` (see
    :func:`merge_report`); a failure is one :class:`OutputError` line. Returns what
    was written."""
    if path.is_dir():
        check_report_path(path)
    merged = merge_report(previous, data)
    write_text(path, json.dumps(merged, indent=2), what="the run report")
    return merged


def _named(source: Path, message: str) -> str:
    return message if message.startswith(source.name) else f"{source.name}: {message}"
