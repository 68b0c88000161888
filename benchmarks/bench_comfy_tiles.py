"""ComfyUI's stock upscale node on a HERMES descriptor, against HERMES's own tiling.

ComfyUI's "Upscale Image (using Model)" tiles every upscale model itself and ignores the
descriptor's declared tiling. Its loop, as its documentation and ``comfy.utils`` describe
it (written here from that description, not copied):

* an image that fits one tile (both sides <= 512) is one call;
* otherwise tile starts run from 0 in steps of ``tile - overlap`` (512 - 32) while they
  are below ``side - overlap``; each start is clamped to ``side - overlap`` and the tile
  is cut at the image end, so the last one is usually shorter;
* each tile is one call of the model (here: the spandrel descriptor, so each tile
  computes its own per-image context and routes by itself);
* each output tile is weighted by a linear feather of ``overlap * scale`` output pixels
  at each of its four edges (image borders included), summed, and divided by the summed
  weights;
* after an out-of-memory error the tile is halved (``--comfy-tiles 512,256`` shows both).

The same loop is also run with every tile given the whole image's context, which
separates the cost of per-tile contexts from that of the loop's grid and feather.

Against that: the descriptor called once on the whole image (HERMES's internal tiling:
256 px tiles on the runtime's grid and blend, one context), and the whole image in one
pass of the network (the reference). PSNR (peak 1.0, outputs clamped to [0, 1] as both
hosts clamp) of each against the reference, for today's default and for a stand-in
that routes (:func:`routing_standin`), with the number of ComfyUI tiles whose context
picks other experts than the whole image's.

    python benchmarks/bench_comfy_tiles.py [--photos coffee,rocket,motorcycle_left] [--comfy-tiles 512] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from header import format_header, header  # noqa: E402

TILE, OVERLAP = 512, 32  # ComfyUI's ImageUpscaleWithModel
PHOTOS = ("coffee", "rocket", "motorcycle_left")  # the bundled photographs wider than 512 px


def comfy_starts(length: int, tile: int = TILE, overlap: int = OVERLAP) -> list[tuple[int, int]]:
    """(start, length) of ComfyUI's tiles along one side (see the module docstring)."""
    if length <= tile:
        return [(0, length)]
    starts = [max(0, min(length - overlap, p)) for p in range(0, length - overlap, tile - overlap)]
    return [(p, min(tile, length - p)) for p in starts]


def feather(n_out: int, width: int) -> torch.Tensor:
    """1-D weights of one output tile side: a linear ramp of ``width`` pixels at both ends."""
    w = torch.ones(n_out)
    if width < n_out:
        for t in range(width):
            w[t] *= (t + 1) / width
            w[n_out - 1 - t] *= (t + 1) / width
    return w


@torch.inference_mode()
def comfy_tiled(call, image: torch.Tensor, scale: int, tile: int = TILE, overlap: int = OVERLAP,
                on_tile=None) -> torch.Tensor:
    """ComfyUI's tiled upscale of one (1, C, H, W) image with ``call`` once per tile."""
    _, c, h, w = image.shape
    if h <= tile and w <= tile:
        if on_tile is not None:
            on_tile(image)
        return call(image)
    out = torch.zeros(1, c, scale * h, scale * w)
    weight = torch.zeros(1, 1, scale * h, scale * w)
    for y, th in comfy_starts(h, tile, overlap):
        for x, tw in comfy_starts(w, tile, overlap):
            piece = image[..., y:y + th, x:x + tw]
            if on_tile is not None:
                on_tile(piece)
            result = call(piece)
            mask = feather(scale * th, scale * overlap)[:, None] * feather(scale * tw, scale * overlap)[None, :]
            out[..., scale * y:scale * (y + th), scale * x:scale * (x + tw)] += result * mask
            weight[..., scale * y:scale * (y + th), scale * x:scale * (x + tw)] += mask
    return out / weight


@torch.no_grad()
def routing_standin(model, gain: float = 1000.0):
    """``model`` with its router's logit layer scaled by ``gain`` and its bias re-centred
    on the mean logits of the bundled photographs (whole images).

    Today's default barely routes: its logits differ by less than 0.01 between images
    (weights/README.md). Scaling the layer alone keeps one expert ahead everywhere (its
    lead is in the bias); re-centring makes the small differences between contexts
    decide, so different parts of a photograph pick different experts, as a router
    trained to specialize would. A stand-in for measuring tiling, not a model to use.
    """
    from hermes_deploy.quality.photos import HELDOUT_PHOTOS, TRAIN_PHOTOS, load_photo

    router = model.moe.router
    logits = [router(model.compute_context(_tensor(load_photo(n))))[0]
              for n in HELDOUT_PHOTOS + TRAIN_PHOTOS]
    centre = torch.stack(logits).mean(0)
    router.logits.weight.mul_(gain)
    router.logits.bias.copy_(gain * (router.logits.bias - centre))
    return model


