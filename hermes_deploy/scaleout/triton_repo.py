"""A Triton Inference Server model repository for a HERMES model (``hermes-export triton``).

``write_repository(["model.onnx"], "repo")`` writes three models::

    repo/hermes_network/   the network on tiles: onnxruntime_onnx, openvino, or
                           tensorrt_plan (one engine per compute capability,
                           cc_model_filenames), dynamic batching over fixed tile shapes
    repo/hermes_context/   the per-image context graph (ONNX: onnxruntime or openvino;
                           it stays an ONNX next to an engine, as in TrtRunner)
    repo/hermes_restore/   Python backend: whole images in (UINT8 ``IMAGE`` or UINT16
                           ``IMAGE16``, HxWxC, C = 1-4), the restored image out
                           (``RESTORED`` / ``RESTORED16``), tiled with the project's tile
                           grid and blend (:mod:`.triton_backend`)

``hermes_restore`` runs the tiles one of two ways (``restore``):

- ``local`` (default): in-process, with a runner of this package (``open_runner`` on
  the ONNX pair copied into its version folder; onnxruntime unless told otherwise).
  The simplest that works anywhere Triton's Python backend runs, and the one run
  here (the ``tritonserver`` of ``nvidia-pytriton`` has the Python backend only).
- ``bls``: every tile batch is a BLS request to ``hermes_network`` and the context one
  to ``hermes_context``, so Triton's dynamic batcher merges tiles of concurrent
  requests into one engine call - the GPU deployment. Written against the documented
  BLS API; checked here with a stand-in for ``triton_python_backend_utils``, not in a
  server (no ONNX Runtime or TensorRT backend in the pytriton build).

Dims are read from the graphs (ONNX inputs, or the engine manifest's profiles): -1
where a size varies. Tiles of one plan all have one shape, so the batcher can merge
them; ``max_batch_size`` and the queue delay bound how many and how long it waits.
Nothing here needs Triton installed; :func:`parse_config` checks a ``config.pbtxt``
with Triton's own ``model_config_pb2`` (``tritonclient``).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..engines.select import cached_onnx
from ..errors import InputError
from ..optional import require
from ..spec import ModelSpec

NETWORK, CONTEXT, RESTORE = "hermes_network", "hermes_context", "hermes_restore"
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
NETWORK_BACKENDS = ("auto", "onnxruntime", "openvino", "tensorrt")
RESTORE_MODES = ("local", "bls")
KINDS = ("auto", "gpu", "cpu")
# ONNX TensorProto element types -> Triton data types (the ones a HERMES graph uses)
ONNX_TYPES = {1: "TYPE_FP32", 10: "TYPE_FP16", 16: "TYPE_BF16", 11: "TYPE_FP64", 7: "TYPE_INT64",
              6: "TYPE_INT32", 2: "TYPE_UINT8", 4: "TYPE_UINT16", 9: "TYPE_BOOL"}
NUMPY_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "bfloat16": "TYPE_BF16",
               "int32": "TYPE_INT32", "int64": "TYPE_INT64", "uint8": "TYPE_UINT8", "bool": "TYPE_BOOL"}
MODEL_PY = '''"""hermes_restore: whole images in, restored images out (written by hermes-export triton).

