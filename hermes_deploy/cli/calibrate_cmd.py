"""``hermes-export calibrate``: INT8 Q/DQ ONNX from a model and calibration images.

Thin: parses options into :class:`~hermes_deploy.export.int8.Int8Options` and calls
:func:`~hermes_deploy.export.int8.calibrate_int8`; heavy imports happen inside.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .common import JsonOpt, ModelArg, guarded


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for item in values or [] for v in item.split(",") if v.strip())


def calibrate(model: str = ModelArg,
              output: Path = typer.Option(..., "--output", "-o", help="INT8 ONNX file to write (.onnx)."),
              images: list[str] = typer.Option(None, "--images", help="Folder, image files or bundled photo "
                                               "names (ground truth; SR models see their bicubic downscale). "
                                               "Default: the bundled training photographs."),
              method: str = typer.Option("minmax", help="Calibration: minmax, entropy or percentile."),
              samples: int = typer.Option(32, help="Calibration tiles."),
              seed: int = typer.Option(0, help="Seed of the tile draw."),
              tile: str = typer.Option("64x64", help="Tile HxW in input pixels, as the runtime cuts them."),
              batch: int = typer.Option(4, help="Tiles per calibration batch."),
              op_types: str = typer.Option("Conv", "--op-types", help="Op types to quantize: Conv[,MatMul]."),
              exclude: list[str] = typer.Option(None, "--exclude", help="Node names, op types or groups "
                                                "(e.g. head,upsample) kept float; repeat or comma-separate."),
              percentile: float = typer.Option(99.999, help="Percentile for --method percentile."),
              sensitivity: bool = typer.Option(False, "--sensitivity", help="Measure each group's cost and "
                                               "keep the costly ones float (within --budget)."),
              budget: float = typer.Option(0.1, help="PSNR-Y budget in dB for --sensitivity (predicted at "
                                           "a 38 dB image)."),
              ranges: Path = typer.Option(None, "--ranges", help="Reuse ranges saved by an earlier run "
                                          "(*.ranges.json) instead of calibrating."),
              target: str = typer.Option(None, help="portable (lowered scan/DFT) or tensorrt "
                                         "(hermes plugin nodes); default: portable for a model, else the input's."),
              report: Path = typer.Option(None, "--report", help="Write the calibration report (JSON)."),
              single_graph: bool = typer.Option(False, "--single-graph", help="For a model source: "
                                                "export and quantize one graph that computes its context "
                                                "inside (see hermes-export onnx --single-graph)."),
              json_out: bool = JsonOpt) -> None:
    """Calibrate and write an INT8 Q/DQ ONNX (+ its context graph and the ranges JSON)."""
    with guarded():
        from ..errors import InputError
        from ..export.int8 import Int8Options, calibrate_int8
        from .common import echo_err, parse_tile

        if ranges is not None and not ranges.is_file():
            raise InputError(f"--ranges '{ranges}' does not exist; run calibrate with --images first")
        options = Int8Options(method=method, samples=samples, seed=seed, tile=parse_tile(tile),
                              batch=batch, op_types=_split([op_types]), exclude=_split(exclude),
                              percentile=percentile, sensitivity=sensitivity, budget_db=budget,
                              target=target, single_graph=single_graph)
        result = calibrate_int8(model, output, options, images=list(images) if images else None,
                                ranges_path=ranges, report_path=report,
                                progress=lambda m: echo_err(f"... {m}"))
        rep = result.report
        if json_out:
            typer.echo(json.dumps({"path": str(result.path),
                                   "context": str(result.context_path) if result.context_path else None,
                                   "ranges": str(result.ranges_path), "report": rep}, indent=2, default=float))
            return
        typer.echo(f"wrote {result.path} (INT8 Q/DQ, {rep['quantized_nodes']} {'/'.join(rep['op_types'])} "
                   f"nodes quantized, {rep['method']} ranges)")
        typer.echo(f"wrote {result.context_path} (context graph) and {result.ranges_path} (ranges)"
                   if result.context_path else f"wrote {result.ranges_path} (ranges); single graph, "
                   "no context graph")
        if rep.get("float_islands"):
            typer.echo("float islands: " + ", ".join(rep["float_islands"]))
        sens = rep.get("sensitivity")
        if sens:
            last = sens["steps"][-1]
            typer.echo(f"predicted PSNR-Y cost {last['cost_db']:.3f} dB at {sens['reference_psnr_db']:.0f} dB "
                       f"(budget {sens['budget_db']} dB, {'met' if sens['within_budget'] else 'NOT met'})")
        typer.echo(f"{result.seconds:.0f}s")
