"""What per-tile routing costs: the single graph against the pair, tiled vs whole image.

    python benchmarks/bench_single_graph.py [--tiles 64 256] [--router-gain 100] [--json]

The pair (main graph + context graph) feeds every tile the context of the whole image;
the single graph (``hermes-export onnx --single-graph``) computes a context from each
tile it is given, so under a tiling caller each tile routes by itself. For each held-out
photograph (full size) and each ``--tiles`` size, both graphs run through the runtime's
tiling (default overlap, onnxruntime f32, 2 threads) and the output is compared with the
pair's whole-image output: PSNR in dB (peak 1.0, float outputs). The whole-image rows show
that the two graphs are the same function (max abs difference).

Two models: the bundled default, whose router barely routes (its logits differ by less
than 0.01 between images), and a routing stand-in: the default with the router's logit
layer multiplied by ``--router-gain``, so that contexts that differ a little pick
different experts. The stand-in is not a trained model; it shows what tiles that route by
themselves cost once a router routes. "pairs" counts the distinct top-2 expert pairs the
64-px tiles of the photographs pick on their own, against one per image for the pair.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from header import header, print_header  # noqa: E402

THREADS = 2


def routing_stand_in(folder: Path, gain: float) -> Path:
    """The default checkpoint with its router's logit layer scaled by ``gain``."""
    import torch

    from hermes_deploy.model.api import load_model
    from hermes_deploy.model.checkpoint import save_checkpoint

    model = load_model("default")
    with torch.no_grad():
        model.moe.router.logits.weight.mul_(gain)
        model.moe.router.logits.bias.mul_(gain)
    return save_checkpoint(model, folder / f"router-x{gain:g}.safetensors")


def tile_pairs(source: str, photos, tile: int) -> int:
    """Distinct top-2 expert pairs over all ``tile``-px tiles of ``photos`` routed alone."""
    import torch

    from hermes_deploy.model.api import load_model
    from hermes_deploy.model.deploy import deploy

    model = deploy(load_model(source), fidelity=True)
    seen = set()
    with torch.no_grad():
        for _, img in photos:
            x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)[None], np.float32))
            for top in range(0, img.shape[0] - tile + 1, tile):
                for left in range(0, img.shape[1] - tile + 1, tile):
                    ctx = model.compute_context(x[..., top:top + tile, left:left + tile])
                    _, gates = model.moe.route(ctx)
                    seen.add(tuple(int(i) for i in torch.nonzero(gates[0] > 0).flatten()))
    return len(seen)


def measure(source: str, folder: Path, photos, tiles, say) -> dict:
    from hermes_deploy.engines.ort_runner import OrtRunner
    from hermes_deploy.export.onnx_export import ExportOptions, export_onnx
    from hermes_deploy.quality.metrics import psnr
    from hermes_deploy.runtime.pipeline import restore_array
    from hermes_deploy.runtime.plan import TileOptions

    graphs = {}
    for form in ("pair", "single"):
        say(f"exporting {Path(source).stem} as the {form}")
        graphs[form] = export_onnx(source, folder / f"{Path(source).stem}.{form}.onnx",
                                   ExportOptions(single_graph=form == "single")).path
    rows, whole_diff = [], 0.0
    outputs: dict = {}
    for form, path in graphs.items():
        with OrtRunner(path, threads=THREADS) as runner:
            for name, img in photos:
                big = (img.shape[0], img.shape[1])
                outputs[form, name, "whole"] = restore_array(runner, img, TileOptions(tile=big))[0]
                for t in tiles:
                    outputs[form, name, t] = restore_array(runner, img, TileOptions(tile=(t, t)))[0]
    for name, _ in photos:
        ref = outputs["pair", name, "whole"]
        whole_diff = max(whole_diff, float(np.abs(outputs["single", name, "whole"] - ref).max()))
        for t in tiles:
            rows.append({"photo": name, "tile": t,
                         "pair_db": psnr(outputs["pair", name, t], ref),
                         "single_db": psnr(outputs["single", name, t], ref)})
    return {"rows": rows, "whole_max_abs": whole_diff, "tile_pairs": tile_pairs(source, photos, 64)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiles", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--router-gain", type=float, default=100.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from hermes_deploy.quality import HELDOUT_PHOTOS
    from hermes_deploy.quality.photos import load_images

    fields = header("onnxruntime", "f32", THREADS, tiles=args.tiles, router_gain=args.router_gain,
                    photos=list(HELDOUT_PHOTOS))
    if not args.json:
        print_header(fields)
    say = (lambda m: None) if args.json else (lambda m: print(f"... {m}", file=sys.stderr, flush=True))
    photos = load_images(list(HELDOUT_PHOTOS))
    results = {}
    with tempfile.TemporaryDirectory(prefix="hermes-single-") as tmp:
        folder = Path(tmp)
        stand_in = routing_stand_in(folder, args.router_gain)
        for label, source in (("default", "default"), (f"router x{args.router_gain:g}", str(stand_in))):
            results[label] = measure(source, folder, photos, args.tiles, say)
    if args.json:
        print(json.dumps({"header": fields, "results": results}, indent=2))
        return 0
    print(f"{'model':<16}{'photo':<11}{'tile':>5}{'pair dB':>10}{'single dB':>11}{'cost dB':>9}")
    for label, res in results.items():
        for row in res["rows"]:
            print(f"{label:<16}{row['photo']:<11}{row['tile']:>5}{row['pair_db']:>10.2f}"
                  f"{row['single_db']:>11.2f}{row['pair_db'] - row['single_db']:>9.2f}")
        for t in args.tiles:
            sel = [r for r in res["rows"] if r["tile"] == t]
            print(f"{label:<16}{'mean':<11}{t:>5}{np.mean([r['pair_db'] for r in sel]):>10.2f}"
                  f"{np.mean([r['single_db'] for r in sel]):>11.2f}"
                  f"{np.mean([r['pair_db'] - r['single_db'] for r in sel]):>9.2f}")
        print(f"{label}: whole image, single vs pair max abs {res['whole_max_abs']:.2e}; "
              f"64-px tiles routed alone pick {res['tile_pairs']} distinct expert pair(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