The code lives in hermes_deploy.scaleout.triton_backend; the server's Python needs
hermes-deploy (and the runner's backend, e.g. onnxruntime) installed.
"""

import triton_python_backend_utils as pb_utils

from hermes_deploy.scaleout.triton_backend import RestoreModel


class TritonPythonModel(RestoreModel):
    pb = pb_utils
'''


@dataclass(frozen=True)
class TritonOptions:
    network_backend: str = "auto"  # auto: tensorrt for engines, onnxruntime for ONNX
    restore: str = "local"  # local | bls (see module doc)
    restore_backend: str = "onnxruntime"  # the in-process runner of restore=local
    kind: str = "auto"  # instance kind of the network: auto (GPU for engines) | gpu | cpu
    instances: int = 1  # instances of the network and of hermes_restore
    max_batch_size: int = 8  # tiles per network call the batcher may form
    queue_delay_us: int = 2000  # how long the batcher waits to fill a batch
    tile: tuple[int, int] = (256, 256)  # hermes_restore's tile (a static graph's own wins)
    overlap: int | None = None  # None: the model's recommended overlap
    batch: int = 1  # tiles per call from hermes_restore
    threads: int = 0  # intra-op threads of the local runner (0: the backend's default)
    context_size: int = 1024  # images with a longer side get their context from a copy this size
    max_pixels: int = 0  # largest accepted image in pixels (0: the runtime's default limit)


@dataclass
class Repository:
    path: Path
    models: dict[str, Path] = field(default_factory=dict)  # model name -> folder
    network_platform: str = ""
    plugins: list[str] = field(default_factory=list)  # TensorRT plugins the engines need
    plugin_libraries: list[str] = field(default_factory=list)  # as the manifests record them
    restore: str = "local"  # how hermes_restore runs its tiles (TritonOptions.restore)

    @property
    def plugins_flag(self) -> str:
        """Triton's TensorRT backend option that loads the plugin libraries (``;``-separated)."""
        libs = ";".join(self.plugin_libraries) or "/path/to/libhermes_trt_plugins.so"
        return f"--backend-config=tensorrt,plugins={libs}"

    @property
    def configs(self) -> list[Path]:
        return [folder / "config.pbtxt" for folder in self.models.values()]

    def server_command(self) -> str:
        """The line that serves this repository: ``hermes-export serve-triton`` (this
        machine, CPU, nvidia-pytriton's server) where ``hermes_restore`` runs its tiles in
        process; else ``tritonserver`` in NVIDIA's Triton container (README)."""
        if self.restore == "local" and self.network_platform != "tensorrt_plan":
            return f"hermes-export serve-triton {shlex.quote(str(self.path))}"
        line = f"tritonserver --model-repository={self.path}"
        if self.plugins:
            line += " " + self.plugins_flag
        return line


# ----------------------------------------------------------------------------- pbtxt text


def _q(text: str) -> str:
    return json.dumps(str(text))  # a protobuf text string literal (JSON escapes are valid)


def _tensor(name: str, dtype: str, dims: list[int], optional: bool = False) -> str:
    extra = " optional: true" if optional else ""
    return f"  {{ name: {_q(name)} data_type: {dtype} dims: [ {', '.join(map(str, dims))} ]{extra} }}"


def _block(key: str, entries: list[str]) -> str:
    return f"{key} [\n" + ",\n".join(entries) + "\n]\n"


def _parameters(params: dict[str, str]) -> str:
    return "".join(f"parameters {{ key: {_q(k)} value: {{ string_value: {_q(v)} }} }}\n"
                   for k, v in params.items())


def config_text(*, name: str, platform: str | None = None, backend: str | None = None,
                max_batch_size: int, inputs: list[str], outputs: list[str],
                kind: str, count: int, batching: tuple[list[int], int] | None = None,
                default_filename: str | None = None, cc_filenames: dict[str, str] | None = None,
                params: dict[str, str] | None = None, notes: list[str] = ()) -> str:
    """One ``config.pbtxt`` (protobuf text format of Triton's ``ModelConfig``)."""
    text = "".join(f"# {line}\n" for line in notes)
    text += f"name: {_q(name)}\n"
    text += f"platform: {_q(platform)}\n" if platform else f"backend: {_q(backend)}\n"
    text += f"max_batch_size: {max_batch_size}\n"
    if default_filename:
        text += f"default_model_filename: {_q(default_filename)}\n"
    for cc, filename in (cc_filenames or {}).items():
        text += f"cc_model_filenames {{ key: {_q(cc)} value: {_q(filename)} }}\n"
    text += _block("input", inputs) + _block("output", outputs)
    if batching is not None:
        preferred, delay = batching
        pref = f" preferred_batch_size: [ {', '.join(map(str, preferred))} ]" if preferred else ""
        text += f"dynamic_batching {{{pref} max_queue_delay_microseconds: {delay} }}\n"
    text += f"instance_group [ {{ count: {count} kind: {kind} }} ]\n"
    return text + _parameters(params or {})


def parse_config(path: str | os.PathLike):
    """Parse a ``config.pbtxt`` with Triton's model-config protobuf (``tritonclient``);
    returns the ``ModelConfig`` message, or raises ``InputError`` saying where it fails."""
    require("tritonclient", extra="triton-server", purpose="Checking a Triton config.pbtxt")
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    text = Path(path).read_text()
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise InputError(f"{path}: not a valid Triton model configuration ({exc})") from None


# ----------------------------------------------------------------------------- graphs


def _onnx_io(path: Path) -> tuple[list[tuple[str, str, list[int]]], list[tuple[str, str, list[int]]]]:
    """(inputs, outputs) of an ONNX graph as (name, Triton type, dims; -1 = dynamic)."""
    onnx = require("onnx", purpose="Reading an ONNX graph's inputs")
    graph = onnx.load(str(path), load_external_data=False).graph
    init = {i.name for i in graph.initializer}

    def entry(value):
        t = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        return value.name, ONNX_TYPES.get(t.elem_type, "TYPE_FP32"), dims

    return [entry(v) for v in graph.input if v.name not in init], [entry(v) for v in graph.output]


def _batched(io: list[tuple[str, str, list[int]]]) -> bool:
    return bool(io) and all(dims and dims[0] == -1 for _, _, dims in io)


def _io_entries(io, drop_batch: bool) -> list[str]:
    return [_tensor(n, t, d[1:] if drop_batch else d) for n, t, d in io]


def _profile_dims(manifest) -> tuple[list[tuple[str, str, list[int]]], int]:
    """Engine inputs with -1 where the profiles let a size vary; the largest batch every
    profile accepts (0 when the batch is fixed in the engine)."""
    inputs = []
    max_batch = None
    for name, dtype, shape in manifest.inputs:
        ranges = [p[name] for p in manifest.profiles if name in p] or [[shape, shape, shape]]
        dims = []
        for axis, size in enumerate(shape):
            lo = {r[0][axis] for r in ranges}
            hi = {r[2][axis] for r in ranges}
            dims.append(size if size != -1 else (lo.pop() if lo == hi and len(lo) == 1 else -1))
        if shape and shape[0] == -1:
            top = min(r[2][0] for r in ranges)
            max_batch = top if max_batch is None else min(max_batch, top)
        inputs.append((name, NUMPY_TYPES.get(str(dtype), "TYPE_FP32"), dims))
    return inputs, int(max_batch or 0)


def compute_capability_key(cc: str) -> str | None:
    """``SM89`` -> ``8.9`` (Triton's cc_model_filenames key); None when unknown."""
    digits = cc.upper().removeprefix("SM")
    if not digits.isdigit() or len(digits) < 2:
        return None
    return f"{digits[:-1]}.{digits[-1]}"


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)  # no second copy of a large graph on the same file system
    except OSError:
        shutil.copy2(src, dst)


