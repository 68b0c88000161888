"""``hermes-export``: deploy HERMES-IR/SR models.

Heavy imports (torch) happen inside the commands so ``--help`` is instant.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .common import JsonOpt, ModelArg, PrecisionOpt, ScaleOpt, ThreadsOpt, guarded, parse_tile
from .build_cmd import build
from .calibrate_cmd import calibrate
from .convert_cmd import convert
from .infer_cmd import bench, infer
from .triton_cmd import serve_triton, triton

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
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


@app.command("eval")
def eval_cmd(model: str = ModelArg,
             images: list[str] = typer.Argument(None, help="Image files, folders or bundled photo names "
                                                 "(default: the held-out photos)."),
             scale: int = ScaleOpt,
             task: str = typer.Option(None, help="sr (default for x2-x4), denoise, deblur-gaussian, deblur-motion."),
             sigma: float = typer.Option(15.0, help="Noise sigma on the 0..255 scale for --task denoise."),
             seed: int = typer.Option(0, help="Seed of the degradation."),
             backend: str = typer.Option(None, "--backend", "-b",
                                         help="Run an exported .onnx on openvino or onnxruntime "
                                              "(default: onnxruntime; a checkpoint runs in torch)."),
             precision: str = PrecisionOpt, threads: int = ThreadsOpt,
             reference: str = typer.Option(None, "--reference", "-r",
                                           help="Torch model (checkpoint or bundled name) the "
                                                "graph came from: adds PSNR against its FP32 output."),
             json_out: bool = JsonOpt) -> None:
    """Degrade ground-truth images, restore them, print PSNR/SSIM-Y against the baseline."""
    with guarded():
        from ..checks.evaluate import evaluate_model

        report = evaluate_model(model, images, task=task, scale=scale, sigma=sigma, seed=seed,
                                backend=backend, precision=precision, threads=threads,
                                reference=reference)
        if json_out:
            typer.echo(json.dumps(report.to_dict(), indent=2))
            return
        typer.echo(f"{report.task}; PSNR/SSIM on Y (BT.601), border crop = scale")
        typer.echo(report.table())
        if "psnr_vs_reference" in report.extra:
            typer.echo("PSNR vs the FP32 torch reference: " + ", ".join(
                f"{k} {v:.2f} dB" for k, v in report.extra["psnr_vs_reference"].items()))
        util = report.extra.get("utilization")
        if util:
            typer.echo("routing mass: " + ", ".join(f"{k} {v:.1%}" for k, v in util.items()))


@app.command("onnx")
def onnx_cmd(model: str = ModelArg,
             output: Path = typer.Option(..., "--output", "-o", help="ONNX file to write (.onnx)."),
             target: str = typer.Option("portable", help="portable (standard ops only) or tensorrt "
                                        "(hermes plugin nodes)."),
             opset: int = typer.Option(18, help="ONNX opset."),
             tile: str = typer.Option(None, help="Fixed input size HxW (default: dynamic)."),
             batch: int = typer.Option(None, help="Fixed batch (default: dynamic)."),
             precision: str = typer.Option("fp32", help="fp32 or fp16 (FP16 with FP32 islands)."),
             keep_generative: bool = typer.Option(False, "--keep-generative",
                                                  help="Keep E4; its noise becomes a graph input."),
             single_graph: bool = typer.Option(
                 False, "--single-graph",
                 help="One graph, one image in and one out, the context computed inside from the "
                      "input it gets (for vs-mlrt, chaiNNer and other ONNX tools). Equal to the "
                      "pair on whole images; each tile of a tiled run routes by itself."),
             json_out: bool = JsonOpt) -> None:
    """Export a model to ONNX (+ its companion context graph, unless --single-graph)."""
    with guarded():
        from ..export.onnx_export import ExportOptions, export_onnx
        from .common import echo_err

        options = ExportOptions(target=target, opset=opset, tile=parse_tile(tile), batch=batch,
                                precision=precision, keep_generative=keep_generative,
                                single_graph=single_graph)
        result = export_onnx(model, output, options, progress=lambda m: echo_err(f"... {m}"))
        if json_out:
            typer.echo(json.dumps({"path": str(result.path),
                                   "context": str(result.context_path) if result.context_path else None,
                                   "seconds": result.seconds, "nodes": result.node_counts,
                                   "spec": json.loads(result.spec.to_json()),
                                   "fp16": result.fp16_report}, indent=2))
            return
        custom = {k: v for k, v in result.node_counts.items() if "::" in k}
        typer.echo(f"wrote {result.path} ({sum(result.node_counts.values())} nodes"
                   + (f", custom {custom}" if custom else ", standard ops only") + ")")
        if result.context_path:
            typer.echo(f"wrote {result.context_path} (per-image context graph)")
        else:
            typer.echo("single graph: the context is computed inside from the input it gets, "
                       "so each tile of a tiled run routes by itself")
        s = result.spec
        typer.echo(f"spec: x{s.scale}, {s.precision}, target {s.target}, size multiple "
                   f"{s.size_multiple}, recommended overlap {s.tile_overlap}px "
                   f"(receptive radius {s.receptive_radius}px); {result.seconds:.0f}s")
        if result.fp16_report:
            typer.echo(f"fp16: {result.fp16_report.get('summary', result.fp16_report)}")


@app.command()
def verify(onnx_file: Path = typer.Argument(..., help="Exported main graph (.onnx)."),
           reference: str = typer.Option(..., "--reference", "-r",
                                         help="The checkpoint or bundled model it was exported from."),
           images: list[str] = typer.Option(None, "--images", help="Image files/folders/photo names "
                                            "to include (default: one bundled photo)."),
           tolerance: float = typer.Option(1e-4, help="Max abs error allowed for FP32 graphs."),
           min_psnr: float = typer.Option(45.0, help="Min PSNR (dB) for FP16/INT8 graphs."),
           json_out: bool = JsonOpt) -> None:
    """Run the graph in onnxruntime against the torch deploy model; non-zero exit past tolerance."""
    with guarded():
        from ..checks.verify import verify_onnx

        report = verify_onnx(onnx_file, reference, images or None, max_abs_tol=tolerance,
                             min_psnr=min_psnr)
        if json_out:
            typer.echo(json.dumps({"passed": report.passed, "cases": [c.__dict__ for c in report.cases]},
                                  indent=2, default=str))
        else:
            typer.echo(report.table())
        if not report.passed:
            raise typer.Exit(1)


@app.command()
def train(preset_name: str = typer.Option("tiny", "--preset", help="Architecture preset."),
          scale: int = ScaleOpt,
          steps: int = typer.Option(1200, help="Optimizer steps."),
          batch: int = typer.Option(16, help="Crops per step."),
          lr_patch: int = typer.Option(40, help="Low-resolution crop side in pixels."),
          lr: float = typer.Option(1e-3, help="Peak learning rate (AdamW, cosine schedule)."),
          seed: int = typer.Option(0, help="Seed of weights, crops and degradations."),
          out: Path = typer.Option(Path("runs/tiny-x2"), "--out", "-o", help="Run folder."),
          val_every: int = typer.Option(200, help="Validate on the held-out photos every N steps."),
          max_minutes: float = typer.Option(0.0, help="Stop after this long (0 = no limit)."),
          threads: int = typer.Option(0, help="Torch CPU threads (0 = default)."),
          router_steps: int | None = typer.Option(
              None, show_default="steps/4, at most 250; 250 with --steps 0",
              help="Stage 2 (after --steps): router calibration steps (0 = skip)."),
          init: str = typer.Option("", help="Start from this checkpoint instead of from scratch.")) -> None:
    """Train a fidelity-mode model on the bundled photographs: stage 1 (--steps), then
    router calibration (--router-steps). Reproduces the default (hermes_deploy/weights/README.md)."""
    with guarded():
        from ..training import TrainConfig, train as run_training

        cfg = TrainConfig(preset=preset_name, scale=scale, steps=steps, batch=batch,
                          lr_patch=lr_patch, lr=lr, seed=seed, out_dir=str(out),
                          val_every=val_every, max_minutes=max_minutes, threads=threads,
                          router_steps=router_steps, init=init)
        result = run_training(cfg)
        for line in result.summary():
            typer.echo(line)


app.command("infer")(infer)
app.command("bench")(bench)
app.command("calibrate")(calibrate)
app.command("convert")(convert)
app.command("build")(build)
app.command("triton")(triton)
app.command("serve-triton")(serve_triton)


def _is_usage_error(exc: Exception) -> bool:
    """click's usage errors, whichever click raised them (typer vendors its own copy)."""
    return (callable(getattr(exc, "format_message", None))
            and any(k.__name__ == "UsageError" for k in type(exc).__mro__))


