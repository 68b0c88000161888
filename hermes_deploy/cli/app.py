"""``hermes-export``: deploy HERMES-IR/SR models.

Heavy imports (torch) happen inside the commands so ``--help`` is instant.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .common import JsonOpt, ModelArg, ScaleOpt, guarded

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Deploy HERMES-IR/SR image restoration and super-resolution models.")


@app.command()
def info(model: str = ModelArg, scale: int = ScaleOpt, json_out: bool = JsonOpt,
         height: int = typer.Option(720, help="Output height for the MAC count."),
         width: int = typer.Option(1280, help="Output width for the MAC count.")) -> None:
    """Print architecture, parameters and MACs (at a 1280x720 output) of a model."""
    with guarded():
        from ..model.info import model_info

        report = model_info(model, scale=scale, out_h=height, out_w=width)
        if json_out:
            typer.echo(json.dumps(report, indent=2))
            return
        cfg = report["config"]
        typer.echo(f"model       {report['source']}  (preset {cfg['preset']}, x{cfg['scale']}, "
                   f"{'deploy' if cfg['deploy'] else 'training'} form, "
                   f"fidelity {'on' if cfg['fidelity'] else 'off'})")
        typer.echo(f"parameters  {report['params']:,} (deploy form, fidelity: "
                   f"{report['deploy_params']:,})")
        typer.echo(f"MACs        {report['macs'] / 1e9:.2f} G for a {width}x{height} output "
                   f"(deploy form: {report['deploy_macs'] / 1e9:.2f} G)")
        typer.echo(f"size multiple {report['size_multiple']}, context vector "
                   f"{report['context_channels']} values")


@app.command("deploy")
def deploy_cmd(checkpoint: str = typer.Argument(..., help="Training-form checkpoint or bundled name."),
               output: Path = typer.Option(..., "--output", "-o", help="Deploy checkpoint to write (.safetensors)."),
               keep_generative: bool = typer.Option(False, "--keep-generative",
                                                    help="Keep the generative expert (fidelity off)."),
               scale: int = ScaleOpt) -> None:
    """Re-parameterize (and strip the generative expert) into a deploy checkpoint."""
    with guarded():
        from ..model.info import deploy_checkpoint

        result = deploy_checkpoint(checkpoint, output, fidelity=not keep_generative, scale=scale)
        typer.echo(f"wrote {result['output']}: {result['params_before']:,} -> "
                   f"{result['params_after']:,} parameters, {result['convs_before']} -> "
                   f"{result['convs_after']} convs")
        typer.echo(f"max abs difference vs training form (fidelity "
                   f"{'on' if result['fidelity'] else 'off'}): {result['max_abs_diff']:.3e}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