# ----------------------------------------------------------------------------- repository


def _resolve(artifacts: list[str], say=None):
    """(onnx path, [(engine, manifest)])."""
    if not artifacts:
        raise InputError("pass a model: a bundled name, a checkpoint, an exported .onnx or "
                         "one or more TensorRT .engine files")
    engines = [Path(a) for a in artifacts if Path(a).suffix.lower() in ENGINE_SUFFIXES]
    others = [a for a in artifacts if Path(a).suffix.lower() not in ENGINE_SUFFIXES]
    if engines and others or len(others) > 1:
        raise InputError("pass one model (name, checkpoint or .onnx), or engines of one ONNX "
                         f"built for different GPUs; got {', '.join(artifacts)}")
    if not engines:
        model = others[0]
        if Path(model).suffix.lower() == ".onnx":
            if not Path(model).is_file():
                raise InputError(f"'{model}' does not exist; export it with hermes-export onnx")
            return Path(model), []
        return cached_onnx(model, say=say), []
    from ..engines.trt.manifest import read_manifest

    pairs = []
    for engine in engines:
        if not engine.is_file():
            raise InputError(f"'{engine}' does not exist; build it with hermes-export build")
        pairs.append((engine, read_manifest(engine)))
    first = pairs[0][1]
    for engine, manifest in pairs[1:]:
        if manifest.onnx_sha256 != first.onnx_sha256 or manifest.profiles != first.profiles:
            raise InputError(f"{engine.name} was built from another ONNX or with other profiles "
                             f"than {pairs[0][0].name}; one repository serves one network")
    onnx = pairs[0][0].with_name(Path(first.onnx_name).name) if first.onnx_name else None
    if onnx is None or not onnx.is_file():
        raise InputError(f"the ONNX the engine was built from ({first.onnx_name or 'unnamed'}) "
                         f"must sit beside {pairs[0][0].name}: its context graph serves "
                         "hermes_context")
    return onnx, pairs


