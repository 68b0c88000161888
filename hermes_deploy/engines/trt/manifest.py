"""Engine manifest: the facts an engine was built from, in a JSON file beside it.

A serialized TensorRT engine only runs with the TensorRT release that built it, on the
GPU architecture it was built for, and it silently goes stale when its ONNX changes.
``model.engine`` therefore gets ``model.engine.json`` (:func:`manifest_path`) holding:

- ``spec``: the ModelSpec of the ONNX (``hermes.spec`` metadata), so a runtime learns
  scale, channels, tile rules and input names without reading the ONNX;
- ``flavour`` (``tensorrt`` or ``tensorrt-rtx``) and ``trt_version``;
- ``compute_capability``: the GPU architecture of the engine (``SM89``; full TensorRT
  records the building GPU's, or ``CURRENT`` when it was not known);
- ``profiles``: one ``{input: [min, opt, max]}`` per optimization profile, in engine
  order; ``inputs`` / ``outputs`` as ``[name, dtype, shape]``;
- ``precision`` (``fp32``, ``fp16`` or ``int8``; from the spec, else from the graph);
- ``onnx_sha256`` and ``engine_sha256``; ``plugins`` (name, version, namespace of every
  custom op node); ``build`` (the options that shape the engine);
- ``plugin_libraries``: ``[{"path", "sha256"}]``, the TensorRT plugin libraries the
  engine was built with (``hermes-export build --plugins``, e.g. ``cpp/plugins/``'s
  ``libhermes_trt_plugins.so``), which a runtime loads before deserializing; ``path``
  is relative to the engine's folder when the library lies inside it, else absolute.
  Manifests without the key have none.

:func:`check_manifest` compares a manifest with the running TensorRT, GPU and (when
given) the ONNX file (and the plugin libraries it names), and raises :class:`EngineMismatchError` with one line saying what
differs and the ``hermes-export build`` command that rebuilds the engine.
:func:`cache_key` hashes exactly the facts that determine an engine, which keys the
engine cache of :mod:`hermes_deploy.engines.trt.build`.

Torch-free; TensorRT is imported only by :func:`running_trt`.
The idea of recording build facts next to an engine and refusing stale ones follows
Polygraphy's engine loaders and Torch-TensorRT's engine cache (hash of graph + settings).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Union

from ...atomic import atomic_path, atomic_paths
from ...errors import EngineMismatchError, InputError
from ...optional import require
from .flavour import Flavour, normalize_capability

__all__ = [
    "MANIFEST_VERSION",
    "EngineManifest",
    "EngineMismatchError",
    "cache_key",
    "check_manifest",
    "file_sha256",
    "manifest_path",
    "onnx_facts",
    "plugin_library_path",
    "plugin_library_record",
    "read_manifest",
    "rebuild_command",
    "write_manifest",
]

PathLike = Union[str, "os.PathLike[str]"]
MANIFEST_VERSION = 1
#: build options that change the engine (the timing cache path only changes build time).
_ENGINE_OPTIONS = ("workspace_mb", "optimization_level")




@dataclass(frozen=True)
class EngineManifest:
    flavour: str
    trt_version: str
    compute_capability: str
    onnx_sha256: str
    engine_sha256: str
    precision: str
    profiles: list[dict[str, list[list[int]]]]
    inputs: list[list[Any]]
    outputs: list[list[Any]]
    plugins: list[dict[str, str]] = field(default_factory=list)
    build: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] | None = None
    onnx_name: str = ""
    package_version: str = ""
    manifest_version: int = MANIFEST_VERSION
    plugin_libraries: list[dict[str, str]] = field(default_factory=list)

    @property
    def product(self) -> str:
        try:
            return Flavour(self.flavour).product
        except ValueError:  # a manifest from elsewhere: say what it says
            return self.flavour

    def model_spec(self):
        """The :class:`~hermes_deploy.spec.ModelSpec` of the source ONNX (None if it had none)."""
        from ...spec import ModelSpec

        return None if self.spec is None else ModelSpec.from_json(json.dumps(self.spec))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "manifest") -> "EngineManifest":
        try:
            data = json.loads(text)
            known = {f.name for f in dataclasses.fields(cls)}
            manifest = cls(**{k: v for k, v in data.items() if k in known})
        except (json.JSONDecodeError, TypeError) as exc:
            raise InputError(f"{source} is not a readable engine manifest ({exc}); rebuild the "
                             "engine with hermes-export build") from None
        why = _plugin_libraries_problem(data.get("plugin_libraries", []))
        if why:  # the words of cpp/src/manifest.cpp's parse_manifest
            raise InputError(f"{source} is not a readable engine manifest ({why}); rebuild the "
                             "engine with hermes-export build")
        return manifest


def _plugin_libraries_problem(libraries: Any) -> str:
    if not isinstance(libraries, list):
        return "field 'plugin_libraries' is not a list"
    for lib in libraries:
        if not isinstance(lib, dict):
            return "a plugin library is not an object {path, sha256}"
        for key in ("path", "sha256"):
            if key not in lib:
                return f"missing field '{key}'"
            if not isinstance(lib[key], str):
                return f"field '{key}' is not a string"
    return ""


def manifest_path(engine_path: PathLike) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    path = Path(engine_path)
    return path.with_name(path.name + ".json")


def file_sha256(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def plugin_library_path(engine_path: PathLike, recorded: str) -> str:
    """Where a plugin library the manifest of ``engine_path`` records lies: ``recorded``
    joined to the engine's folder (an absolute ``recorded`` stays as it is)."""
    return os.path.join(os.path.dirname(str(engine_path)), recorded)


