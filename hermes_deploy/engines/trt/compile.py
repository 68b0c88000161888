"""Parse ONNX models and compile them into TensorRT / TensorRT-RTX engines.

Two flavours (:class:`.flavour.Flavour`) share this code:

- ``tensorrt-rtx``: TensorRT-RTX (pip ``tensorrt-rtx``, module ``tensorrt_rtx``). It builds an
  engine for a chosen GPU architecture (``compute_capability``, default ``"SM89"``)
  on a machine with no GPU at all, which is how CI proves that a model parses and
  compiles. This path is tested.
- ``tensorrt``: TensorRT (pip ``tensorrt``, module ``tensorrt``). It is written against
  the builder / ONNX-parser API that TensorRT 10 shares with TensorRT-RTX, but it has
  **not been run**: the ``tensorrt`` libraries cannot be installed where this code is
  tested. Full TensorRT always builds for the GPU of the building machine, so it
  accepts no ``compute_capability`` other than ``None`` / ``"current"``.

Networks are created strongly typed (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``)
whenever the API has the flag: precision comes from the ONNX (an FP16 ONNX with FP32
islands, or an INT8 Q/DQ ONNX), never from builder flags; TensorRT 11 removed those.

Guarantees:

- :func:`parse_onnx` returns every parser error as a :class:`ParseIssue` (node name, op
  type, reason); an empty list means the whole graph was imported.
- :func:`build_engine` raises :class:`EngineBuildError` with a one-line message on any
  failure (unsupported node, missing optimization profile, invalid shapes, builder
  error) and writes ``engine_path`` atomically: the file is either the complete new
  engine or left as it was.
- Parsing and building are serialized inside a process (one lock), because messages of
  the TensorRT logger are collected to explain failures.

Ideas from Polygraphy (``backend/trt/loader.py``: the ONNX parser must outlive the
build because it owns converted weights; parser errors reported per node) and from the
TensorRT-RTX Python samples (compute-capability targets for GPU-less builds).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping, Sequence, Union

from ...atomic import atomic_path
from ...errors import EngineBuildError, InputError
from ...optional import require
from .flavour import Flavour, normalize_capability

__all__ = [
    "DEFAULT_COMPUTE_CAPABILITY",
    "DEFAULT_TILE",
    "MIN_SPATIAL",
    "BuildReport",
    "EngineBuildError",
    "ParseIssue",
    "build_engine",
    "default_profiles",
    "load_trt",
    "parse_onnx",
    "trt_logger",
]

Shape = tuple[int, ...]
Profile = tuple[Shape, Shape, Shape]
TensorDesc = tuple[str, str, Shape]
ProfileMap = Mapping[str, Sequence[Sequence[int]]]
ProfileSpec = Union[ProfileMap, Sequence[ProfileMap]]
PathLike = Union[str, "os.PathLike[str]"]

#: Target of TensorRT-RTX builds when none is given (Ada Lovelace, e.g. RTX 40xx, L4).
DEFAULT_COMPUTE_CAPABILITY = "SM89"
#: Tile (height, width) that :func:`default_profiles` optimizes for when none is given.
DEFAULT_TILE = (256, 256)
#: Smallest height / width that :func:`default_profiles` allows for image inputs.
MIN_SPATIAL = 16

# On a machine without a usable CUDA driver TensorRT-RTX first probes the device and
# logs that failure at ERROR severity, then builds for the requested target anyway.
# Such lines are not the cause of any failure, so they are kept out of error messages.
_NO_GPU_NOISE = ("catchCudaError", "cudaError 35", "cudaError 100")

_DTYPE_NAMES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "UINT8": "uint8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
    "FP8": "float8_e4m3",
    "INT4": "int4",
    "FP4": "float4_e2m1",
}

_log = logging.getLogger(__name__)
_LOCK = threading.RLock()
_LOGGERS: dict[str, Any] = {}




@dataclass(frozen=True)
class ParseIssue:
    """One error of the ONNX parser.

    ``node`` is the ONNX node name (``"node #i"`` when the node is unnamed, ``"<model>"``
    when the error is not tied to a node), ``op_type`` the node's operator, ``reason``
    the parser's error code and description on one line.
    """

    node: str
    op_type: str
    reason: str

    def __str__(self) -> str:
        return f"{self.node} ({self.op_type}): {self.reason}"


@dataclass
class BuildReport:
    """What :func:`build_engine` produced.

    ``engine_bytes`` is the size of the serialized engine; ``seconds`` the wall-clock
    time of the whole call (parse + build + write). ``inputs`` / ``outputs`` are
    ``(name, dtype, shape)`` as the network declares them, ``-1`` marking a dynamic dim;
    dtypes use numpy names (``"float32"``, ``"float16"``, ...). ``profiles`` are the
    ``(min, opt, max)`` shapes of the first optimization profile, ``all_profiles`` every
    profile in engine order. ``engine`` holds the engine
    itself only when no ``engine_path`` was given (engines can be hundreds of MB).
    """

    engine_bytes: int
    seconds: float
    flavour: Flavour
    trt_version: str
    compute_capability: str
    inputs: list[TensorDesc]
    outputs: list[TensorDesc]
    profiles: dict[str, Profile] = field(default_factory=dict)
    all_profiles: list[dict[str, Profile]] = field(default_factory=list)
    engine_path: str | None = None
    engine: bytes | None = field(default=None, repr=False, compare=False)


def load_trt(flavour: Flavour | str = Flavour.RTX) -> ModuleType:
    """Import and return the TensorRT module of ``flavour``.

    ``tensorrt-rtx`` gives ``tensorrt_rtx``, ``tensorrt`` gives ``tensorrt``. Raises
    :class:`~hermes_deploy.errors.MissingDependencyError` (naming the extra ``trt-rtx`` or
    ``tensorrt``) when the package is not installed, :class:`InputError` for an unknown
    flavour.
    """
    return Flavour.parse(flavour).load()


def parse_onnx(
    onnx_path_or_bytes: PathLike | bytes | bytearray | memoryview, flavour: Flavour | str = Flavour.RTX
) -> list[ParseIssue]:
    """Import an ONNX model into a TensorRT network and return every parser error.

    A path is parsed with ``parse_from_file`` so weights stored as external data next to
    the model are found; bytes are parsed in memory (external data is then unavailable).
    An empty list means the whole graph was imported. Nothing is built, so this is fast
    and needs no GPU.
    """
    trt = load_trt(flavour)
    source: Path | bytes
    if isinstance(onnx_path_or_bytes, (bytes, bytearray, memoryview)):
        source = bytes(onnx_path_or_bytes)
    else:
        source = _existing_model(onnx_path_or_bytes)
    with _LOCK:
        logger = trt_logger(trt, flavour)
        _builder, _network, _parser, issues = _parse(trt, logger, source)
    return issues


def build_engine(
    onnx_path: PathLike,
    engine_path: PathLike | None = None,
    flavour: Flavour | str = Flavour.RTX,
    compute_capability: str | None = None,
    profiles: ProfileSpec | None = None,
    workspace_mb: int | None = None,
    optimization_level: int | None = None,
    timing_cache: PathLike | None = None,
) -> BuildReport:
    """Compile ``onnx_path`` into a serialized engine.

    ``compute_capability`` picks the GPU architecture of a TensorRT-RTX engine:
    ``"SM89"`` style names (``"sm_89"``, ``"89"`` and ``"8.9"`` are accepted too) or
    ``"current"`` (the GPU of this machine; needs one). ``None`` means
    :data:`DEFAULT_COMPUTE_CAPABILITY` for ``tensorrt-rtx`` and the local GPU for ``tensorrt``.

    ``profiles`` maps input name -> ``(min_shape, opt_shape, max_shape)``; every input
    with a dynamic dim needs one (see :func:`default_profiles`). One optimization
    profile is built; a list of such mappings builds one optimization profile each (the
    runner picks the one that fits a tile). ``workspace_mb`` caps the builder's workspace
    memory pool. ``optimization_level`` (0-5) trades build time for engine speed.
    ``timing_cache`` is a file of kernel timings that a full-TensorRT build reads when it
    exists and updates afterwards (atomically), so repeated builds skip measurements;
    TensorRT-RTX ignores it (it times no kernels at build time).

    The engine is written to ``engine_path`` (parent folders are created) through a
    temporary file and ``os.replace``; without ``engine_path`` it is returned in
    :attr:`BuildReport.engine`. Raises :class:`EngineBuildError` with a one-line message
    when the model cannot be parsed or built.
    """
    start = time.perf_counter()
    flavour = Flavour.parse(flavour)
    product = flavour.product
    trt = flavour.load()
    path = _existing_model(onnx_path)
    if workspace_mb is not None and (
        isinstance(workspace_mb, bool) or not isinstance(workspace_mb, int) or workspace_mb <= 0
    ):
        raise EngineBuildError(
            f"workspace_mb must be a positive integer (MiB); received {workspace_mb!r}"
        )
    if optimization_level is not None and (
        isinstance(optimization_level, bool) or not isinstance(optimization_level, int)
        or not 0 <= optimization_level <= 5
    ):
        raise EngineBuildError(
            f"builder optimization level must be an integer 0-5; received {optimization_level!r}"
        )
    profile_list = _profile_list(profiles)
    with _LOCK:
        logger = trt_logger(trt, flavour)
        # The parser owns weights it converted: keep it referenced until the engine is
        # serialized (it stays a local of this block).
        builder, network, parser, issues = _parse(trt, logger, path)
        if issues:
            raise EngineBuildError(_parse_failure_message(product, path, issues))
        inputs = [_describe(network.get_input(i)) for i in range(network.num_inputs)]
        outputs = [_describe(network.get_output(i)) for i in range(network.num_outputs)]

        config = builder.create_builder_config()
        target = _set_target(trt, config, flavour, compute_capability)
        if workspace_mb is not None:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
        if optimization_level is not None:
            config.builder_optimization_level = optimization_level
        cache = _open_timing_cache(config, timing_cache, flavour)
        used_profiles = [_add_profile(builder, config, network, inputs, one, logger)
                         for one in profile_list]

        logger.errors.clear()
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise EngineBuildError(
                f"{product} could not build an engine from {path} for {target}: "
                f"{_first_error(logger)}"
            )
        if cache is not None:
            _save_timing_cache(config, Path(timing_cache))
        data = memoryview(serialized)
        engine_bytes = data.nbytes
        engine: bytes | None = None
        if engine_path is not None:
            _write_atomic(Path(engine_path), data)
        else:
            engine = bytes(data)
        del data, serialized, parser

    return BuildReport(
        engine_bytes=engine_bytes,
        seconds=time.perf_counter() - start,
        flavour=flavour,
        trt_version=str(getattr(trt, "__version__", "unknown")),
        compute_capability=target,
        inputs=inputs,
        outputs=outputs,
        profiles=used_profiles[0] if used_profiles else {},
        all_profiles=[p for p in used_profiles if p],
        engine_path=None if engine_path is None else str(engine_path),
        engine=engine,
    )


def default_profiles(
    onnx_path: PathLike, tile: tuple[int, int] | None = None, batch: int = 1
) -> dict[str, Profile]:
    """Optimization profiles for the dynamic inputs of an ONNX model.

    Only inputs with at least one dynamic dim get an entry; static dims keep their value
    in min, opt and max. Two input kinds are understood:

    - image ``(N, C, H, W)`` (``C`` must be static): ``N`` 1 / ``batch`` / ``batch``;
      ``H`` and ``W`` ``MIN_SPATIAL`` (16, or the tile if smaller) / tile / 2 x tile.
      The engine is tuned for exactly one tile; the larger max lets a small image go
      through whole, at the cost of activation memory sized for the max shape.
    - vector ``(N, K)`` such as a conditioning context (``K`` must be static):
      ``(1, K)`` / ``(batch, K)`` / ``(batch, K)``.

    ``tile`` is ``(height, width)`` of the tiles the runtime sends, in input pixels
    (default :data:`DEFAULT_TILE`). Any other dynamic input raises
    :class:`EngineBuildError`: pass its profile to :func:`build_engine` yourself.
    """
    tile_h, tile_w = DEFAULT_TILE if tile is None else tile
    for what, value in (("tile height", tile_h), ("tile width", tile_w), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise EngineBuildError(f"{what} must be a positive integer; received {value!r}")
    path = _existing_model(onnx_path)
    onnx = require("onnx", purpose="Reading ONNX input shapes")
    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}

    def span(dim: int | None, low: int, opt: int, high: int) -> tuple[int, int, int]:
        return (dim, dim, dim) if dim is not None else (low, opt, high)

    result: dict[str, Profile] = {}
    for value in graph.input:
        if value.name in weights:
            continue
        tensor = value.type.tensor_type
        if not tensor.HasField("shape"):
            raise EngineBuildError(
                f"input '{value.name}' of {path} has no declared shape; "
                "pass its profile to build_engine explicitly"
            )
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                for d in tensor.shape.dim]
        if None not in dims:
            continue
        shown = tuple(-1 if d is None else d for d in dims)
        if len(dims) == 4 and dims[1] is not None:
            n, c, h, w = dims
            spans = [span(n, 1, batch, batch), (c, c, c),
                     span(h, min(MIN_SPATIAL, tile_h), tile_h, 2 * tile_h),
                     span(w, min(MIN_SPATIAL, tile_w), tile_w, 2 * tile_w)]
        elif len(dims) == 2 and dims[1] is not None:
            n, k = dims
            spans = [span(n, 1, batch, batch), (k, k, k)]
        else:
            raise EngineBuildError(
                f"input '{value.name}' has shape {shown}; default_profiles handles "
                "(N, C, H, W) images and (N, K) vectors with static C / K; "
                "pass its (min, opt, max) shapes to build_engine explicitly"
            )
        low, opt, high = (tuple(s[i] for s in spans) for i in range(3))
        result[value.name] = (low, opt, high)
    return result


# --------------------------------------------------------------------------- helpers



def _existing_model(onnx_path: PathLike) -> Path:
    if not isinstance(onnx_path, (str, os.PathLike)):
        raise InputError(
            f"expected an ONNX file path (str or os.PathLike); received {type(onnx_path).__name__}"
        )
    path = Path(onnx_path)
    if not path.is_file():
        raise InputError(f"ONNX model not found: {path}; export one first (hermes-export)")
    return path


def trt_logger(trt: ModuleType, flavour: Flavour | str) -> Any:
    """One logger per flavour and process (TensorRT warns when builders differ in it);
    it forwards to ``logging`` and keeps errors to explain failures."""
    flavour = Flavour.parse(flavour)
    if flavour in _LOGGERS:
        return _LOGGERS[flavour]
    severity = trt.ILogger.Severity

    class _CollectingLogger(trt.ILogger):  # type: ignore[name-defined, misc]
        """Forwards TensorRT messages to ``logging`` and keeps errors to explain failures."""

        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, level: Any, msg: str) -> None:
            if level in (severity.INTERNAL_ERROR, severity.ERROR):
                if any(noise in msg for noise in _NO_GPU_NOISE):
                    _log.debug("%s", msg)
                else:
                    self.errors.append(msg)
                    _log.error("%s", msg)
            elif level == severity.WARNING:
                _log.warning("%s", msg)
            elif level == severity.INFO:
                _log.debug("%s", msg)

    _LOGGERS[flavour] = _CollectingLogger()
    return _LOGGERS[flavour]


def _first_error(logger: Any) -> str:
    if not logger.errors:
        return "the builder reported no error message (enable logging at DEBUG for details)"
    return _one_line(logger.errors[0])


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _network_flags(trt: ModuleType) -> int:
    flags = trt.NetworkDefinitionCreationFlag
    if hasattr(flags, "STRONGLY_TYPED"):
        return 1 << int(flags.STRONGLY_TYPED)
    if hasattr(flags, "EXPLICIT_BATCH"):  # TensorRT 8.x; the default from TensorRT 10
        return 1 << int(flags.EXPLICIT_BATCH)
    return 0


def _parse(
    trt: ModuleType, logger: Any, source: Path | bytes
) -> tuple[Any, Any, Any, list[ParseIssue]]:
    logger.errors.clear()
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if isinstance(source, bytes):
        ok = parser.parse(source)
    else:
        ok = parser.parse_from_file(str(source))
    issues = [_issue(parser.get_error(i)) for i in range(parser.num_errors)]
    if not ok and not issues:
        issues.append(ParseIssue("<model>", "", _first_error(logger)))
    return builder, network, parser, issues


def _issue(error: Any) -> ParseIssue:
    def ask(method: str, default: Any) -> Any:
        fn = getattr(error, method, None)  # node_name / node_operator need TensorRT >= 10
        return fn() if callable(fn) else default

    index = ask("node", -1)
    name = ask("node_name", "") or (f"node #{index}" if index >= 0 else "<model>")
    code = ask("code", None)
    code_name = getattr(code, "name", str(code)) if code is not None else "ERROR"
    reason = _one_line(f"{code_name}: {ask('desc', '')}")
    return ParseIssue(name, ask("node_operator", "") or "?", reason)


def _parse_failure_message(product: str, path: Path, issues: list[ParseIssue]) -> str:
    listed = "; ".join(str(issue) for issue in issues)
    hint = "lower unsupported ops to standard ONNX ops or export with --target tensorrt"
    if any("plugin" in issue.reason.lower() for issue in issues):
        hint = ("register a TensorRT plugin for the custom op (load its plugin library) "
                "or export with its standard-ONNX lowering")
    return (f"{product} could not parse {path}: {len(issues)} error(s): {listed}; "
            f"fix: {hint}")


def _describe(tensor: Any) -> TensorDesc:
    dtype = getattr(tensor.dtype, "name", str(tensor.dtype))
    return tensor.name, _DTYPE_NAMES.get(dtype, dtype.lower()), tuple(int(d) for d in tensor.shape)



def _set_target(trt: ModuleType, config: Any, flavour: Flavour | str, requested: str | None) -> str:
    """Point the builder at one GPU architecture; return the target's name."""
    product = Flavour.parse(flavour).product
    if not (hasattr(trt, "ComputeCapability") and hasattr(config, "set_compute_capability")):
        # Full TensorRT: the engine is built for the GPU of this machine.
        if requested is None or normalize_capability(requested) == "CURRENT":
            return "CURRENT"
        raise EngineBuildError(
            f"{product} {getattr(trt, '__version__', '')} builds only for the local GPU and "
            f"cannot target {requested!r}; pass compute_capability=None, or use flavour='tensorrt-rtx'"
        )
    name = normalize_capability(DEFAULT_COMPUTE_CAPABILITY if requested is None else requested)
    choices = [n for n in trt.ComputeCapability.__members__ if n != "NONE"]
    if name not in choices:
        raise EngineBuildError(
            f"unknown compute capability {requested!r}; {product} {trt.__version__} "
            f"supports {', '.join(choices)}"
        )
    config.num_compute_capabilities = 1
    if not config.set_compute_capability(getattr(trt.ComputeCapability, name), 0):
        raise EngineBuildError(f"{product} refused compute capability {name}")
    return name