def write_repository(artifacts: list[str], outdir: str | os.PathLike,
                     options: TritonOptions = TritonOptions(), say=None) -> Repository:
    """Write the model repository (see module doc) into ``outdir``; returns what it wrote."""
    o = options
    for value, allowed, what in ((o.network_backend, NETWORK_BACKENDS, "--network-backend"),
                                 (o.restore, RESTORE_MODES, "--restore"), (o.kind, KINDS, "--kind")):
        if value not in allowed:
            raise InputError(f"{what} must be one of {', '.join(allowed)}, got '{value}'")
    if o.instances < 1 or o.max_batch_size < 0 or o.batch < 1:
        raise InputError("--instances and --batch must be >= 1 and --max-batch-size >= 0")
    onnx, engines = _resolve(list(artifacts), say)
    spec = ModelSpec.from_onnx(onnx)
    if spec.single_graph:
        raise InputError(f"'{onnx.name}' is a single graph; a Triton repository serves the pair "
                         "(one context per image, shared by its tiles): export it without "
                         "--single-graph")
    from ..export.ort import context_graph_path

    context = context_graph_path(onnx, spec)
    backend = o.network_backend
    if backend == "auto":
        backend = "tensorrt" if engines else "onnxruntime"
    if backend == "tensorrt" and not engines:
        raise InputError("--network-backend tensorrt needs engines; build them with hermes-export "
                         "build and pass the .engine files")
    if engines and backend != "tensorrt":
        raise InputError("engines are served by the tensorrt backend; drop --network-backend "
                         "or pass the .onnx instead")
    if o.restore == "bls" and backend != "tensorrt" and spec.target == "tensorrt":
        raise InputError("a tensorrt-target graph has plugin nodes that Triton's onnxruntime and "
                         "openvino backends cannot run; export --target portable")
    from ..runtime.plan import TileOptions, check_options

    check_options(spec, TileOptions(tile=tuple(o.tile), overlap=o.overlap, batch=o.batch))
    root = Path(outdir)
    root.mkdir(parents=True, exist_ok=True)
    repo = Repository(path=root, restore=o.restore)
    gpu = o.kind == "gpu" or (o.kind == "auto" and backend == "tensorrt")
    net_kind = "KIND_GPU" if gpu else "KIND_CPU"

    # -- the network
    folder = root / NETWORK
    version = folder / "1"
    notes = [f"HERMES x{spec.scale} network on tiles ({spec.precision}); written by hermes-export triton.",
             "Tiles of one image share one shape, so the dynamic batcher can merge tiles of",
             "concurrent requests; -1 marks a size that varies."]
    if engines:
        inputs, max_batch = _profile_dims(engines[0][1])
        outputs = [(n, NUMPY_TYPES.get(str(d), "TYPE_FP32"), list(s)) for n, d, s in engines[0][1].outputs]
        cc_files = {}
        default = None
        for engine, manifest in engines:
            key = compute_capability_key(manifest.compute_capability)
            filename = f"model.{manifest.compute_capability.lower()}.plan" if key else "model.plan"
            _link_or_copy(engine, version / filename)
            if key:
                cc_files[key] = filename
            default = default or filename
        repo.plugins = sorted({p.get("name", "") for _, m in engines for p in m.plugins} - {""})
        from ..engines.trt.manifest import plugin_library_path

        repo.plugin_libraries = sorted({plugin_library_path(e, lib["path"])
                                        for e, m in engines for lib in m.plugin_libraries})
        if repo.plugins:
            notes += [f"The engine uses TensorRT plugins ({', '.join(repo.plugins)}): start the server with",
                      f"  {repo.plugins_flag}",
                      "(or LD_PRELOAD the plugin library) so TensorRT can deserialize it."]
        drop = max_batch > 0
        net = config_text(name=NETWORK, platform="tensorrt_plan", max_batch_size=max_batch,
                          inputs=_io_entries(inputs, drop), outputs=_io_entries(outputs, drop),
                          kind="KIND_GPU", count=o.instances,
                          batching=([max_batch], o.queue_delay_us) if drop else None,
                          default_filename=default, cc_filenames=cc_files, notes=notes)
        repo.network_platform = "tensorrt_plan"
    else:
        inputs, outputs = _onnx_io(onnx)
        drop = _batched(inputs + outputs) and o.max_batch_size > 0
        _link_or_copy(onnx, version / "model.onnx")
        net = config_text(name=NETWORK, **_backend_of(backend),
                          max_batch_size=o.max_batch_size if drop else 0,
                          inputs=_io_entries(inputs, drop), outputs=_io_entries(outputs, drop),
                          kind=net_kind, count=o.instances,
                          batching=([o.max_batch_size], o.queue_delay_us) if drop else None,
                          default_filename="model.onnx", notes=notes)
        repo.network_platform = "onnxruntime_onnx" if backend == "onnxruntime" else "openvino"
    (folder / "config.pbtxt").write_text(net)
    repo.models[NETWORK] = folder

    # -- the context graph (once per image, small: CPU)
    folder = root / CONTEXT
    cin, cout = _onnx_io(context)
    cdrop = _batched(cin + cout)
    _link_or_copy(context, folder / "1" / "model.onnx")
    ctx_backend = "openvino" if backend == "openvino" else "onnxruntime"
    (folder / "config.pbtxt").write_text(config_text(
        name=CONTEXT, **_backend_of(ctx_backend), max_batch_size=1 if cdrop else 0,
        inputs=_io_entries(cin, cdrop), outputs=_io_entries(cout, cdrop),
        kind="KIND_CPU", count=1, default_filename="model.onnx",
        notes=["HERMES per-image context (whole image, or a downscaled copy, in; a vector out)."]))
    repo.models[CONTEXT] = folder

    # -- hermes_restore (Python backend)
    folder = root / RESTORE
    version = folder / "1"
    version.mkdir(parents=True, exist_ok=True)
    (version / "model.py").write_text(MODEL_PY)
    params = {"mode": o.restore, "tile": f"{o.tile[0]}x{o.tile[1]}", "batch": str(o.batch),
              "overlap": "" if o.overlap is None else str(o.overlap),
              "context_size": str(o.context_size), "max_pixels": str(o.max_pixels),
              "spec": spec.to_json()}
    if o.restore == "local":
        _link_or_copy(onnx, version / onnx.name)
        _link_or_copy(context, version / context.name)
        params |= {"model_file": onnx.name, "backend": o.restore_backend, "threads": str(o.threads)}
    else:
        params |= {"network_model": NETWORK, "context_model": CONTEXT,
                   "context_input": cin[0][0], "context_output": cout[0][0],
                   "network_batched": "1" if drop else "0", "context_batched": "1" if cdrop else "0"}
    image = [-1, -1, -1]
    (folder / "config.pbtxt").write_text(config_text(
        name=RESTORE, backend="python", max_batch_size=0,
        inputs=[_tensor("IMAGE", "TYPE_UINT8", image, optional=True),
                _tensor("IMAGE16", "TYPE_UINT16", image, optional=True)],
        outputs=[_tensor("RESTORED", "TYPE_UINT8", image),
                 _tensor("RESTORED16", "TYPE_UINT16", image)],
        kind="KIND_CPU", count=o.instances, params=params,
        notes=["Whole images in (IMAGE: UINT8 or IMAGE16: UINT16, HxWxC with C = 1-4), the restored",
               "image out in the same type (RESTORED / RESTORED16), tiled with the hermes-deploy",
               f"tile grid and blend; mode {o.restore}: "
               + ("tiles run in-process on the ONNX pair in 1/." if o.restore == "local" else
                  f"tiles are BLS requests to {NETWORK}, the context to {CONTEXT}.")]))
    repo.models[RESTORE] = folder
    return repo


def _backend_of(name: str) -> dict[str, str]:
    return {"platform": "onnxruntime_onnx"} if name == "onnxruntime" else {"backend": "openvino"}