def main() -> None:
    """The ``hermes-export`` entry point: every outcome is an exit status and, on failure,
    one line on stderr - usage errors (exit 2) included; an unexpected error (a bug) says
    how to get its traceback (``HERMES_DEBUG=1``) instead of printing it."""
    import sys

    from ..atomic import discard_leftovers
    from .interrupts import install

    install()
    try:
        code = _run_app()
    finally:
        discard_leftovers()  # a run that ends leaves no temporary behind, however it ends
    sys.exit(code if isinstance(code, int) else 0)


def _run_app():
    """The app, with every outcome turned into an exit code or one line (see :func:`main`)."""
    import os
    import sys

    from .common import EXIT_USER_ERROR
    from .interrupts import Interrupted

    try:
        code = app(prog_name="hermes-export", standalone_mode=False)
    except typer.Abort:
        print("hermes-export: aborted", file=sys.stderr)
        code = 130
    except Interrupted as exc:  # outside a command body (argument parsing, imports)
        print(f"hermes-export: interrupted ({exc.args[0]})", file=sys.stderr)
        code = exc.exit_code
    except Exception as exc:
        if _is_usage_error(exc):
            if type(exc).__name__ == "NoArgsIsHelpError":
                exc.show()  # the help text
                sys.exit(0)
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else "hermes-export"
            message = " ".join(exc.format_message().split())
            print(f"hermes-export: error: {message} (see '{where} --help')", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        # a bug: one line unless asked for the traceback
        if os.environ.get("HERMES_DEBUG"):
            raise
        print(f"hermes-export: internal error: {type(exc).__name__}: "
              f"{' '.join(str(exc).split())[:300]}; rerun with HERMES_DEBUG=1 for the traceback "
              "and report it", file=sys.stderr)
        code = 1
    return code


if __name__ == "__main__":
    main()
