"""``hermes-export convert``: a checkpoint in the forms other tools load.

Thin: calls :func:`~hermes_deploy.model.checkpoint.convert_checkpoint`; torch is
imported inside the command.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .common import JsonOpt, guarded


def convert(source: str = typer.Argument(..., help="Checkpoint (.safetensors, .pth) or bundled name."),
            output: Path = typer.Argument(..., help="File to write: .safetensors (config in the metadata "
                                          "and as a tensor) or .pth (a plain state dict with the config "
                                          "tensor, as spandrel, ComfyUI and chaiNNer load it)."),
            deploy: bool = typer.Option(False, "--deploy", help="Write the re-parameterized fidelity "
                                        "form (no generative expert)."),
            json_out: bool = JsonOpt) -> None:
    """Rewrite a checkpoint as .safetensors or .pth, optionally in deploy form."""
    with guarded():
        from ..model.checkpoint import convert_checkpoint

        result = convert_checkpoint(source, output, deploy=deploy)
        cfg = result.config
        if json_out:
            typer.echo(json.dumps({"output": str(result.output), "params": result.params,
                                   "deploy": cfg.deploy, "fidelity": cfg.fidelity, "scale": cfg.scale,
                                   "max_abs_diff": result.max_abs_diff}, indent=2))
            return
        typer.echo(f"wrote {result.output} (preset {cfg.preset}, x{cfg.scale}, "
                   f"{'deploy' if cfg.deploy else 'training'} form, fidelity "
                   f"{'on' if cfg.fidelity else 'off'}, {result.params:,} parameters)")
        if result.max_abs_diff is not None:
            typer.echo(f"max abs difference vs the source (fidelity on): {result.max_abs_diff:.3e}")
