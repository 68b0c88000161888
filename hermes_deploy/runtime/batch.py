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

from ..atomic import discard, sweep, temp_file, write_text
from ..errors import HermesError, InputError
from ..formats import STREAMING_SUFFIXES as INPUT_SUFFIXES
from .images import OutputError, output_suffix
from .pipeline import restore_file
from .plan import TileOptions, check_options


@dataclass
class ItemResult:
    source: str
    output: str | None
    status: str  # done | skipped | failed
    message: str = ""
    seconds: float = 0.0
    megapixels: float = 0.0  # input megapixels
    tiles: int = 0
    compute_seconds: float = 0.0


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
                "megapixels": round(mp, 4), "wall_seconds": round(self.wall_seconds, 3),
                "megapixels_per_second": round(mp / self.wall_seconds, 4) if self.wall_seconds else 0,
                "items": [asdict(i) for i in self.items]}


def collect_inputs(inputs: list[str]) -> list[Path]:
    """Expand files, folders (their images, sorted) and glob patterns, keeping order."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.iterdir()
                            if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES)
        elif path.exists():
            found.append(path)  # an explicit file is tried whatever its suffix
        elif glob.has_magic(item):
            found += sorted(Path(p) for p in glob.glob(item, recursive=True)
                            if Path(p).is_file() and Path(p).suffix.lower() in INPUT_SUFFIXES)
        else:
            found.append(path)  # reported as missing by the batch
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


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
              max_pixels: int | None = None, say=None, progress_factory=None) -> BatchReport:
    """Restore every input into ``outdir``; see module doc."""
    say = say or (lambda msg: None)
    outdir = Path(outdir)
    sources = collect_inputs(inputs)
    if not sources:
        raise InputError("no input images found; pass image files, folders or glob patterns "
                         f"({', '.join(INPUT_SUFFIXES)})")
    # bad tile settings fail the whole batch at once, not every file in turn
    check_options(runner.spec, options)
    output_suffix(fmt, ".png")  # validate the format early
    stale = sweep(outdir)
    if stale:
        say(f"removed {len(stale)} temporary file(s) left in {outdir} by an interrupted run")
    check_writable(outdir)
    inputs_ids = {fid: p for p in sources if (fid := _file_id(p)) is not None}
    report = BatchReport(backend=getattr(runner, "name", type(runner).__name__))
    start = time.perf_counter()
    claimed: dict[Path, Path] = {}
    for source in sources:
        out = output_for(source, outdir, fmt)
        item = ItemResult(source=str(source), output=str(out), status="done")
        report.items.append(item)
        replaced = inputs_ids.get(_file_id(out)) if out.exists() else None
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
            result = restore_file(runner, source, out, options, max_pixels, progress_factory,
                                  say=say)
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
        item.megapixels = result.size[0] * result.size[1] / 1e6
        item.tiles = result.stats.tiles
        item.compute_seconds = result.stats.compute_seconds
        say(f"done    {source.name} -> {out.name}  {result.size[0]}x{result.size[1]} -> "
            f"{result.out_size[0]}x{result.out_size[1]}, {result.stats.tiles} tiles "
            f"{result.stats.grid[0]}x{result.stats.grid[1]}, {item.seconds:.1f}s")
    report.wall_seconds = time.perf_counter() - start
    return report


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def check_report_path(path: Path) -> None:
    """Refuse a report path that can never be written, before any work is done."""
    if path.is_dir():
        raise InputError(f"--report {path} is a folder; give a file name such as "
                         f"{path / 'hermes-report.json'}")


def write_report(path: Path, data: dict) -> None:
    """Write the JSON run report atomically; a failure is one :class:`OutputError` line."""
    check_report_path(path)
    write_text(path, json.dumps(data, indent=2), what="the run report")


def _named(source: Path, message: str) -> str:
    return message if message.startswith(source.name) else f"{source.name}: {message}"