def _tensor(photo: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(photo, np.float32)).permute(2, 0, 1)[None]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.double().clamp(0, 1) - b.double().clamp(0, 1)) ** 2).mean().item()
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


@torch.inference_mode()
def experts(model, image: torch.Tensor) -> tuple[int, ...]:
    """The experts the context of ``image`` routes to (top-k indices)."""
    _, gates = model.moe.route(model.compute_context(image))
    return tuple(int(i) for i in torch.nonzero(gates[0] > 0).flatten())


def measure(model, descriptor, name: str, comfy_tiles: list[int]) -> dict:
    """One photograph: whole pass, ComfyUI's loop at each tile size, the descriptor."""
    from hermes_deploy.quality.photos import load_photo
    from hermes_deploy.spandrel.tiling import recommended_overlap, tile_plan

    image = _tensor(load_photo(name))
    s = model.config.scale
    with torch.inference_mode():
        whole = model(image).clamp(0, 1)
    whole_experts = experts(model, image)
    row = {"photo": name, "size": list(image.shape[-2:]), "whole_experts": list(whole_experts),
           "comfy": []}
    with torch.inference_mode():
        context = model.compute_context(image)
    for tile in comfy_tiles:
        pieces = []
        out = comfy_tiled(descriptor, image, s, tile, OVERLAP, on_tile=pieces.append)
        unlike = sum(experts(model, p) != whole_experts for p in pieces)
        # the same loop with every tile given the whole image's context: what is left is
        # the cost of the loop's grid and feather alone
        shared = comfy_tiled(lambda p: model(p, context=context).clamp(0, 1), image, s, tile, OVERLAP)
        row["comfy"].append({"tile": tile, "tiles": len(pieces), "contexts": len(pieces),
                             "tiles_routed_unlike_whole": unlike, "psnr_db": round(psnr(out, whole), 2),
                             "psnr_shared_context_db": round(psnr(shared, whole), 2)})
    plan = tile_plan(model, *image.shape[-2:], 256, recommended_overlap(descriptor.model))
    ours = descriptor(image)
    row["internal"] = {"tile": 256, "overlap": plan.overlap, "tiles": plan.count, "contexts": 1,
                       "psnr_db": round(psnr(ours, whole), 2)}
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", default=",".join(PHOTOS), help="bundled photo names")
    parser.add_argument("--comfy-tiles", default="512", help="ComfyUI tile sizes to run "
                        "(256, 128: after one or two out-of-memory halvings)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from hermes_deploy.cache import bundled_models
    from hermes_deploy.model.checkpoint import CONFIG_KEY, config_tensor, load_checkpoint
    from hermes_deploy.spandrel import register
    from hermes_deploy.spandrel.compat import import_spandrel

    register()
    spandrel = import_spandrel()
    fields = header("torch (spandrel descriptor)", "f32", args.threads, model="default (tiny-x2)",
                    comfy=f"tile {args.comfy_tiles}, overlap {OVERLAP}, feathered", internal="tile 256")
    tiles = [int(t) for t in args.comfy_tiles.split(",")]
    if not args.json:
        print(format_header(fields), flush=True)
        print("| model | photo (input) | " + " | ".join(
            f"ComfyUI's node, {t} px tiles | same loop, whole-image context" for t in tiles)
            + " | HERMES internal tiling |")
        print("|---|---|" + "---|---|" * len(tiles) + "---|", flush=True)
    rows = []
    for label in ("default", "routing stand-in"):
        model = load_checkpoint(bundled_models()["default"])
        if label != "default":
            model = routing_standin(model)
        state = {**model.state_dict(), CONFIG_KEY: config_tensor(model.config)}
        descriptor = spandrel.ModelLoader().load_from_state_dict(state).eval()
        for name in args.photos.split(","):
            row = {"model": label, **measure(model, descriptor, name, tiles)}
            rows.append(row)
            if not args.json:
                h, w = row["size"]
                cells = [f"{c['psnr_db']:.2f} dB ({c['tiles']} tiles, {c['tiles_routed_unlike_whole']} "
                         f"routed unlike the whole) | {c['psnr_shared_context_db']:.2f} dB"
                         for c in row["comfy"]]
                i = row["internal"]
                print(f"| {label} | {name} {w}x{h} | " + " | ".join(cells)
                      + f" | {i['psnr_db']:.2f} dB ({i['tiles']} tiles, 1 context) |", flush=True)
    if args.json:
        print(json.dumps({"header": fields, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
