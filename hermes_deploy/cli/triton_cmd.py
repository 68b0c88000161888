"""``hermes-export triton``: a Triton Inference Server model repository for a model."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .common import JsonOpt, echo_err, guarded, parse_tile


def triton(artifacts: list[str] = typer.Argument(..., help="Bundled name, checkpoint or .onnx; "
                                                 "or .engine files of one ONNX (one per GPU "
                                                 "architecture)."),
           output: Path = typer.Option(..., "--output", "-o", help="Repository folder to write."),
           network_backend: str = typer.Option("auto", "--network-backend", help="auto "
                                               "(tensorrt for engines, else onnxruntime), "
                                               "onnxruntime, openvino or tensorrt."),
           restore: str = typer.Option("local", "--restore", help="How hermes_restore runs tiles: "
                                       "local (in-process runner on the ONNX pair) or bls "
                                       "(BLS requests to hermes_network, batched by Triton)."),
           restore_backend: str = typer.Option("onnxruntime", "--restore-backend",
                                               help="Runner of --restore local."),
           kind: str = typer.Option("auto", "--kind", help="Network instances on gpu or cpu "
                                    "(auto: gpu for engines)."),
           instances: int = typer.Option(1, "--instances", help="Instances per model."),
           max_batch_size: int = typer.Option(8, "--max-batch-size", help="Tiles per network "
                                              "call the dynamic batcher may form."),
           tile: str = typer.Option("256", "--tile", help="hermes_restore's tile, HxW or N."),
           overlap: int = typer.Option(None, "--overlap", help="Tile overlap in input pixels."),
           batch: int = typer.Option(1, "--batch", help="Tiles per call from hermes_restore."),
           threads: int = typer.Option(0, "--threads", help="Threads of the local runner."),
           json_out: bool = JsonOpt) -> None:
    """Write a Triton model repository: network, context graph and hermes_restore."""
    with guarded():
        from ..scaleout.triton_repo import TritonOptions, write_repository

        options = TritonOptions(network_backend=network_backend, restore=restore,
                                restore_backend=restore_backend, kind=kind, instances=instances,
                                max_batch_size=max_batch_size, tile=parse_tile(tile),
                                overlap=overlap, batch=batch, threads=threads)
        repo = write_repository(artifacts, output, options, say=lambda m: echo_err(f"... {m}"))
        if json_out:
            typer.echo(json.dumps({"repository": str(repo.path), "network": repo.network_platform,
                                   "models": {k: str(v) for k, v in repo.models.items()},
                                   "plugins": repo.plugins, "command": repo.server_command()},
                                  indent=2))
            return
        for name, folder in repo.models.items():
            typer.echo(f"wrote {folder}/ ({name})")
        typer.echo(f"network: {repo.network_platform}; hermes_restore: {restore}")
        typer.echo(f"serve it: {repo.server_command()}")


def serve_triton(repository: Path = typer.Argument(..., help="Repository written by "
                                                   "hermes-export triton (--restore local)."),
                 host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on "
                                          "(0.0.0.0: every interface)."),
                 http_port: int = typer.Option(8000, "--http-port", help="HTTP/REST port."),
                 grpc_port: int = typer.Option(8001, "--grpc-port", help="gRPC port."),
                 dry_run: bool = typer.Option(False, "--dry-run", help="Print the tritonserver "
                                              "command and its environment; start nothing.")) -> None:
    """Serve a repository here, in the foreground, with nvidia-pytriton's tritonserver (CPU,
    Python backend: hermes_restore). Install: pip install --no-deps 'nvidia-pytriton>=0.7'."""
    with guarded():
        from ..scaleout.triton_server import ServeOptions, plan_server, serve

        options = ServeOptions(host=host, http_port=http_port, grpc_port=grpc_port)
        if dry_run:
            typer.echo(plan_server(repository, options).shell_line())
            return
        serve(repository, options, say=echo_err)
