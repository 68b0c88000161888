"""FP16 variant of an exported HERMES graph: measured FP32 islands, then the target.

The FP16 pass (:mod:`.fp16`) runs on the graph with the ``hermes`` custom nodes still in
place: a custom node is one node and is kept FP32 structurally, so the SSM scan and the
DFT are FP32 islands by construction (Casts at their borders), wherever their lowering
later lands. Activation ranges are measured on crops of real photographs from the
training split (never the held-out evaluation photos). For the ``portable`` target the
FP32 lowerings are then attached as functions and inlined.
"""

from __future__ import annotations

import numpy as np

from . import custom_ops
from .fp16 import emulate_fp16, fp16_report, measure_ranges, plan_islands, convert_fp16

CALIBRATION_PHOTOS = ("rocket", "motorcycle_left", "immunohistochemistry")


def calibration_feeds(model, tile: tuple[int, int] | None, batch: int | None,
                      photos=CALIBRATION_PHOTOS, per_photo: int = 2, seed: int = 0) -> list[dict]:
    """``{"input", "context"}`` feeds: crops of real photos, context by the torch model."""
    import torch

    from ..quality import load_photo

    rng = np.random.default_rng(seed)
    h, w = tile or (96, 96)
    b = batch or 1
    feeds = []
    for name in photos:
        img = load_photo(name)
        for _ in range(per_photo):
            crops = []
            for _ in range(b):
                top = int(rng.integers(0, img.shape[0] - h + 1))
                left = int(rng.integers(0, img.shape[1] - w + 1))
                crops.append(img[top:top + h, left:left + w].transpose(2, 0, 1))
            x = np.ascontiguousarray(np.stack(crops), dtype=np.float32)
            with torch.no_grad():
                ctx = model.compute_context(torch.from_numpy(x)).numpy()
            feeds.append({"input": x, "context": ctx})
    return feeds


def inline_lowerings(model):
    """Replace ``hermes`` nodes by their standard-op lowerings (portable target)."""
    import onnx
    from onnx import inliner

    from .graph import clean_graph

    attached = custom_ops.with_lowerings(model)
    inlined = inliner.inline_local_functions(attached)
    keep = [o for o in inlined.opset_import if o.domain != custom_ops.DOMAIN]
    del inlined.opset_import[:]
    inlined.opset_import.extend(keep)
    return clean_graph(inlined)


def make_fp16(main, torch_model, options, islands: bool = True):
    """(fp16 graph, report) from an FP32 graph that still holds the ``hermes`` nodes.

    ``islands=False`` keeps only the structural FP32 nodes (custom ops, shape
    arithmetic): the baseline that shows what the measured islands are for.
    """
    if islands:
        feeds = calibration_feeds(torch_model, options.tile, options.batch)
        plan = plan_islands(main, measure_ranges(custom_ops.with_lowerings(main), feeds))
    else:
        plan = plan_islands(main, {}, op_types_fp32=(), max_abs=float("inf"))
    model16 = convert_fp16(main, plan, keep_io_fp32=True)
    report = fp16_report(plan)
    if options.target == "portable":
        model16 = inline_lowerings(model16)
    return model16, report


def runnable_on_cpu(model):
    """FP16 graphs are checked on CPU through the round-trip emulation (see .fp16)."""
    from onnx import TensorProto

    fp16 = TensorProto.FLOAT16
    has_fp16 = any(i.data_type == fp16 for i in model.graph.initializer) or any(
        v.type.tensor_type.elem_type == fp16 for v in model.graph.value_info)
    return emulate_fp16(model) if has_fp16 else model
