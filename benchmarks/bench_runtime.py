"""The tiled runtime: overhead over the backend, a plain tile loop, and peak memory.

    python benchmarks/bench_runtime.py overhead [--model default] [--size 768] [--tile 128]
        [--batch 1] [--json]
    python benchmarks/bench_runtime.py memory [--sizes 4096 8192] [--model stand-in|MODEL]
        [--json]
    python benchmarks/bench_runtime.py context [--model default] [--memory-sizes 512 1024]
    python benchmarks/bench_runtime.py tiles [--model default]

Every command takes ``--backend onnxruntime`` (or openvino, torch, auto),
``--precision f32`` (bf16, int8 where the backend and CPU have them) and ``--threads 2``
(0: all cores), and prints them, with the CPU, the commit and the load average, in a
header before its results (``benchmarks/header.py``).

``overhead`` runs, on the same tiles of a real photograph (tiled out to ``--size``
pixels, saved as PNG):

1. backend only: the context graph on the whole image, then every tile of the plan,
   cut in memory beforehand, through ``runner.infer`` back to back (the backend's own
   compute time);
2. the runtime: ``restore_file`` PNG -> PNG (decode, context, tiles, inference,
   blending, encode, with reading and writing in their own threads);
3. a plain loop, one tile at a time with no I/O overlap: decode the whole image with
   Pillow, run each tile, paste its centre into a full-size output array, save with
   Pillow (the loop of Real-ESRGAN's tiling script, without its GPU).

It prints the runtime's wall time over the backend time (target <= 1.15) and the
plain loop's wall time over the runtime's.

``memory`` writes a PNG of each size (a photograph repeated), runs ``restore_file`` on it
in a fresh process and reports that process's peak resident memory (``ru_maxrss``:
whole-process RSS, including Python, numpy, onnxruntime and libvips). With
``--model stand-in`` the backend is a two-node ONNX graph (nearest x2 upscale plus the
context) with the default model's ModelSpec: it exercises decoding, tiling, blending
and streaming at full size in minutes, where the default model would compute for
hours on 2 CPU cores; the model's own working memory per tile does not depend on
the image size.

``context`` restores the held-out photos with the context computed on the whole input,
on copies downscaled 2x and 4x (what the runtime does above ``--context-size``) and on
a zero context: PSNR-Y against ground truth, and how far the output moves from the
whole-input context's output (mean and largest absolute difference, in [0, 1] units).
Then, each in a fresh process, the context graph alone on a photograph of each
``--memory-sizes`` size: peak RSS over the RSS with the model loaded.

``tiles`` prints README's tiling table: tiled vs whole-image output on crops of real
photographs (:mod:`tiled_vs_whole`, checked by ``tests/runtime/test_pipeline.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _runner(args):
    from hermes_deploy.engines.select import open_runner

    return open_runner(args.model, args.backend, threads=args.threads, precision=args.precision,
                       say=lambda m: print(f"... {m}", file=sys.stderr))[0]


def _photo_png(path: Path, size: int) -> None:
    """A real photograph (astronaut) repeated out to size x size, written by libvips."""
    import pyvips

    from hermes_deploy.quality.photos import load_photo

    photo = (load_photo("astronaut") * 255 + 0.5).astype(np.uint8)
    base = pyvips.Image.new_from_array(photo, interpretation="srgb")
    n = -(-size // photo.shape[0])
    base.replicate(n, n).crop(0, 0, size, size).write_to_file(str(path), compression=1)


def overhead(args) -> dict:
    from PIL import Image

    from hermes_deploy.runtime.pipeline import image_context, restore_file
    from hermes_deploy.runtime.plan import TileOptions, make_plan

    runner = _runner(args)
    options = TileOptions(tile=(args.tile, args.tile), batch=args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.png"
        _photo_png(src, args.size)
        image = np.asarray(Image.open(src).convert("RGB"), np.float32) / 255
        plan = make_plan(runner.spec, args.size, args.size, options)
        ctx = image_context(runner, image)
        tiles = [image[y:y + plan.tile_h, x:x + plan.tile_w].transpose(2, 0, 1)
                 for y in plan.ys for x in plan.xs]
        batches = [np.ascontiguousarray(np.stack(tiles[i:i + args.batch]))
                   for i in range(0, len(tiles), args.batch)]
        runner.infer(batches[0], ctx)  # warm-up

        def backend_only():
            t0 = time.perf_counter()
            image_context(runner, image)  # the context is the backend's work too
            for b in batches:
                runner.infer(b, ctx)
            return time.perf_counter() - t0

        def runtime():
            t0 = time.perf_counter()
            restore_file(runner, src, Path(tmp) / "out.png", options)
            return time.perf_counter() - t0

        def plain_loop():
            t0 = time.perf_counter()
            img = np.asarray(Image.open(src).convert("RGB"), np.float32) / 255
            c = image_context(runner, img)
            s, half = runner.spec.scale, plan.overlap // 2
            out = np.zeros((s * img.shape[0], s * img.shape[1], 3), np.float32)
            for y in plan.ys:
                for x in plan.xs:
                    t = img[y:y + plan.tile_h, x:x + plan.tile_w].transpose(2, 0, 1)[None]
                    o = runner.infer(np.ascontiguousarray(t), c)[0].transpose(1, 2, 0)
                    y0, x0 = (0 if y == 0 else half), (0 if x == 0 else half)
                    out[s * (y + y0):s * (y + plan.tile_h), s * (x + x0):s * (x + plan.tile_w)] = \
                        o[s * y0:, s * x0:]
            Image.fromarray((np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)).save(
                Path(tmp) / "plain.png")
            return time.perf_counter() - t0

        rounds = []
        for _ in range(args.repeats):  # interleaved, so load changes hit all three alike
            rounds.append((backend_only(), runtime(), plain_loop()))
    b, r, p = (float(np.median([x[i] for x in rounds])) for i in range(3))
    return {"backend": runner.name, "size": args.size, "tile": args.tile, "batch": args.batch,
            "tiles": plan.count, "grid": [len(plan.ys), len(plan.xs)],
            "backend_seconds": round(b, 3), "runtime_seconds": round(r, 3),
            "plain_loop_seconds": round(p, 3), "runtime_over_backend": round(r / b, 3),
            "plain_loop_over_runtime": round(p / r, 3), "repeats": args.repeats}


def _stand_in(folder: Path) -> Path:
    """A two-node ONNX model with the default model's interface and ModelSpec."""
    import onnx
    from onnx import TensorProto, helper

    from hermes_deploy.spec import METADATA_KEY, ModelSpec

    spec = ModelSpec(scale=2, in_channels=3, out_channels=3, size_multiple=16, min_size=1,
                     tile_overlap=16, receptive_radius=9, context_channels=48, precision="fp32",
                     io_dtype="float32", target="portable", opset=18, fidelity=True,
                     context_graph="stand-in.context.onnx", preset="stand-in")
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", 3, "h", "w"])
    c = helper.make_tensor_value_info("context", TensorProto.FLOAT, ["b", 48])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["b", 3, "H", "W"])
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    main = helper.make_graph([helper.make_node("Resize", ["input", "", "scales"], ["output"],
                                               mode="nearest")], "stand_in", [x, c], [y], [scales])
    ctx_in = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", 3, "h", "w"])
    ctx_out = helper.make_tensor_value_info("context", TensorProto.FLOAT, ["b", 48])
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 48])
    nodes = [helper.make_node("ReduceMean", ["input", "axes"], ["m"], keepdims=1),
             helper.make_node("Expand", ["m", "ones"], ["e"]),
             helper.make_node("Reshape", ["e", "shape"], ["context"])]
    ones = helper.make_tensor("ones", TensorProto.INT64, [4], [1, 48, 1, 1])
    axes = helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3])
    ctx = helper.make_graph(nodes, "stand_in_context", [ctx_in], [ctx_out], [shape, ones, axes])
    for graph, name in ((main, "stand-in.onnx"), (ctx, "stand-in.context.onnx")):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        model.ir_version = 9
        model.metadata_props.add(key=METADATA_KEY, value=spec.to_json())
        onnx.save(model, folder / name)
    return folder / "stand-in.onnx"


