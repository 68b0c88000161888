"""One video file in, one restored video out: decode, restore, encode in their own threads.

* A **decoder** thread demuxes and decodes the source (PyAV), converts each frame to
  float RGB with its own colour (:mod:`.colour`), finds shot changes (:mod:`.shots`)
  and marks where segments begin.
* The **calling** thread runs the model: each frame through the tiled runtime
  (:func:`hermes_deploy.runtime.pipeline.restore_array`), with the context of its shot
  (computed once, on the shot's first frame) or of the frame itself
  (``context="per-frame"``).
* An **encoder** thread converts the output back to Y'CbCr and writes it, segment by
  segment, into the work folder (:mod:`.segments`).

Queues between them hold two frames each, so memory does not grow with the video's
length. When every frame is restored, :func:`hermes_deploy.video.mux.join` encodes the
segments with every other stream of the source into the output and publishes it. A
run killed at any point and run again continues after the last finished segment.

No frame is skipped: a frame that fails to decode or restore fails the file, in one line
naming its time.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import faults
from ..atomic import discard, publish, temp_file, write_error
from ..errors import HermesError, InputError
from ..runtime.pipeline import FileResult, RunStats, image_context, restore_array
from ..runtime.plan import TileOptions, check_options
from ..runtime.workers import END, Worker, feed, get, join_all, put
from .encode import EncodeOptions, Encoder, resolve
from .frames import frame_to_rgb, rgb_to_frame
from .mux import join
from .probe import VideoInfo, open_input, probe, video_stream
from .segments import Segment, WorkFolder, run_key
from .shots import ShotDetector

CONTEXT_MODES = ("per-shot", "per-frame")


@dataclass(frozen=True)
class VideoOptions:
    context: str = "per-shot"
    encode: EncodeOptions = EncodeOptions()
    segment_frames: int = 48  # the longest segment: the most work a killed run loses
    min_segment_frames: int = 8  # a shot change starts a segment once this many are done


@dataclass
class _Frame:
    index: int
    pts: int
    duration: int
    rgb: np.ndarray
    shot: int  # index of its shot's first frame
    new_segment: bool
    out: np.ndarray | None = None
    context: list[float] | None = None


@dataclass
class VideoStats:
    frames: int = 0
    resumed: int = 0  # frames taken from an earlier run's segments
    shots: int = 0
    stats: RunStats = field(default_factory=RunStats)
    encode_seconds: float = 0.0


def _time_of(info: VideoInfo, pts: int | None) -> str:
    return f"{float(pts * info.time_base):.3f}s" if pts is not None else "an unknown time"


def decode_frames(source: Path, info: VideoInfo, detect: bool):
    """Yield (index, pts, duration, rgb, cut) for every frame of the video stream;
    a frame that cannot be decoded fails in one line naming its time."""
    import av

    detector = ShotDetector()
    last_pts = None
    first_pts = end_pts = None
    longest = 0
    with open_input(source) as container:
        stream = video_stream(container, info.name)
        stream.thread_type = "AUTO"
        index = 0
        try:
            for packet in container.demux(stream):
                last_pts = packet.pts if packet.pts is not None else last_pts
                for frame in packet.decode():
                    if frame.is_corrupt:
                        raise InputError(f"{info.name}: the frame at {_time_of(info, frame.pts)} "
                                         "is corrupt; repair or re-cut the video")
                    if (frame.width, frame.height) != (info.width, info.height):
                        raise InputError(f"{info.name}: the frame size changes at "
                                         f"{_time_of(info, frame.pts)} ({info.width}x{info.height}"
                                         f" -> {frame.width}x{frame.height}); split the video "
                                         "where it changes")
                    pts = frame.pts if frame.pts is not None else frame.best_effort_timestamp
                    if pts is None:
                        raise InputError(f"{info.name}: frame {index} has no timestamp; remux "
                                         "the video (ffmpeg -i in -c copy out.mkv)")
                    first_pts = pts if first_pts is None else first_pts
                    end_pts = pts + int(frame.duration or 0)
                    longest = max(longest, int(frame.duration or 0))
                    rgb = frame_to_rgb(frame, info.colour)
                    cut = detector.cut(rgb) if detect else True
                    yield index, pts, int(frame.duration or 0), rgb, cut
                    index += 1
        except av.error.FFmpegError as exc:
            raise InputError(f"{info.name}: the video cannot be decoded after "
                             f"{_time_of(info, last_pts)} ({exc.strerror or exc}); the file is "
                             "corrupt or truncated") from None
    if info.frames and index != info.frames:
        raise InputError(f"{info.name}: {index} frames decoded, the container says "
                         f"{info.frames}; the file is truncated or corrupt")
    if index == 0:
        raise InputError(f"{info.name}: the video stream holds no frames")
    if info.duration and longest:
        decoded = float((end_pts - first_pts) * info.time_base)
        if decoded < info.duration - max(2 * float(longest * info.time_base), 0.1):
            raise InputError(f"{info.name}: the video stream ends at {decoded:.3f}s of the "
                             f"{info.duration:.3f}s its header says; the file is truncated or corrupt")


class _SegmentWriter:
    """One segment: FFV1 in Matroska under a temporary name, published when complete."""

    def __init__(self, work: WorkFolder, first: int, width: int, height: int, encoder: Encoder):
        import av

        self.work, self.first = work, first
        self.path = work.segment_path(first)
        self.tmp = temp_file(self.path, suffix=".mkv")
        self.pts: list[int] = []
        self.durations: list[int] = []
        self.shots: dict[int, list[float]] = {}
        self.encoder = encoder
        self.container = av.open(str(self.tmp), "w", format="matroska")
        self.stream = self.container.add_stream("ffv1", rate=25, options={"level": "3"})
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = encoder.pix_fmt

    def write(self, frame: _Frame) -> None:
        vf = rgb_to_frame(frame.out, self.encoder.pix_fmt, self.encoder.colour)
        vf.pts = len(self.pts)
        for packet in self.stream.encode(vf):
            self.container.mux(packet)
        self.pts.append(frame.pts)
        self.durations.append(frame.duration)
        if frame.context is not None and frame.shot not in self.shots:
            self.shots[frame.shot] = frame.context

    def finish(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()
        faults.point("video-segment")
        publish(self.tmp, self.path)
        self.work.add(Segment(first=self.first, pts=self.pts, durations=self.durations,
                              file=self.path.name), self.shots)

    def abandon(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the file is discarded either way
            pass
        discard(self.tmp)


def _context_input(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """The frame the context is computed from: a large one downscaled (area means), as
    the image runtime does."""
    h, w = rgb.shape[:2]
    step = -(-max(h, w) // max_side)
    if step <= 1:
        return rgb
    hh, ww = h // step * step, w // step * step
    return rgb[:hh, :ww].reshape(hh // step, step, ww // step, step, 3).mean(axis=(1, 3))


def restore_video(runner, source: str | Path, output: str | Path,
                  options: TileOptions = TileOptions(), video: VideoOptions = VideoOptions(),
                  max_pixels: int | None = None, progress_factory=None, say=None) -> FileResult:
    """Restore one video file into ``output`` (see module doc)."""
    say = say or (lambda m: None)
    source, output = Path(source), Path(output)
    if video.context not in CONTEXT_MODES:
        raise InputError(f"--context {video.context}: choose {' or '.join(CONTEXT_MODES)}")
    start = time.perf_counter()
    info = probe(source)
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise InputError(f"{info.name}: frames of {info.width}x{info.height} exceed --max-pixels "
                         f"{max_pixels}; raise it")
    check_options(runner.spec, options)
    encoder = resolve(video.encode, info.pix_fmt, info.colour, output.suffix.lower())
    if info.colour.guessed:
        say(f"{info.name}: untagged {', '.join(info.colour.guessed)}; guessed "
            f"{info.colour.describe()} from its size, as players do (the output is tagged so)")
    if info.colour.hdr:
        say(f"{info.name}: {info.colour.hdr} HDR: its coded values pass through the model as "
            "they are and the output keeps the HDR tags")
    if runner.spec.single_graph and video.context == "per-shot":
        say("single graph: each tile computes its own context, so --context per-shot cannot "
            "share one per shot (export the pair for that)")
    s = runner.spec.scale
    key = run_key(source, {"model": runner.spec.to_json(), "backend": getattr(runner, "name", ""),
                           "tile": [list(options.tile), options.overlap, options.batch,
                                    options.context_max_side],
                           "context": video.context, "pix_fmt": encoder.pix_fmt,
                           "colour": repr(encoder.colour),
                           "segments": [video.segment_frames, video.min_segment_frames]})
    work = WorkFolder(output, key).open(say)
    done = work.state.done
    vstats = VideoStats(resumed=done)
    expected = info.frames or (round(info.duration * info.rate) if info.duration and info.rate
                               else 0)  # MKV has no frame count: from duration x rate
    bar = progress_factory(expected, info.name, "frame") if progress_factory else None
    if bar is not None and done:
        bar.update(done)
    try:
        try:
            _restore_frames(runner, source, info, options, video, encoder, work, vstats,
                            bar.update if bar is not None else None)
        except InputError:  # the source is at fault: nothing of it is worth resuming
            work.remove()
            raise
        except HermesError:
            raise
        except Exception as exc:
            if isinstance(exc, OSError) or type(exc).__module__.startswith("av"):
                err = exc if isinstance(exc, OSError) else OSError(
                    getattr(exc, "errno", None), getattr(exc, "strerror", None) or str(exc))
                raise write_error(output, err, "the work segments of") from None
            raise
        faults.point("video-join")
        t0 = time.perf_counter()
        frames = join(source, output, info, encoder, s, work.path, work.state.segments, say)
        vstats.encode_seconds = time.perf_counter() - t0
    finally:
        if bar is not None:
            bar.close()
    work.remove()
    vstats.frames = frames
    vstats.shots = len(work.state.shots)
    stats = vstats.stats
    stats.wall_seconds = time.perf_counter() - start
    stats.pixels = info.width * info.height * (frames - done)
    return FileResult(source=source, output=output, stats=stats,
                      size=(info.width, info.height), out_size=(s * info.width, s * info.height),
                      frames=frames, note=_summary(info, encoder, vstats))


def _summary(info: VideoInfo, encoder: Encoder, v: VideoStats) -> str:
    resumed = f", {v.resumed} from an earlier run" if v.resumed else ""
    return (f"{v.frames} frames{resumed}, {v.shots} shot(s), {encoder.describe()}, "
            f"{info.colour.describe()}")


def _restore_frames(runner, source: Path, info: VideoInfo, options: TileOptions,
                    video: VideoOptions, encoder: Encoder, work: WorkFolder, vstats: VideoStats,
                    progress) -> None:
    done = work.state.done
    s = runner.spec.scale
    per_shot = video.context == "per-shot" and not runner.spec.single_graph
    q_in: queue.Queue = queue.Queue(maxsize=2)
    q_out: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    errors: list[BaseException] = []

    def to_restore():
        """The frames from ``done`` on, each with its shot and whether it starts a segment."""
        seg_len = 0
        shot = 0
        for index, pts, duration, rgb, cut in decode_frames(source, info, per_shot):
            if cut:
                shot = index
            if index < done:
                continue
            new = (index == done or seg_len >= video.segment_frames
                   or (cut and seg_len >= video.min_segment_frames))
            seg_len = 1 if new else seg_len + 1
            yield _Frame(index, pts, duration, rgb, shot, new)

    def decoder() -> None:
        feed(q_in, to_restore(), stop, errors)

    def writer() -> None:
        current: _SegmentWriter | None = None
        try:
            while True:
                item = get(q_out, stop)
                if item is END:
                    break
                if item.new_segment:
                    if current is not None:
                        current.finish()
                    current = _SegmentWriter(work, item.index, s * info.width, s * info.height,
                                             encoder)
                current.write(item)
            if current is not None and not stop.is_set():
                current.finish()
                current = None
        except BaseException as exc:
            errors.append(exc)
            stop.set()
        finally:
            if current is not None:
                current.abandon()

    threads = [Worker(decoder, "hermes-video-decode"), Worker(writer, "hermes-video-encode")]
    started: list[Worker] = []
    contexts = {k: np.asarray(v, np.float32)[None] for k, v in work.state.shots.items()}
    stats = vstats.stats
    try:
        for t in threads:
            t.start()
            started.append(t)
        while not stop.is_set():
            item = get(q_in, stop)
            if item is END:
                break
            try:
                t0 = time.perf_counter()
                if per_shot and item.shot in contexts:
                    ctx = contexts[item.shot]
                else:
                    ctx = image_context(runner, _context_input(item.rgb, options.context_max_side))
                    if per_shot:
                        contexts[item.shot] = ctx
                stats.context_seconds += time.perf_counter() - t0
                item.out, run = restore_array(runner, item.rgb, options, context=ctx)
            except HermesError as exc:
                raise InputError(f"{info.name}: the frame at {_time_of(info, item.pts)} failed: "
                                 f"{exc}") from None
            faults.point("video-frame")
            item.context = [float(x) for x in np.asarray(ctx, np.float32).reshape(-1)] if per_shot else None
            item.rgb = None
            stats.tiles += run.tiles
            stats.compute_seconds += run.compute_seconds
            stats.grid, stats.tile, stats.overlap = run.grid, run.tile, run.overlap
            if not put(q_out, item, stop):
                break
            if progress is not None:
                progress(1)
    except BaseException:
        stop.set()
        raise
    finally:
        put(q_out, END, stop)
        join_all(started, stop)
    if errors:
        raise errors[0]


__all__ = ["CONTEXT_MODES", "VideoOptions", "decode_frames", "restore_video"]
