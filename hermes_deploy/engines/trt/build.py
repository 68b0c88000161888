"""Build an engine with its manifest, through an engine cache (what ``hermes-export build`` runs).

``build(onnx_path, engine_path, BuildOptions(...))``:

1. reads the ONNX facts (sha256, ModelSpec, precision, ``hermes`` custom-op plugins);
2. registers the HERMES TensorRT plugins when the graph has plugin nodes: from the
   plugin libraries of ``plugin_libraries`` (``--plugins``, e.g. ``cpp/plugins/``'s
   ``libhermes_trt_plugins.so``, full TensorRT only), recorded with their sha256 in the
   manifest, or else the Python ones of :mod:`hermes_deploy.engines.trt.plugins`;
3. resolves the optimization profiles: explicit ones, a static profile for ``tile``,
   or :func:`~hermes_deploy.engines.trt.compile.default_profiles`;
4. looks the engine up in ``cache_dir`` under :func:`~hermes_deploy.engines.trt.manifest.cache_key`
   (ONNX sha256, flavour, TensorRT version, compute capability, profiles, engine-shaping
   options, plugins); on a hit the cached engine is copied, on a miss it is built and
   stored;
5. writes ``engine_path`` and ``engine_path.json`` (the manifest) atomically.

Precision comes from the ONNX (strongly typed networks): an FP16 graph with FP32
islands or an INT8 Q/DQ graph builds as such, with no builder precision flags.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence, Union

from ... import __version__
from ...errors import InputError, PluginUnavailableError
from ...optional import has
from . import compile as compiler
from . import manifest as mf
from .flavour import Flavour, normalize_capability

__all__ = ["BuildOptions", "BuildResult", "build", "resolve_profiles"]

PathLike = Union[str, "os.PathLike[str]"]
Profile = dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]


@dataclass(frozen=True)
class BuildOptions:
    """What to build. ``flavour`` is ``"tensorrt-rtx"`` or ``"tensorrt"``.

    Shapes: ``tile`` (H, W) gives one static profile (min = opt = max, batch ``batch``);
    else ``profiles`` (a list of ``{input: (min, opt, max)}``); else the default dynamic
    profile around a 256x256 tile. ``compute_capability`` is the RTX target (``SM89``
    default; full TensorRT builds for its local GPU). ``cache_dir`` enables the cache.
    ``plugin_libraries``: TensorRT plugin libraries (``.so``) to load before parsing; the
    manifest records each with its sha256 (full TensorRT only).
    """

    flavour: Flavour | str = Flavour.RTX
    tile: tuple[int, int] | None = None
    batch: int = 1
    profiles: Sequence[Mapping[str, Sequence[Sequence[int]]]] | None = None
    compute_capability: str | None = None
    workspace_mb: int | None = None
    optimization_level: int | None = None
    timing_cache: str | None = None
    cache_dir: str | None = None
    plugin_libraries: Sequence[str] = ()


@dataclass
class BuildResult:
    engine_path: Path
    manifest_path: Path
    manifest: mf.EngineManifest
    cache_hit: bool
    seconds: float
    report: compiler.BuildReport | None = field(default=None, repr=False)


def resolve_profiles(onnx_path: PathLike, options: BuildOptions) -> list[Profile]:
    """The optimization profiles ``options`` asks for (empty dicts for static graphs)."""
    if options.tile is not None:
        dynamic = compiler.default_profiles(onnx_path, tile=tuple(options.tile),
                                             batch=options.batch)
        return [{name: (opt, opt, opt) for name, (_lo, opt, _hi) in dynamic.items()}]
    if options.profiles:
        return [{name: tuple(tuple(int(d) for d in s) for s in triple)  # type: ignore[misc]
                 for name, triple in p.items()} for p in options.profiles]
    return [compiler.default_profiles(onnx_path, batch=options.batch)]


def build(onnx_path: PathLike, engine_path: PathLike, options: BuildOptions = BuildOptions()
          ) -> BuildResult:
    start = time.perf_counter()
    flavour = Flavour.parse(options.flavour)
    onnx_file = Path(onnx_path)
    if not onnx_file.is_file():
        raise InputError(f"ONNX model '{onnx_file}' not found; export it with hermes-export onnx")
    if options.plugin_libraries and flavour is Flavour.RTX:
        raise PluginUnavailableError(
            "TensorRT-RTX cannot load plugin libraries (--plugins): it has no plugin layers; "
            "build with --trt tensorrt, or export with --target portable for TensorRT-RTX")
    libraries = [mf.plugin_library_record(lib, engine_path) for lib in options.plugin_libraries]
    trt, version = mf.running_trt(options.flavour)
    facts = mf.onnx_facts(onnx_file)
    if libraries:
        _load_plugin_libraries(trt, options.plugin_libraries, facts["plugins"])
    elif facts["plugins"]:
        from .plugins import register_plugins

        register_plugins(trt, facts["plugins"])
    profiles = resolve_profiles(onnx_file, options)
    target = _target(flavour, options.compute_capability)
    build_facts = {"tile": list(options.tile) if options.tile else None, "batch": options.batch,
                   "workspace_mb": options.workspace_mb,
                   "optimization_level": options.optimization_level,
                   "timing_cache": Path(options.timing_cache).name if options.timing_cache else None}
    key = mf.cache_key(flavour=flavour.value, trt_version=version, compute_capability=target,
                       onnx_sha256=facts["onnx_sha256"], profiles=profiles, build=build_facts,
                       plugins=facts["plugins"], plugin_libraries=libraries)
    engine_file = Path(engine_path)

    written = mf.manifest_path(engine_file)
    cached = _cache_lookup(options.cache_dir, key)
    if cached is not None:
        manifest = replace(cached[1], onnx_name=str(onnx_path), plugin_libraries=libraries)
        with mf.engine_and_manifest(engine_file) as (tmp_engine, set_manifest):
            shutil.copyfile(cached[0], tmp_engine)
            set_manifest(manifest)
        return BuildResult(engine_file, written, manifest, True, time.perf_counter() - start)

    # a failed or interrupted build leaves the previous pair (or nothing)
    with mf.engine_and_manifest(engine_file) as (tmp_engine, set_manifest):
        report = compiler.build_engine(
            onnx_file, tmp_engine, flavour=flavour, compute_capability=options.compute_capability,
            profiles=[p for p in profiles if p] or None, workspace_mb=options.workspace_mb,
            optimization_level=options.optimization_level, timing_cache=options.timing_cache)
        manifest = _new_manifest(flavour, version, report, facts, tmp_engine, build_facts, key,
                                 onnx_path, libraries)
        set_manifest(manifest)
    _cache_store(options.cache_dir, key, engine_file, manifest)
    return BuildResult(engine_file, written, manifest, False, time.perf_counter() - start, report)


def _new_manifest(flavour, version, report, facts, engine_file, build_facts, key, onnx_path,
                  libraries) -> mf.EngineManifest:
    manifest = mf.EngineManifest(
        flavour=flavour.value, trt_version=version,
        compute_capability=_recorded_capability(report.compute_capability),
        onnx_sha256=facts["onnx_sha256"], engine_sha256=mf.file_sha256(engine_file),
        precision=facts["precision"],
        profiles=[{n: [list(s) for s in t] for n, t in p.items()} for p in report.all_profiles],
        inputs=[list(d) for d in report.inputs], outputs=[list(d) for d in report.outputs],
        plugins=facts["plugins"], build={**build_facts, "cache_key": key},
        spec=facts["spec"], onnx_name=str(onnx_path), package_version=__version__,
        plugin_libraries=libraries)
    return mf.EngineManifest.from_json(manifest.to_json())  # JSON types (lists) in memory too


def _load_plugin_libraries(trt, paths: Sequence[str], wanted: list[dict[str, str]]) -> None:
    """Load plugin libraries into this process's TensorRT and check they provide ``wanted``.

    As trtexec ``--staticPlugins`` does: a plain load, during which a library built from
    cpp/plugins registers its creators with the loaded TensorRT; a library that did not
    is handed to ``IPluginRegistry.load_library`` (its getCreators entry point).
    """
    registry = trt.get_plugin_registry()

    def missing() -> list[dict[str, str]]:
        return [p for p in wanted if registry.get_creator(p["name"], p["version"], p["namespace"]) is None]

    for path in paths:
        try:
            ctypes.CDLL(str(Path(path).resolve()))
        except OSError as exc:
            raise PluginUnavailableError(f"cannot load plugin library '{path}' ({exc}); is it built "
                                         "for this TensorRT and CUDA?") from None
    if missing():
        for path in paths:
            registry.load_library(str(Path(path).resolve()))
    absent = missing()
    if absent:
        names = ", ".join(f"{p['namespace']}::{p['name']} v{p['version']}" for p in absent)
        raise PluginUnavailableError(f"the plugin libraries {', '.join(map(str, paths))} do not provide "
                                     f"{names}, which the graph uses")


def _target(flavour: Flavour, requested: str | None) -> str:
    if flavour is Flavour.RTX:
        return normalize_capability(requested or compiler.DEFAULT_COMPUTE_CAPABILITY)
    return _recorded_capability("CURRENT")


def _recorded_capability(name: str) -> str:
    """Full TensorRT builds for the local GPU: record its architecture when it is known."""
    if name != "CURRENT":
        return name
    local = local_compute_capability()
    return local or "CURRENT"


def local_compute_capability() -> str | None:
    """``SMxy`` of CUDA device 0 via torch, or None without torch / CUDA."""
    if not has("torch"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(0)
    return f"SM{major}{minor}"


def _cache_lookup(cache_dir: str | None, key: str) -> tuple[Path, mf.EngineManifest] | None:
    if not cache_dir:
        return None
    engine = Path(cache_dir) / f"{key}.engine"
    try:
        manifest = mf.read_manifest(engine)
    except Exception:  # absent or unreadable entries are misses
        return None
    if not engine.is_file() or mf.file_sha256(engine) != manifest.engine_sha256:
        return None
    return engine, manifest


def _cache_store(cache_dir: str | None, key: str, engine: Path, manifest: mf.EngineManifest) -> None:
    if not cache_dir:
        return
    target = Path(cache_dir) / f"{key}.engine"
    with mf.engine_and_manifest(target) as (tmp_engine, set_manifest):
        shutil.copyfile(engine, tmp_engine)
        set_manifest(manifest)