def _child(args) -> None:
    """Runs in a fresh process: one image through the runtime, prints its peak RSS."""
    from hermes_deploy.runtime.pipeline import restore_file
    from hermes_deploy.runtime.plan import TileOptions

    runner = _runner(args)
    t0 = time.perf_counter()
    result = restore_file(runner, args.input, args.output, TileOptions(tile=(args.tile, args.tile),
                                                                       batch=args.batch),
                          max_pixels=0)
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "seconds": time.perf_counter() - t0, "tiles": result.stats.tiles,
                      "output": list(result.out_size)}))


def memory(args) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = str(_stand_in(tmp)) if args.model == "stand-in" else args.model
        for size in args.sizes:
            src = tmp / f"in-{size}.png"
            _photo_png(src, size)
            cmd = [sys.executable, __file__, "_child", "--model", model, "--input", str(src),
                   "--output", str(tmp / f"out-{size}.png"), "--tile", str(args.tile),
                   "--batch", str(args.batch), "--threads", str(args.threads), "--backend", args.backend,
                   "--precision", args.precision]
            res = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if res.returncode:
                raise SystemExit(res.stderr.strip().splitlines()[-1])
            data = json.loads(res.stdout.strip().splitlines()[-1])
            data["size"] = size
            data["output_file_mb"] = round(os.path.getsize(tmp / f"out-{size}.png") / 2**20, 1)
            (tmp / f"out-{size}.png").unlink()
            src.unlink()
            rows.append(data)
            print(f"{size}x{size}: peak RSS {data['peak_rss_mb']:.0f} MB, "
                  f"{data['seconds']:.1f}s, {data['tiles']} tiles", file=sys.stderr)
    peaks = [r["peak_rss_mb"] for r in rows]
    return {"model": args.model, "tile": args.tile, "rows": rows,
            "largest_over_smallest": round(max(peaks) / min(peaks), 3)}


