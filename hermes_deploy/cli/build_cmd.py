"""``hermes-export build``: compile an exported ONNX graph into a TensorRT(-RTX) engine.

Shapes: ``--tile HxW`` builds one static profile (batch ``--batch``); ``--min/--opt/--max``
build dynamic profiles, one per repetition (the i-th ``--min`` pairs with the i-th
``--opt`` and ``--max``). A shape is either ``HxW`` (the image input(s) at that size,
every other dynamic input at batch size) or explicit ``name:d0xd1x...`` entries joined by
commas (``input:1x3x64x64,context:1x48``). The engine gets a manifest
(``model.engine.json``); ``--cache DIR`` reuses an engine built from the same facts.
``--plugins lib.so`` (full TensorRT) loads a TensorRT plugin library, e.g. the one built
from ``cpp/plugins/``, for the ``hermes`` nodes of a ``--target tensorrt`` graph, and
records it with its sha256 in the manifest.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import InputError
from .common import JsonOpt, guarded


def _dims(text: str, what: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"{what} must be dims joined by 'x' (e.g. 64x64), got '{text}'") from None
    if not dims or min(dims) < 1:
        raise InputError(f"{what} must hold positive dims, got '{text}'")
    return dims


def _shape_arg(text: str, label: str, onnx_path: Path, batch: int) -> dict[str, tuple[int, ...]]:
    """``HxW`` or ``name:dims,name:dims`` -> {input: shape}."""
    if ":" in text:
        shapes = {}
        for entry in text.split(","):
            name, _, dims = entry.partition(":")
            shapes[name.strip()] = _dims(dims.strip(), f"{label} shape of '{name.strip()}'")
        return shapes
    from ..engines.trt.compile import default_profiles

    hw = _dims(text, label)
    if len(hw) != 2:
        raise InputError(f"{label} must be HxW or name:dims entries, got '{text}'")
    return {name: opt for name, (_lo, opt, _hi)
            in default_profiles(onnx_path, tile=(hw[0], hw[1]), batch=batch).items()}


def parse_profiles(onnx_path: Path, mins: list[str], opts: list[str], maxs: list[str],
                   batch: int) -> list[dict]:
    if not (len(mins) == len(opts) == len(maxs)):
        raise InputError(f"give --min, --opt and --max the same number of times (one of each per "
                         f"profile); got {len(mins)}, {len(opts)}, {len(maxs)}")
    profiles = []
    for lo, op, hi in zip(mins, opts, maxs):
        triple = [_shape_arg(t, f"--{label}", onnx_path, batch)
                  for t, label in ((lo, "min"), (op, "opt"), (hi, "max"))]
        names = set(triple[0]) | set(triple[1]) | set(triple[2])
        missing = [n for n in sorted(names) if not all(n in t for t in triple)]
        if missing:
            raise InputError(f"input(s) {', '.join(missing)} need a --min, --opt and --max shape")
        profiles.append({n: (triple[0][n], triple[1][n], triple[2][n]) for n in sorted(names)})
    return profiles


def build(onnx_file: Path = typer.Argument(..., help="Exported graph (.onnx)."),
          output: Path = typer.Option(..., "--output", "-o", help="Engine file to write."),
          trt: str = typer.Option("tensorrt-rtx", "--trt", help="tensorrt-rtx or tensorrt."),
          tile: str = typer.Option(None, "--tile", help="Static profile at this HxW tile."),
          batch: int = typer.Option(1, "--batch", help="Batch size of the profiles."),
          mins: list[str] = typer.Option(None, "--min", help="Smallest shapes of a profile."),
          opts: list[str] = typer.Option(None, "--opt", help="Shapes a profile is tuned for."),
          maxs: list[str] = typer.Option(None, "--max", help="Largest shapes of a profile."),
          timing_cache: Path = typer.Option(None, "--timing-cache",
                                            help="Timing cache file (read, then updated)."),
          workspace: int = typer.Option(None, "--workspace", help="Workspace limit in MiB."),
          compute_capability: str = typer.Option(None, "--compute-capability",
                                                 help="RTX target GPU, e.g. SM89 (default) or SM120."),
          optimization_level: int = typer.Option(None, "--builder-optimization-level",
                                                 help="0 (fast build) to 5 (slow build, fast engine)."),
          cache: Path = typer.Option(None, "--cache", help="Engine cache folder."),
          plugins: list[Path] = typer.Option(None, "--plugins",
                                             help="TensorRT plugin library (.so) to load and record "
                                                  "in the manifest (full TensorRT; repeatable)."),
          json_out: bool = JsonOpt) -> None:
    """Compile an ONNX graph into a TensorRT or TensorRT-RTX engine with a manifest."""
    with guarded():
        from ..engines.trt.build import BuildOptions, build as build_engine

        if not onnx_file.is_file():
            raise InputError(f"ONNX model '{onnx_file}' not found; export it with hermes-export onnx")
        if batch < 1:
            raise InputError(f"--batch must be >= 1, got {batch}")
        if tile and (mins or opts or maxs):
            raise InputError("give either --tile (static profile) or --min/--opt/--max, not both")
        tile_hw = None
        if tile:
            dims = _dims(tile, "--tile")
            if len(dims) != 2:
                raise InputError(f"--tile must look like 256x256 (HxW), got '{tile}'")
            tile_hw = (dims[0], dims[1])
        profiles = (parse_profiles(onnx_file, mins or [], opts or [], maxs or [], batch)
                    if (mins or opts or maxs) else None)
        options = BuildOptions(flavour=trt, tile=tile_hw, batch=batch, profiles=profiles,
                               compute_capability=compute_capability, workspace_mb=workspace,
                               optimization_level=optimization_level,
                               timing_cache=str(timing_cache) if timing_cache else None,
                               cache_dir=str(cache) if cache else None,
                               plugin_libraries=tuple(str(p) for p in plugins or ()))
        result = build_engine(onnx_file, output, options)
        m = result.manifest
        if json_out:
            typer.echo(json.dumps({"engine": str(result.engine_path),
                                   "manifest": str(result.manifest_path),
                                   "cache_hit": result.cache_hit, "seconds": result.seconds,
                                   **json.loads(m.to_json())}, indent=2))
            return
        size = result.engine_path.stat().st_size
        typer.echo(f"wrote {result.engine_path} ({size / 1e6:.1f} MB, {m.product} {m.trt_version}, "
                   f"{m.compute_capability}, {m.precision}, {len(m.profiles)} profile(s)"
                   f"{', from cache' if result.cache_hit else ''}; {result.seconds:.1f}s)")
        # an engine's size is mostly the kernels compiled in for its target and profiles,
        # not the weights; said here because an INT8 engine (INT8 and float kernels plus
        # the reformats between them) comes out larger than the FP32 one
        typer.echo(f"size: {_weight_bytes(onnx_file) / 1e6:.2f} MB of weights in the graph; "
                   "the rest is compiled kernels for the target and profiles (an INT8 engine "
                   "carries INT8 and float kernels, so it can be larger than the FP32 one)")
        typer.echo(f"wrote {result.manifest_path}")


def _weight_bytes(onnx_file: Path) -> int:
    """Bytes of the graph's initializers (its weights), as stored in the ONNX."""
    import onnx

    model = onnx.load(str(onnx_file), load_external_data=False)
    total = 0
    for init in model.graph.initializer:
        if init.raw_data:
            total += len(init.raw_data)
        else:
            elements = 1
            for d in init.dims:
                elements *= d
            total += elements * onnx.helper.tensor_dtype_to_np_dtype(init.data_type).itemsize
    return total