#: the first bytes of every ELF file (a Linux shared library)
ELF_MAGIC = b"\x7fELF"


def plugin_library_record(library: PathLike, engine_path: PathLike) -> dict[str, str]:
    """The manifest entry ``{"path", "sha256"}`` of a plugin library for ``engine_path``.

    The library must exist and be an ELF shared library. ``path`` is relative to the
    engine's folder when the library lies inside that folder, else absolute.
    """
    path = Path(library)
    if not path.is_file():
        raise InputError(f"plugin library '{library}' not found; build it from cpp/plugins "
                         "(see cpp/plugins/README.md) and pass its path to --plugins")
    with open(path, "rb") as handle:
        head = handle.read(len(ELF_MAGIC))
    if head != ELF_MAGIC:
        raise InputError(f"plugin library '{library}' is not a shared library (no ELF header); "
                         "pass the .so built from cpp/plugins, e.g. libhermes_trt_plugins.so")
    resolved, folder = path.resolve(), Path(engine_path).resolve().parent
    recorded = str(resolved.relative_to(folder)) if resolved.is_relative_to(folder) else str(resolved)
    return {"path": recorded, "sha256": file_sha256(path)}


def write_manifest(engine_path: PathLike, manifest: EngineManifest) -> Path:
    """Write the sidecar of ``engine_path`` atomically; return its path."""
    path = manifest_path(engine_path)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(_file_text(manifest))
    return path


def _file_text(manifest: EngineManifest) -> str:
    return manifest.to_json() + "\n"


@contextlib.contextmanager
def engine_and_manifest(engine_path: PathLike) -> Iterator[tuple[Path, Callable[[EngineManifest], None]]]:
    """``(engine temporary, write the manifest)`` for an engine and its sidecar, renamed
    into place together when the block ends without an error: an interrupted or failed
    build never leaves an engine without its manifest or a manifest of another engine."""
    with atomic_paths(engine_path, manifest_path(engine_path)) as (engine_tmp, manifest_tmp):
        yield engine_tmp, lambda manifest: manifest_tmp.write_text(_file_text(manifest))


