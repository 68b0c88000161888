"""Shared CLI plumbing: option types and the error boundary.

Every command body runs inside :func:`guarded`, which turns a :class:`HermesError`
(or a missing optional package) into one line on stderr and exit status 2 - never a
traceback for a user mistake.
"""

from __future__ import annotations

import contextlib
import errno
import sys
from pathlib import Path
from typing import Iterator

import typer

from ..errors import HermesError

EXIT_USER_ERROR = 2

ModelArg = typer.Argument(
    "default",
    help="Bundled model name (default), checkpoint file (.safetensors), or preset (tiny/small/base).",
)
ScaleOpt = typer.Option(2, "--scale", "-s", help="Scale for a preset (1, 2, 3 or 4).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")
BackendOpt = typer.Option("auto", "--backend", "-b",
                          help="auto, openvino, onnxruntime, torch or tensorrt (auto picks the "
                               "fastest present and says why).")
PrecisionOpt = typer.Option(None, "--precision",
                            help="CPU compute precision: f32, bf16 (OpenVINO, CPUs with "
                                 "AVX512-BF16/AMX) or int8 (an INT8 Q/DQ graph); default: the "
                                 "graph's own (f32, or int8 for a Q/DQ graph).")
ThreadsOpt = typer.Option(0, "--threads", help="Backend CPU threads (0 = all cores).")


def fail(message: str) -> None:
    typer.echo(f"hermes-export: error: {message}", err=True)
    raise typer.Exit(EXIT_USER_ERROR)


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    try:
        yield
    except HermesError as exc:
        fail(str(exc))
    except KeyboardInterrupt as exc:
        code = getattr(exc, "exit_code", 130)
        name = exc.args[0] if getattr(exc, "signum", None) else "SIGINT"
        typer.echo(f"hermes-export: interrupted ({name}); nothing partial was left behind; run the "
                   "command again to finish (infer skips the outputs already done)", err=True)
        raise typer.Exit(code) from None
    except MemoryError:
        fail("out of memory; use a smaller input, tile or batch")
    except OSError as exc:  # a write that no module turned into a HermesError
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        from ..atomic import write_error

        fail(str(write_error(Path(exc.filename or "output"), exc)))


def echo_err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_tile(tile: str | None) -> tuple[int, int] | None:
    """'256x192' (HxW) or '256' -> (256, 192) / (256, 256); None stays None."""
    if not tile:
        return None
    from ..errors import InputError

    try:
        parts = [int(v) for v in tile.lower().split("x")]
        if len(parts) == 1:
            parts *= 2
        h, w = parts
    except ValueError:
        raise InputError(f"--tile must look like 256x256 (HxW) or 256, got '{tile}'") from None
    if h < 1 or w < 1:
        raise InputError(f"--tile must be positive, got '{tile}'")
    return h, w
