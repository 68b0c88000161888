"""``hermes-export infer`` and ``hermes-export bench``: the tiled runtime from the shell."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .. import faults
from .common import BackendOpt, JsonOpt, ThreadsOpt, echo_err, guarded, parse_tile

ModelOpt = typer.Option("default", "--model", "-m",
                        help="Bundled name, checkpoint, exported .onnx or TensorRT .engine.")
TileOpt = typer.Option("256", "--tile", help="Tile size in input pixels, HxW or N.")
OverlapOpt = typer.Option(None, "--overlap", help="Tile overlap in input pixels (default: the "
                          "model's recommended overlap, from its receptive field).")
BatchOpt = typer.Option(1, "--batch", help="Tiles per inference call.")
PrecisionOpt = typer.Option(None, "--precision",
                            help="CPU compute precision: f32, bf16 (OpenVINO, CPUs with "
                                 "AVX512-BF16/AMX), int8 (an INT8 Q/DQ graph), or auto (with "
                                 "--backend auto: the fastest backend and precision within 0.05 dB "
                                 "held-out PSNR-Y, as bench --compare recommends; measured once if "
                                 "it has not run); default: the graph's own (f32, or int8 for a "
                                 "Q/DQ graph).")

SAMPLE_NAME = "sample-astronaut.png"


def _progress_factory(enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    def make(total: int, name: str, unit: str = "tile"):
        return tqdm(total=total or None, desc=name[:24], unit=unit, leave=False,
                    dynamic_ncols=True, disable=None)  # None: off when stderr is not a terminal

    return make


def _write_sample(outdir: Path) -> Path:
    """A bundled photograph, downscaled x2 with bicubic: the low-resolution sample input."""
    import numpy as np
    from PIL import Image

    from ..quality.degrade import bicubic_down
    from ..quality.photos import load_photo

    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / "inputs" / SAMPLE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    low = bicubic_down(load_photo("astronaut"), 2)
    from ..atomic import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray((np.clip(low, 0, 1) * 255 + 0.5).astype(np.uint8)).save(tmp, format="PNG")
    return path


def infer(inputs: list[str] = typer.Argument(None, help="Image files, folders or glob patterns."),
          output: Path = typer.Option(..., "--output", "-o", help="Output folder."),
          model: str = ModelOpt, backend: str = BackendOpt, tile: str = TileOpt,
          overlap: int = OverlapOpt, batch: int = BatchOpt, threads: int = ThreadsOpt,
          precision: str = PrecisionOpt,
          fmt: str = typer.Option("auto", "--format", help="auto (same as input), png, jpg, webp "
                                  "or tif."),
          overwrite: bool = typer.Option(False, "--overwrite", help="Redo outputs that exist."),
          max_pixels: int = typer.Option(None, "--max-pixels", help="Largest accepted input in "
                                         "pixels (default: Pillow's decompression-bomb limit)."),
          sample: bool = typer.Option(False, "--sample", help="Also run on a bundled sample photo "
                                      "(written to OUTPUT/inputs)."),
          context_size: int = typer.Option(1024, "--context-size", help="Images with a longer "
                                           "side get their per-image context from a copy "
                                           "downscaled to this size (bounds its memory)."),
          report: Path = typer.Option(None, "--report", help="Write a JSON report here "
                                      "(default: OUTPUT/hermes-report.json)."),
          progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
          ray: str = typer.Option(None, "--ray", help="Run on a Ray cluster: local (start one "
                                  "here), auto, host:6379 or ray://host:10001 "
                                  "(pip install 'hermes-deploy[ray]')."),
          actors: int = typer.Option(2, "--actors", help="With --ray: runners at once (one "
                                     "loaded model each)."),
          codec: str = typer.Option("auto", "--codec", help="Videos: encoder (libx264, libx265, "
                                    "libsvtav1, libvpx-vp9, ffv1 lossless, prores_ks); auto: "
                                    "libx264, libvpx-vp9 for WebM."),
          crf: int = typer.Option(None, "--crf", help="Videos: quality (CRF; default 18 for "
                                  "x264, 20 x265, 28 AV1 and VP9)."),
          preset: str = typer.Option(None, "--preset", help="Videos: encoder preset (x264/x265 "
                                     "default medium, SVT-AV1 8)."),
          pix_fmt: str = typer.Option("auto", "--pix-fmt", help="Videos: output pixel format, "
                                      "e.g. yuv420p10le; auto: the source's (10-bit stays "
                                      "10-bit)."),
          context: str = typer.Option("per-shot", "--context", help="Videos: per-shot (one "
                                      "routing per shot, computed on its first frame) or "
                                      "per-frame."),
          segment_frames: int = typer.Option(48, "--segment-frames", help="Videos: frames per "
                                             "resumable segment at most (the work a killed run "
                                             "can lose); shot changes also start one."),
          json_out: bool = JsonOpt) -> None:
    """Restore / upscale images and videos with tiled inference (any size, one or thousands)."""
    with guarded():
        from ..engines.select import open_runner
        from ..errors import InputError, OutputError
        from ..runtime.batch import check_report_path, run_batch, write_report
        from ..runtime.images import output_suffix
        from ..runtime.plan import TileOptions

        # flags are checked before the model is opened (which can take seconds)
        options = TileOptions(tile=parse_tile(tile), overlap=overlap, batch=batch,
                              context_max_side=context_size)
        output_suffix(fmt, ".png")  # an unknown --format fails here, not per file
        if max_pixels is not None and max_pixels < 1:
            raise InputError(f"--max-pixels must be 1 or more, got {max_pixels}")
        from ..video import CONTEXT_MODES, EncodeOptions, VideoInputs, VideoOptions

        if context not in CONTEXT_MODES:
            raise InputError(f"--context {context}: choose {' or '.join(CONTEXT_MODES)}")
        if segment_frames < 1:
            raise InputError(f"--segment-frames must be 1 or more, got {segment_frames}")
        videos = VideoInputs(VideoOptions(context=context, segment_frames=segment_frames,
                                          min_segment_frames=min(8, segment_frames),
                                          encode=EncodeOptions(
            codec=codec, quality=crf, preset=preset, pix_fmt=pix_fmt)))
        report_path = report or output / "hermes-report.json"
        previous_report = check_report_path(report_path)  # this run's figures join it
        items = list(inputs or [])
        if sample:
            items.append(str(_write_sample(output)))
        if not items:
            raise InputError("no inputs; pass image files, folders or globs (or --sample)")
        if ray is not None:
            from ..scaleout.ray_batch import run_ray_batch
            from ..video import is_video

            videos_named = [i for i in items if is_video(i)]
            if videos_named:
                raise InputError(f"--ray runs images only; run {Path(videos_named[0]).name} "
                                 "without --ray")

            result = run_ray_batch(items, output, model=model, backend=backend, options=options,
                                   fmt=fmt, overwrite=overwrite, max_pixels=max_pixels,
                                   precision=precision, threads=threads, actors=actors,
                                   address=ray, say=echo_err, progress=progress)
        else:
            runner, why = open_runner(model, backend, threads=threads, precision=precision,
                                      say=lambda m: echo_err(f"... {m}"))
            with runner:
                s = runner.spec
                echo_err(f"backend: {runner.name} - {why}")
                echo_err(f"model: x{s.scale} {s.preset or ''} {s.precision}, overlap "
                         f"{s.tile_overlap if overlap is None else overlap}px"
                         + ("; single graph: each tile computes its own context and routes by "
                            "itself (export the pair for one routing per image)"
                            if s.single_graph else ""))
                result = run_batch(runner, items, output, options, fmt=fmt, overwrite=overwrite,
                                   max_pixels=max_pixels, say=echo_err,
                                   progress_factory=_progress_factory(progress), media=videos)
        data = result.to_dict()
        faults.point("report")
        try:
            write_report(report_path, data, previous_report)
            unwritten = None
        except OutputError as exc:  # the outputs stand; say so before the error
            unwritten = exc
        if json_out:
            typer.echo(json.dumps(data, indent=2))
        else:
            ignored = f", {data['ignored']} ignored" if data.get("ignored") else ""
            typer.echo(f"{data['done']} done, {data['skipped']} skipped, {data['failed']} failed{ignored} "
                       f"in {data['wall_seconds']:.1f}s ({data['megapixels_per_second']:.3f} MP/s "
                       f"input) on {data['backend']}"
                       + ("" if unwritten else f"; report: {report_path}"))
        if unwritten:
            raise unwritten
        if result.failed:
            raise typer.Exit(1)


def bench(model: str = ModelOpt, backend: str = BackendOpt, tile: str = TileOpt,
          overlap: int = OverlapOpt, batch: int = BatchOpt, threads: int = ThreadsOpt,
          precision: str = PrecisionOpt,
          size: str = typer.Option("512x512", "--size", help="Input image size HxW."),
          repeat: int = typer.Option(2, "--repeat", help="Timed runs (after one warm-up)."),
          compare: bool = typer.Option(False, "--compare", help="Instead: every CPU backend and "
                                       "precision side by side on one tile of --tile (torch eager, "
                                       "torch.compile, onnxruntime, OpenVINO; f32, bf16, int8), "
                                       "ending with a recommendation that infer --precision auto "
                                       "takes."),
          int8: str = typer.Option(None, "--int8", help="With --compare: the INT8 Q/DQ graph "
                                   "(default: the one kept in the cache folder, calibrated once, "
                                   "about a minute)."),
          no_int8: bool = typer.Option(False, "--no-int8", help="With --compare: no int8 rows."),
          no_compile: bool = typer.Option(False, "--no-compile", help="With --compare: no "
                                          "torch.compile row (it compiles for minutes on 2 cores)."),
          json_out: bool = JsonOpt) -> None:
    """Throughput of a model / backend / tile setting on a real photograph (machine-readable)."""
    with guarded():
        import numpy as np

        if compare:
            from ..checks.cpu_bench import compare_cpu, format_compare

            tile_hw = parse_tile(tile)
            info = compare_cpu(model if not model.endswith(".onnx") else "default",
                               onnx=model if model.endswith(".onnx") else None, int8=int8,
                               tile=tile_hw[0], threads=threads or 2, repeats=max(1, repeat),
                               compile=not no_compile, int8_rows=not no_int8,
                               say=lambda m: echo_err(f"... {m}"))
            typer.echo(json.dumps(info, indent=2) if json_out else format_compare(info))
            return

        from ..engines.select import open_runner
        from ..quality.photos import load_photo
        from ..runtime.pipeline import restore_array
        from ..runtime.plan import TileOptions

        h, w = parse_tile(size)
        photo = load_photo("astronaut")
        reps = (-(-h // photo.shape[0]), -(-w // photo.shape[1]), 1)
        image = np.ascontiguousarray(np.tile(photo, reps)[:h, :w])
        runner, why = open_runner(model, backend, threads=threads, precision=precision,
                                  say=lambda m: echo_err(f"... {m}"))
        options = TileOptions(tile=parse_tile(tile), overlap=overlap, batch=batch)
        with runner:
            restore_array(runner, image, options)  # warm-up
            runs = [restore_array(runner, image, options)[1] for _ in range(max(1, repeat))]
        best = min(runs, key=lambda r: r.wall_seconds)
        data = {"backend": runner.name, "why": why, "size": [h, w], "tile": list(best.tile),
                "overlap": best.overlap, "batch": batch, "grid": list(best.grid),
                "tiles": best.tiles, "wall_seconds": round(best.wall_seconds, 4),
                "compute_seconds": round(best.compute_seconds, 4),
                "overhead": round(best.wall_seconds / best.compute_seconds, 4),
                "megapixels_per_second": round(best.megapixels_per_second, 4),
                "output_megapixels_per_second": round(best.megapixels_per_second
                                                      * runner.spec.scale ** 2, 4)}
        if json_out:
            typer.echo(json.dumps(data, indent=2))
        else:
            typer.echo(f"{data['backend']}: {h}x{w} in {data['tiles']} tiles "
                       f"{best.tile[0]}x{best.tile[1]} (grid {best.grid[0]}x{best.grid[1]}, "
                       f"overlap {best.overlap}), {data['wall_seconds']:.2f}s wall, "
                       f"{data['compute_seconds']:.2f}s in the backend (x{data['overhead']:.3f}), "
                       f"{data['megapixels_per_second']:.3f} MP/s input")