def read_manifest(engine_path: PathLike) -> EngineManifest:
    """Read the sidecar of ``engine_path``; a missing one is an :class:`EngineMismatchError`."""
    path = manifest_path(engine_path)
    if not path.is_file():
        raise EngineMismatchError(
            f"engine {engine_path} has no manifest ({path.name}); an engine of unknown origin "
            "cannot be checked: rebuild it with hermes-export build"
        )
    return EngineManifest.from_json(path.read_text(), str(path))


def onnx_facts(onnx_path: PathLike) -> dict[str, Any]:
    """sha256, ModelSpec (or None), precision and custom-op plugins of an ONNX file."""
    onnx = require("onnx", purpose="Reading the facts of an ONNX model")

    from ...spec import METADATA_KEY

    path = Path(onnx_path)
    model = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    spec = json.loads(props[METADATA_KEY]) if METADATA_KEY in props else None
    plugins: dict[tuple[str, str, str], None] = {}
    for node in model.graph.node:
        if node.domain and node.domain not in ("ai.onnx", ""):
            attrs = {a.name: a.s.decode() for a in node.attribute
                     if a.name in ("plugin_version", "plugin_namespace")}
            plugins[(node.op_type, attrs.get("plugin_version", "1"),
                     attrs.get("plugin_namespace", node.domain))] = None
    if spec is not None and spec.get("precision"):
        precision = spec["precision"]
    else:
        precision = _graph_precision(model, onnx)
    return {"onnx_sha256": file_sha256(path), "spec": spec, "precision": precision,
            "plugins": [{"name": n, "version": v, "namespace": ns}
                        for n, v, ns in sorted(plugins)]}


def _graph_precision(model: Any, onnx: Any) -> str:
    ops = {n.op_type for n in model.graph.node}
    if {"QuantizeLinear", "DequantizeLinear"} & ops:
        return "int8"
    half = onnx.TensorProto.FLOAT16
    if any(t.data_type == half for t in model.graph.initializer) or any(
            a.name == "to" and a.i == half for n in model.graph.node for a in n.attribute):
        return "fp16"
    return "fp32"