def _add_profile(
    builder: Any,
    config: Any,
    network: Any,
    inputs: list[TensorDesc],
    profiles: Mapping[str, Sequence[Sequence[int]]],
    logger: Any,
) -> dict[str, Profile]:
    declared = {name: shape for name, _dtype, shape in inputs}
    listing = ", ".join(f"'{n}' {s}" for n, s in declared.items())
    unknown = [name for name in profiles if name not in declared]
    if unknown:
        raise EngineBuildError(
            f"profiles name input(s) {', '.join(repr(n) for n in unknown)} that the network "
            f"does not have; its inputs are: {listing}"
        )
    for name, shape in declared.items():
        if -1 in shape and name not in profiles:
            raise EngineBuildError(
                f"input '{name}' has dynamic shape {shape} but no optimization profile was "
                f"given; pass profiles={{'{name}': (min_shape, opt_shape, max_shape)}} "
                "or profiles=default_profiles(onnx_path)"
            )
    if not profiles:
        return {}
    shape_inputs = {network.get_input(i).name for i in range(network.num_inputs)
                    if network.get_input(i).is_shape_tensor}
    profile = builder.create_optimization_profile()
    used: dict[str, Profile] = {}
    for name, triple in profiles.items():
        if name in shape_inputs:
            raise EngineBuildError(
                f"input '{name}' is a shape tensor; build_engine supports profiles for "
                "execution tensors only"
            )
        low, opt, high = _check_profile(name, declared[name], triple)
        profile.set_shape(name, low, opt, high)
        used[name] = (low, opt, high)
    logger.errors.clear()
    if config.add_optimization_profile(profile) < 0:
        raise EngineBuildError(f"invalid optimization profile: {_first_error(logger)}")
    return used


