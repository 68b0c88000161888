"""Tiled inference over one image: plan, read, infer, blend, write - in three threads.

A reader thread decodes rows and cuts batches of same-shape tiles, the calling thread
runs the backend (onnxruntime and torch release the GIL while they compute), and a
writer thread blends finished rows and encodes them. Queues between them are short, so
at most a few batches are in flight and memory stays flat. The per-image context is
computed once (on the whole image, or a downscaled copy of a large one) and fed to
every tile, so all tiles of an image route through the experts the same way.

Torch-free: it sees only the runner interface (:mod:`.runner`).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .. import faults
from ..errors import InputError
from ..tile_grid import round_up
from .images import to_float_rgb
from .workers import END, Worker, feed, get, join_all, put
from .stitch import SampleFormat, stitched
from .plan import DEFAULT_TILE, TileOptions, TilePlan, make_plan, pad_to

__all__ = ["DEFAULT_TILE", "FileResult", "RunStats", "TileOptions", "fill", "restore_array", "restore_file",
           "run_tiled"]

READ_ROWS = 32  # input rows asked of read_rows at a time



@dataclass
class RunStats:
    tiles: int = 0
    pixels: int = 0  # input pixels of the image(s)
    compute_seconds: float = 0.0  # time inside the backend's infer()
    context_seconds: float = 0.0
    wall_seconds: float = 0.0
    grid: tuple[int, int] = (0, 0)
    tile: tuple[int, int] = (0, 0)
    overlap: int = 0

    @property
    def megapixels_per_second(self) -> float:
        return self.pixels / 1e6 / self.wall_seconds if self.wall_seconds else 0.0



def _batches(plan: TilePlan, read_rows: Callable[[int, int], np.ndarray], batch: int,
             fixed_batch: int | None) -> Iterator[tuple[list[tuple[int, int]], np.ndarray]]:
    """Yield (indices, NCHW float32 tiles); rows are read once, in order, and kept in
    their stored sample type until a tile is cut (a band costs 1-2 bytes per sample).

    The band of one tile row lives in one buffer: moving to the next tile row shifts
    the overlapping rows up in place and reads the new ones in after them."""
    band = None  # rows [band_y, band_y + filled) of the image, in the buffer's first rows
    band_y = filled = 0
    pending_idx: list[tuple[int, int]] = []
    pending: list[np.ndarray] = []
    size = fixed_batch or batch
    for r, y in enumerate(plan.ys):
        end = min(plan.height, y + plan.tile_h)
        keep = max(0, band_y + filled - y)
        if band is not None and keep:
            band[:keep] = band[y - band_y:y - band_y + keep]
        band_y, filled = y, keep
        while band_y + filled < end:  # a few rows at a time: no second band in flight
            new = read_rows(band_y + filled, min(end, band_y + filled + READ_ROWS))
            if band is None:
                band = np.empty((plan.tile_h, *new.shape[1:]), new.dtype)
            band[filled:filled + new.shape[0]] = new
            filled += new.shape[0]
            del new
        rows = pad_to(band[:filled], plan.tile_h, plan.padded_w)
        for c, x in enumerate(plan.xs):
            pending_idx.append((r, c))
            tile = to_float_rgb(rows[:, x:x + plan.tile_w])
            if np.may_share_memory(tile, band):  # float rows: the band is reused
                tile = tile.copy()
            pending.append(tile.transpose(2, 0, 1))
            if len(pending) == size:
                yield pending_idx, np.ascontiguousarray(np.stack(pending))
                pending_idx, pending = [], []
    if pending:
        if fixed_batch:  # a static-batch graph: fill up with copies, drop their outputs
            pending += [pending[-1]] * (fixed_batch - len(pending))
        yield pending_idx, np.ascontiguousarray(np.stack(pending))


def run_tiled(runner, plan: TilePlan, read_rows: Callable[[int, int], np.ndarray],
              context: np.ndarray, consume: Callable[[Iterator[np.ndarray]], None],
              batch: int = 1, progress=None, samples: SampleFormat | None = None) -> RunStats:
    """Run every tile of ``plan`` through ``runner``; ``consume`` gets the output rows.

    ``read_rows(y0, y1)`` returns (rows, W, C) input rows as stored (called in order);
    ``consume(rows_iterator)`` runs in the writer thread and must exhaust the iterator.
    The rows come in ``samples``' format (float32 RGB by default) and are views of a
    reused buffer: ``consume`` copies what it keeps past the next row.
    """
    spec = runner.spec
    stats = RunStats(tiles=plan.count, pixels=plan.height * plan.width,
                     grid=(len(plan.ys), len(plan.xs)), tile=(plan.tile_h, plan.tile_w),
                     overlap=plan.overlap)
    q_in: queue.Queue = queue.Queue(maxsize=3)
    q_out: queue.Queue = queue.Queue(maxsize=3)
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        feed(q_in, _batches(plan, read_rows, batch, spec.batch), stop, errors)

    def outputs() -> Iterator:
        while True:
            item = get(q_out, stop)
            if item is END:
                return
            yield item

    def writer() -> None:
        try:
            faults.point("writer-start")
            consume(stitched(plan, spec.out_channels, outputs(), samples))
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    start = time.perf_counter()
    threads = [Worker(reader, "hermes-reader"), Worker(writer, "hermes-writer")]
    started: list[Worker] = []
    ctx = np.ascontiguousarray(context[:1], np.float32)
    try:
        # started inside the try: an interrupt between two starts still joins the first,
        # so no thread is cut off mid-write when the interpreter exits
        for t in threads:
            t.start()
            started.append(t)
        while not stop.is_set():
            item = get(q_in, stop)
            if item is END:
                break
            indices, tiles = item
            t0 = time.perf_counter()
            out = runner.infer(tiles, ctx)
            stats.compute_seconds += time.perf_counter() - t0
            faults.point("tiles")
            if progress is not None:
                progress(len(indices))
            if not put(q_out, (indices, out[: len(indices)]), stop):
                break
    except BaseException:
        stop.set()
        raise
    finally:
        put(q_out, END, stop)
        join_all(started, stop)
    if errors:
        raise errors[0]
    stats.wall_seconds = time.perf_counter() - start
    return stats


def fill(out: np.ndarray) -> Callable[[Iterator[np.ndarray]], None]:
    """A ``consume`` for :func:`run_tiled` that copies the rows, top to bottom, into
    ``out`` (the whole output, preallocated in the rows' format)."""

    def consume(strips: Iterator[np.ndarray]) -> None:
        done = 0
        for strip in strips:
            out[done:done + strip.shape[0]] = strip
            done += strip.shape[0]

    return consume


def image_context(runner, image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float image -> (1, K) context from the runner's context graph."""
    return runner.context(np.ascontiguousarray(image.transpose(2, 0, 1)[None], np.float32))


def restore_array(runner, image: np.ndarray, options: TileOptions = TileOptions(),
                  context: np.ndarray | None = None) -> tuple[np.ndarray, RunStats]:
    """Tiled inference of an in-memory (H, W, 3) float32 image; returns (output, stats)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"expected an (H, W, 3) image, got {image.shape}")
    h, w = image.shape[:2]
    plan = make_plan(runner.spec, h, w, options)
    t0 = time.perf_counter()
    ctx = image_context(runner, image) if context is None else context
    ctx_s = time.perf_counter() - t0
    s = runner.spec.scale
    out = np.empty((s * h, s * w, 3), np.float32)
    stats = run_tiled(runner, plan, lambda y0, y1: image[y0:y1], ctx, fill(out),
                      batch=options.batch)
    stats.context_seconds = ctx_s
    return out, stats


@dataclass
class FileResult:
    source: Path
    output: Path
    stats: RunStats
    size: tuple[int, int]  # input width, height
    out_size: tuple[int, int]
    frames: int = 0  # a video's frames (0 for an image)
    note: str = ""  # what the run line says beyond sizes and tiles


OOM_MARKERS = ("out of memory", "failed to allocate", "cuda_error_out_of_memory",
               "outofmemory", "bad_alloc")


def is_out_of_memory(exc: BaseException) -> bool:
    """A backend ran out of (device or host) memory: worth retrying with smaller tiles."""
    if isinstance(exc, MemoryError):
        return True
    text = f"{type(exc).__name__} {exc}".lower()
    return any(marker in text for marker in OOM_MARKERS)


def smaller(options: TileOptions, spec, overlap: int) -> TileOptions | None:
    """The next setting to try after running out of memory: half the batch, then half
    the tile (never below twice the overlap); None when nothing smaller is left."""
    import dataclasses

    if options.batch > 1 and not spec.batch:
        return dataclasses.replace(options, batch=options.batch // 2)
    if spec.tile is not None:
        return None
    m = max(1, spec.size_multiple)
    h, w = (max(round_up(t // 2, m), 2 * overlap + m) for t in options.tile)
    if (h, w) == tuple(options.tile):
        return None
    return dataclasses.replace(options, tile=(h, w))


def restore_file(runner, source: str | os.PathLike, output: str | os.PathLike,
                 options: TileOptions = TileOptions(), max_pixels: int | None = None,
                 progress_factory=None, say=None) -> FileResult:
    """Tiled inference of one image file into ``output`` (format from its suffix).

    When the backend runs out of memory the image is redone with half the batch, then
    half the tile, and ``say`` is told; the output is only ever written complete.
    """
    while True:
        try:
            return _restore_file(runner, source, output, options, max_pixels, progress_factory)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            overlap = runner.spec.tile_overlap if options.overlap is None else options.overlap
            nxt = smaller(options, runner.spec, overlap)
            if nxt is None:
                raise InputError(f"{Path(source).name}: out of memory even with tile "
                                 f"{options.tile[0]}x{options.tile[1]} and batch "
                                 f"{options.batch}; free memory or use a smaller model") from None
            if say:
                say(f"out of memory on {Path(source).name}; retrying with tile "
                    f"{nxt.tile[0]}x{nxt.tile[1]}, batch {nxt.batch}")
            options = nxt


def _restore_file(runner, source, output, options, max_pixels, progress_factory) -> FileResult:
    from .images import DEFAULT_MAX_PIXELS, ImageSink, ImageSource

    start = time.perf_counter()
    src = ImageSource(source, DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
    faults.point("file-start")
    info = src.info
    spec = runner.spec
    plan = make_plan(spec, info.height, info.width, options)
    s = spec.scale
    sink = ImageSink(Path(output), s * info.width, s * info.height, info.channels, info.depth,
                     icc=src.icc, alpha=src.alpha_upscaled(s))  # checks the size first
    t0 = time.perf_counter()
    ctx = image_context(runner, src.whole(options.context_max_side))
    ctx_s = time.perf_counter() - t0
    bar = progress_factory(plan.count, Path(source).name) if progress_factory else None
    try:
        stats = run_tiled(runner, plan, src.read_rows, ctx, sink.write, batch=options.batch,
                          progress=bar.update if bar is not None else None,
                          samples=sink.samples)
    finally:
        if bar is not None:
            bar.close()
    stats.context_seconds = ctx_s
    stats.wall_seconds = time.perf_counter() - start
    return FileResult(source=Path(source), output=Path(output), stats=stats,
                      size=(info.width, info.height), out_size=(s * info.width, s * info.height))