def cache_key(*, flavour: str, trt_version: str, compute_capability: str, onnx_sha256: str,
              profiles: list[Mapping[str, Any]], build: Mapping[str, Any],
              plugins: list[Mapping[str, str]],
              plugin_libraries: list[Mapping[str, str]] | None = None) -> str:
    """Hash of every fact that determines the engine bytes (hex, 32 characters).

    Plugin libraries count by content (sha256), not by path; without any the key is the
    one earlier versions computed, so their cache entries stay valid.
    """
    facts = {"flavour": flavour, "trt_version": trt_version,
             "compute_capability": compute_capability, "onnx_sha256": onnx_sha256,
             "profiles": [{k: [list(map(int, s)) for s in v] for k, v in p.items()}
                          for p in profiles],
             "build": {k: build.get(k) for k in _ENGINE_OPTIONS},
             "plugins": [dict(p) for p in plugins], "manifest_version": MANIFEST_VERSION}
    if plugin_libraries:
        facts["plugin_libraries"] = [lib["sha256"] for lib in plugin_libraries]
    text = json.dumps(facts, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def rebuild_command(manifest: EngineManifest, engine_path: PathLike,
                    compute_capability: str | None = None) -> str:
    """The ``hermes-export build`` command line that rebuilds this engine.

    ``compute_capability`` replaces the recorded RTX target (to rebuild for this GPU).
    """
    parts = ["hermes-export build", manifest.onnx_name or "MODEL.onnx", "-o", str(engine_path),
             "--trt", manifest.flavour]
    if manifest.flavour == "tensorrt-rtx":
        parts += ["--compute-capability", compute_capability or manifest.compute_capability]
    build = manifest.build
    if build.get("tile"):
        parts += ["--tile", "x".join(str(v) for v in build["tile"])]
    elif manifest.profiles:
        for profile in manifest.profiles:
            for label, i in (("--min", 0), ("--opt", 1), ("--max", 2)):
                shapes = ",".join(f"{name}:{'x'.join(map(str, triple[i]))}"
                                  for name, triple in profile.items())
                parts += [label, shapes]
    if build.get("workspace_mb"):
        parts += ["--workspace", str(build["workspace_mb"])]
    if build.get("optimization_level") is not None:
        parts += ["--builder-optimization-level", str(build["optimization_level"])]
    for lib in manifest.plugin_libraries:
        parts += ["--plugins", plugin_library_path(engine_path, lib["path"])]
    return " ".join(parts)


def check_manifest(manifest: EngineManifest, engine_path: PathLike, *, flavour: Flavour | str,
                   trt_version: str, compute_capability: str | None = None,
                   onnx_path: PathLike | None = None, check_engine_file: bool = True) -> None:
    """Refuse an engine that does not fit what is running; one line says what to rebuild.

    ``flavour`` / ``trt_version`` describe the TensorRT that will deserialize the engine,
    ``compute_capability`` the GPU that will run it (``"SM89"``; None skips the check,
    e.g. on a machine without a GPU). With ``onnx_path`` the ONNX must be unchanged since
    the build. Every plugin library the manifest records must exist (relative paths from
    the engine's folder) with its recorded sha256. With ``check_engine_file`` the engine
    file must be the one the manifest describes (same sha256).
    """
    how = f"rebuild it: {rebuild_command(manifest, engine_path)}"
    name = Path(engine_path).name
    if manifest.manifest_version != MANIFEST_VERSION:
        raise EngineMismatchError(f"engine {name} has manifest version {manifest.manifest_version}"
                                  f", this package reads {MANIFEST_VERSION}; {how}")
    if manifest.flavour != flavour:
        raise EngineMismatchError(
            f"engine {name} was built by {manifest.product} but is being loaded with "
            f"{Flavour.parse(flavour).product}; {how}")
    if manifest.trt_version != trt_version:
        raise EngineMismatchError(
            f"engine {name} was built with {manifest.product} {manifest.trt_version} but "
            f"{trt_version} is installed; {how}")
    if compute_capability is not None and manifest.compute_capability != "CURRENT":
        running = normalize_capability(compute_capability)
        if running != manifest.compute_capability:
            raise EngineMismatchError(
                f"engine {name} targets compute capability {manifest.compute_capability} but "
                f"this GPU is {running}; rebuild it: "
                f"{rebuild_command(manifest, engine_path, running)}"
                if manifest.flavour == "tensorrt-rtx" else
                f"engine {name} was built on a {manifest.compute_capability} GPU but this GPU "
                f"is {running}; {how} (on this machine)")
    if onnx_path is not None:
        current = file_sha256(onnx_path)
        if current != manifest.onnx_sha256:
            raise EngineMismatchError(
                f"{Path(onnx_path).name} changed since engine {name} was built from it "
                f"(sha256 {manifest.onnx_sha256[:12]} -> {current[:12]}); {how}")
    for lib in manifest.plugin_libraries:
        path = plugin_library_path(engine_path, lib["path"])
        if not Path(path).is_file():
            raise InputError(
                f"plugin library {path} that engine {name} needs does not exist (the manifest "
                f"records {lib['path']}, relative to the engine's folder); put it there or {how}")
        current = file_sha256(path)
        if current != lib["sha256"]:
            raise EngineMismatchError(
                f"plugin library {path} is not the one engine {name} was built with (sha256 "
                f"{lib['sha256'][:12]} -> {current[:12]}); {how}")
    if check_engine_file:
        if not Path(engine_path).is_file():
            raise InputError(f"engine {engine_path} does not exist; build it with hermes-export "
                             "build")
        if file_sha256(engine_path) != manifest.engine_sha256:
            raise EngineMismatchError(
                f"engine {name} is not the file its manifest describes (sha256 differs); {how}")


def running_trt(flavour: Flavour | str) -> tuple[Any, str]:
    """Import the TensorRT of ``flavour``; return ``(module, version)``."""
    trt = Flavour.parse(flavour).load()
    return trt, str(getattr(trt, "__version__", "unknown"))