def _check_profile(name: str, declared: Shape, triple: Sequence[Sequence[int]]) -> Profile:
    try:
        low, opt, high = (tuple(int(d) for d in shape) for shape in triple)
    except (TypeError, ValueError):
        raise EngineBuildError(
            f"profile of input '{name}' must be (min_shape, opt_shape, max_shape) of ints; "
            f"received {triple!r}"
        ) from None
    for label, shape in (("min", low), ("opt", opt), ("max", high)):
        if len(shape) != len(declared):
            raise EngineBuildError(
                f"{label} shape {shape} of input '{name}' has rank {len(shape)}; the input "
                f"is {declared} (rank {len(declared)})"
            )
        for axis, (got, want) in enumerate(zip(shape, declared)):
            if want != -1 and got != want:
                raise EngineBuildError(
                    f"{label} shape {shape} of input '{name}' sets static dim {axis} to "
                    f"{got}; the input is {declared}"
                )
    if not all(1 <= a <= b <= c for a, b, c in zip(low, opt, high)):
        raise EngineBuildError(
            f"profile of input '{name}' needs 1 <= min <= opt <= max in every dim; "
            f"received min {low}, opt {opt}, max {high}"
        )
    return low, opt, high


def _profile_list(profiles: ProfileSpec | None) -> list[ProfileMap]:
    if profiles is None:
        return [{}]
    if isinstance(profiles, Mapping):
        return [profiles]
    listed = list(profiles)
    if not listed or not all(isinstance(p, Mapping) for p in listed):
        raise EngineBuildError(
            "profiles must be a mapping input -> (min, opt, max) or a non-empty list of such "
            f"mappings; received {profiles!r}"
        )
    return listed


def _open_timing_cache(config: Any, path: PathLike | None, flavour: Flavour | str = Flavour.FULL) -> Any:
    """Attach a timing cache (read from ``path`` when the file exists) to ``config``.

    TensorRT-RTX builds measure no kernels (its timing-cache calls are no-ops since 1.2),
    so for ``tensorrt-rtx`` the cache is ignored and no file is written.
    """
    if path is None:
        return None
    if Flavour.parse(flavour) is Flavour.RTX:
        _log.info("TensorRT-RTX measures no kernel timings at build time; ignoring %s", path)
        return None
    if not hasattr(config, "create_timing_cache"):
        _log.warning("this TensorRT has no timing cache; ignoring %s", path)
        return None
    file = Path(path)
    blob = file.read_bytes() if file.is_file() else b""
    cache = config.create_timing_cache(blob)
    if cache is None or not config.set_timing_cache(cache, False):
        raise EngineBuildError(
            f"timing cache {file} is unreadable or from another TensorRT; delete it and build again"
        )
    return cache


def _save_timing_cache(config: Any, path: Path) -> None:
    cache = config.get_timing_cache()
    if cache is not None:
        _write_atomic(path, memoryview(cache.serialize()))


def _write_atomic(path: Path, data: memoryview) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