def context_cost(args) -> dict:
    """PSNR-Y on the held-out photos with the context from the whole image, from copies
    downscaled by 2 and 4 (what the runtime does for images over --context-size) and a
    zero context, and how far each output moves from the whole-image context's."""
    from PIL import Image

    from hermes_deploy.quality.degrade import bicubic_down, mod_crop
    from hermes_deploy.quality.metrics import psnr_y
    from hermes_deploy.quality.photos import HELDOUT_PHOTOS, load_photo
    from hermes_deploy.runtime.pipeline import image_context, restore_array
    from hermes_deploy.runtime.plan import TileOptions

    runner = _runner(args)
    rows = []
    for name in HELDOUT_PHOTOS:
        gt = mod_crop(load_photo(name), runner.spec.scale)
        lq = bicubic_down(gt, runner.spec.scale)
        row, reference = {"photo": name}, None
        for factor in (1, 2, 4, "zero"):
            if factor == "zero":
                ctx = np.zeros_like(image_context(runner, lq))
            else:
                small = lq if factor == 1 else np.asarray(
                    Image.fromarray((lq * 255 + 0.5).astype(np.uint8)).resize(
                        (lq.shape[1] // factor, lq.shape[0] // factor), Image.BICUBIC), np.float32) / 255
                ctx = image_context(runner, small)
            out, _ = restore_array(runner, lq, TileOptions(tile=(args.tile, args.tile)), context=ctx)
            label = "zero" if factor == "zero" else f"1/{factor}"
            row[f"psnr_y_context_{label}"] = round(psnr_y(np.clip(out, 0, 1), gt), 4)
            if reference is None:
                reference = out
            else:
                moved = np.abs(out.astype(np.float64) - reference)
                row[f"mean_abs_moved_{label}"] = float(moved.mean())
                row[f"max_abs_moved_{label}"] = float(moved.max())
        rows.append(row)
    memory = []
    for size in args.memory_sizes:
        cmd = [sys.executable, __file__, "_context_child", "--model", args.model, "--size", str(size),
               "--threads", str(args.threads), "--backend", args.backend, "--precision", args.precision]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode:
            raise SystemExit(res.stderr.strip().splitlines()[-1])
        memory.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return {"tile": args.tile, "rows": rows, "context_memory": memory}


def _context_child(args) -> None:
    """Runs in a fresh process: the context graph alone on a size x size photograph;
    prints the peak RSS over the RSS once the model is loaded and warmed on 64x64."""
    from hermes_deploy.quality.photos import load_photo
    from hermes_deploy.runtime.pipeline import image_context

    runner = _runner(args)
    photo = load_photo("astronaut")
    n = -(-args.size // photo.shape[0])
    image = np.ascontiguousarray(np.tile(photo, (n, n, 1))[:args.size, :args.size], np.float32)
    image_context(runner, image[:64, :64])
    before = _rss_mb()
    t0 = time.perf_counter()
    image_context(runner, image)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"size": args.size, "rss_loaded_mb": round(before, 1), "peak_rss_mb": round(peak, 1),
                      "context_mb": round(peak - before, 1), "seconds": round(seconds, 2)}))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("bench_runtime: no VmRSS in /proc/self/status")


def tiles(args) -> dict:
    """README's tiling table (module doc)."""
    from tiled_vs_whole import README_ROWS, measure

    runner = _runner(args)
    rows = []
    for photo, h, w, tile in README_ROWS:
        print(f"... {photo} {h}x{w}, tile {tile}", file=sys.stderr, flush=True)
        rows.append(measure(runner, photo, h, w, tile, batch=args.batch))
    return {"overlap": runner.spec.tile_overlap, "rows": rows}


def _print_context(result: dict) -> None:
    print(f"context from the whole input / copies downscaled 2x and 4x / zero, tiles of {result['tile']}:")
    print(f"{'photo':<10}{'PSNR-Y whole':>13}{'1/2':>9}{'1/4':>9}{'zero':>9}   output moved (mean | max abs)")
    for r in result["rows"]:
        moved = "   ".join(f"{k} {r[f'mean_abs_moved_{k}']:.1e} | {r[f'max_abs_moved_{k}']:.1e}"
                           for k in ("1/2", "1/4", "zero"))
        print(f"{r['photo']:<10}{r['psnr_y_context_1/1']:>13.4f}{r['psnr_y_context_1/2']:>9.4f}"
              f"{r['psnr_y_context_1/4']:>9.4f}{r['psnr_y_context_zero']:>9.4f}   {moved}")
    for k in ("1/2", "1/4", "zero"):
        print(f"largest mean |output moved| over the photos, context {k}: "
              f"{max(r[f'mean_abs_moved_{k}'] for r in result['rows']):.1e}; largest |output moved|: "
              f"{max(r[f'max_abs_moved_{k}'] for r in result['rows']):.1e}")
    print("context graph alone, fresh process (peak RSS over the RSS with the model loaded):")
    for m in result["context_memory"]:
        print(f"  {m['size']}x{m['size']}: {m['context_mb']:.0f} MB (peak RSS {m['peak_rss_mb']:.0f} MB, "
              f"model loaded {m['rss_loaded_mb']:.0f} MB, {m['seconds']:.1f} s)")


def main() -> None:
    from header import header, print_header

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--size", type=int, default=768)
    o.add_argument("--repeats", type=int, default=3)
    m = sub.add_parser("memory")
    m.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192])
    x = sub.add_parser("context")
    x.add_argument("--memory-sizes", type=int, nargs="*", default=[512, 1024],
                   help="sizes for the context graph's memory (none: skip)")
    t = sub.add_parser("tiles")
    c = sub.add_parser("_child")
    c.add_argument("--input")
    c.add_argument("--output")
    cc = sub.add_parser("_context_child")
    cc.add_argument("--size", type=int)
    for p, default_model, tile, batch in ((o, "default", 128, 1), (m, "stand-in", 256, 1), (c, "default", 256, 1),
                                          (x, "default", 128, 1), (t, "default", 0, 4), (cc, "default", 0, 1)):
        p.add_argument("--model", default=default_model)
        if tile:
            p.add_argument("--tile", type=int, default=tile)
        p.add_argument("--batch", type=int, default=batch)
        p.add_argument("--threads", type=int, default=2, help="0: all cores")
        p.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "openvino", "torch", "auto"))
        p.add_argument("--precision", default="f32", choices=("f32", "bf16", "int8"))
        p.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.cmd == "_child":
        return _child(args)
    if args.cmd == "_context_child":
        return _context_child(args)
    head = header(args.backend, args.precision, args.threads, model=args.model)
    if not args.json:
        print_header(head)
    result = {"overhead": overhead, "memory": memory, "context": context_cost, "tiles": tiles}[args.cmd](args)
    if args.json:
        if args.cmd == "tiles":
            result["rows"] = [vars(r) for r in result["rows"]]
        print(json.dumps({"header": head, **result}, indent=2))
    elif args.cmd == "tiles":
        from tiled_vs_whole import format_table

        print(f"default overlap {result['overlap']} px, batch {args.batch}; tiled vs whole-image output")
        print(format_table(result["rows"]))
    elif args.cmd == "context":
        _print_context(result)
    elif args.cmd == "overhead":
        print(f"{result['backend']}, {result['size']}x{result['size']} input, {result['tiles']} tiles "
              f"of {result['tile']} (batch {result['batch']}), median of {result['repeats']}:")
        print(f"  backend only   {result['backend_seconds']:8.2f} s")
        print(f"  runtime        {result['runtime_seconds']:8.2f} s   x{result['runtime_over_backend']:.3f} "
              "of the backend (target <= 1.15)")
        print(f"  plain loop     {result['plain_loop_seconds']:8.2f} s   x{result['plain_loop_over_runtime']:.3f} "
              "of the runtime")
    else:
        for r in result["rows"]:
            print(f"{r['size']}x{r['size']} -> {r['output'][0]}x{r['output'][1]}: peak RSS "
                  f"{r['peak_rss_mb']:.0f} MB ({r['tiles']} tiles, {r['seconds']:.1f}s)")
        print(f"largest / smallest peak RSS: {result['largest_over_smallest']:.3f} (target <= 1.30)")


if __name__ == "__main__":
    main()
