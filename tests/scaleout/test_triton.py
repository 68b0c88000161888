"""The Triton model repository: configs parsed by Triton's own protobuf, the
``hermes_restore`` code against the local runtime, and a real ``tritonserver``
(nvidia-pytriton's, Python backend only) against ``hermes-export infer``."""

from __future__ import annotations

import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from hermes_deploy.quality.photos import load_photo
from hermes_deploy.runtime.plan import TileOptions

from .conftest import TILE, need


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "hermes_deploy.cli.app", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def _photo(h=48, w=64, depth=8, name="coffee", y=40, x=60):
    crop = load_photo(name)[y:y + h, x:x + w]
    peak = 65535 if depth == 16 else 255
    return (crop * peak + 0.5).astype(np.uint16 if depth == 16 else np.uint8)


def _psnr(a, b, peak):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak ** 2 / mse)


def _read(path):
    import pyvips

    return pyvips.Image.new_from_file(str(path)).numpy()


# ----------------------------------------------------------------------------- configs


def test_repository_configs_parse_with_tritons_protobuf(default_onnx, tmp_path):
    need("tritonclient", "'hermes-deploy[triton-server]'")
    from hermes_deploy.scaleout.triton_repo import TritonOptions, parse_config, write_repository

    for mode in ("local", "bls"):
        repo = write_repository([str(default_onnx)], tmp_path / mode,
                                TritonOptions(restore=mode, tile=TILE, max_batch_size=4, instances=2))
        configs = {p.parent.name: parse_config(p) for p in repo.configs}
        assert sorted(configs) == ["hermes_context", "hermes_network", "hermes_restore"]
        net = configs["hermes_network"]
        assert net.platform == "onnxruntime_onnx" and net.max_batch_size == 4
        assert [(i.name, list(i.dims)) for i in net.input] == [("input", [3, -1, -1]), ("context", [48])]
        assert list(net.output[0].dims) == [3, -1, -1]
        assert list(net.dynamic_batching.preferred_batch_size) == [4]
        assert net.instance_group[0].count == 2
        assert (repo.models["hermes_network"] / "1" / "model.onnx").is_file()
        restore = configs["hermes_restore"]
        assert restore.backend == "python" and restore.max_batch_size == 0
        assert [(i.name, i.optional) for i in restore.input] == [("IMAGE", True), ("IMAGE16", True)]
        params = {k: v.string_value for k, v in restore.parameters.items()}
        assert params["mode"] == mode and params["tile"] == "32x32"
        if mode == "local":
            assert (repo.models["hermes_restore"] / "1" / params["model_file"]).is_file()
        else:
            assert params["network_model"] == "hermes_network"
    broken = tmp_path / "broken.pbtxt"
    broken.write_text((repo.models["hermes_network"] / "config.pbtxt").read_text()
                      .replace("max_batch_size: 4", "max_batch_size: four"))
    from hermes_deploy.errors import InputError

    with pytest.raises(InputError, match="not a valid Triton model configuration"):
        parse_config(broken)


def test_engine_repository_dims_from_profiles(default_onnx, tmp_path):
    """tensorrt_plan from engine manifests (the engine bytes are not read): dims from the
    profiles, one file per compute capability, the plugin note."""
    need("tritonclient", "'hermes-deploy[triton-server]'")
    from hermes_deploy.engines.trt.manifest import EngineManifest, write_manifest
    from hermes_deploy.scaleout.triton_repo import parse_config, write_repository

    folder = tmp_path / "engines"
    folder.mkdir()
    onnx = folder / default_onnx.name
    shutil.copy(default_onnx, onnx)
    shutil.copy(default_onnx.with_name(default_onnx.stem + ".context.onnx"), folder)
    engines = []
    for cc in ("SM89", "SM86"):
        engine = folder / f"model-{cc}.engine"
        engine.write_bytes(b"not a real engine")
        write_manifest(engine, EngineManifest(
            flavour="tensorrt", trt_version="10.13.0", compute_capability=cc, onnx_sha256="ab",
            engine_sha256="cd", precision="fp16",
            profiles=[{"input": [[1, 3, 64, 64], [4, 3, 64, 64], [8, 3, 64, 64]],
                       "context": [[1, 48], [4, 48], [8, 48]]}],
            inputs=[["input", "float32", [-1, 3, -1, -1]], ["context", "float32", [-1, 48]]],
            outputs=[["output", "float32", [-1, 3, -1, -1]]],
            plugins=[{"name": "HermesSelectiveScan", "version": "1", "namespace": "hermes"}],
            plugin_libraries=[{"path": "libhermes_trt_plugins.so", "sha256": "0" * 64}],
            onnx_name=onnx.name))
        engines.append(engine)
    repo = write_repository([str(e) for e in engines], tmp_path / "repo")
    text = (repo.models["hermes_network"] / "config.pbtxt").read_text()
    net = parse_config(repo.models["hermes_network"] / "config.pbtxt")
    assert net.platform == "tensorrt_plan" and net.max_batch_size == 8
    assert [list(i.dims) for i in net.input] == [[3, 64, 64], [48]]  # fixed tile shape
    assert dict(net.cc_model_filenames) == {"8.9": "model.sm89.plan", "8.6": "model.sm86.plan"}
    assert net.instance_group[0].kind == net.instance_group[0].KIND_GPU
    assert "plugins=" in text and "HermesSelectiveScan" in text
    # the library the manifests record (beside the engines), not a placeholder
    assert (f"--backend-config=tensorrt,plugins={folder / 'libhermes_trt_plugins.so'}"
            in repo.server_command())
    assert f"plugins={folder / 'libhermes_trt_plugins.so'}" in text
    assert all((repo.models["hermes_network"] / "1" / f).is_file() for f in net.cc_model_filenames.values())


def test_triton_cli_user_errors_are_one_line(tmp_path):
    res = _cli("triton", tmp_path / "missing.onnx", "-o", tmp_path / "repo")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "missing.onnx" in res.stderr


# ----------------------------------------------------------------------------- hermes_restore code


@pytest.mark.parametrize("depth,mode", [(8, "RGB"), (16, "RGB"), (8, "LA")])
def test_image_restorer_equals_restore_file(default_runner, tmp_path, depth, mode):
    """Whole image in memory (what Triton hands the model) == the file pipeline of infer."""
    from hermes_deploy.runtime.pipeline import restore_file
    from hermes_deploy.scaleout.triton_backend import ImageRestorer

    image = _photo(depth=depth)
    if mode == "LA":  # grey + alpha: the alpha channel is upscaled on its own
        grey = image.mean(axis=2).astype(np.uint8)
        alpha = np.linspace(0, 255, image.shape[1], dtype=np.uint8)[None].repeat(image.shape[0], 0)
        image = np.stack([grey, alpha], axis=2)
    src = tmp_path / "in.png"
    import pyvips

    vips = pyvips.Image.new_from_array(image)
    vips = vips.copy(interpretation="rgb16" if depth == 16 else ("b-w" if mode == "LA" else "srgb"))
    vips.write_to_file(str(src))
    options = TileOptions(tile=TILE)
    restore_file(default_runner, src, tmp_path / "out.png", options)
    expected = _read(tmp_path / "out.png").reshape(2 * image.shape[0], 2 * image.shape[1], -1)
    got = ImageRestorer(default_runner, options)(image)
    assert got.dtype == image.dtype and got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_image_restorer_refuses_bad_images(default_runner):
    from hermes_deploy.errors import InputError
    from hermes_deploy.scaleout.triton_backend import ImageRestorer

    restorer = ImageRestorer(default_runner, TileOptions(tile=TILE), max_pixels=10_000)
    with pytest.raises(InputError, match="HxWxC"):
        restorer(np.zeros((8, 8, 5), np.uint8))
    with pytest.raises(InputError, match="pixel limit"):
        restorer(np.zeros((200, 200, 3), np.uint8))


def test_bls_runner_through_a_stand_in(default_runner, default_onnx):
    """BLS mode with a stand-in for triton_python_backend_utils whose requests run the
    repository's graphs in onnxruntime: the same image as the local runner."""
    from hermes_deploy.export.ort import ort_session
    from hermes_deploy.scaleout.triton_backend import BlsRunner, ImageRestorer

    sessions = {"hermes_network": ort_session(default_onnx),
                "hermes_context": ort_session(default_onnx.with_name(default_onnx.stem + ".context.onnx"))}
    calls = []

    class Tensor:
        def __init__(self, name, array):
            self.name, self.array = name, array

        @classmethod
        def from_dlpack(cls, name, capsule):
            return cls(name, np.from_dlpack(types.SimpleNamespace(
                __dlpack__=lambda **kw: capsule, __dlpack_device__=lambda: (1, 0))))

        def __dlpack__(self, **kw):
            return self.array.__dlpack__(**kw)

        def __dlpack_device__(self):
            return self.array.__dlpack_device__()

    class Response:
        def __init__(self, outputs):
            self.outputs = outputs

        def has_error(self):
            return False

    class InferenceRequest:
        def __init__(self, model_name, inputs, requested_output_names):
            self.model, self.inputs, self.wanted = model_name, inputs, requested_output_names

        def exec(self):
            calls.append(self.model)
            out = sessions[self.model].run(self.wanted, {t.name: t.array for t in self.inputs})
            return Response({n: Tensor(n, a) for n, a in zip(self.wanted, out)})

    pb = types.SimpleNamespace(Tensor=Tensor, InferenceRequest=InferenceRequest,
                               get_output_tensor_by_name=lambda r, n: r.outputs[n])
    ctx_in = sessions["hermes_context"].get_inputs()[0].name
    ctx_out = sessions["hermes_context"].get_outputs()[0].name
    runner = BlsRunner(pb, default_runner.spec, {"network_model": "hermes_network",
                                                 "context_model": "hermes_context",
                                                 "context_input": ctx_in, "context_output": ctx_out})
    image = _photo()
    options = TileOptions(tile=TILE, batch=2)
    got = ImageRestorer(runner, options)(image)
    expected = ImageRestorer(default_runner, options)(image)
    assert calls[0] == "hermes_context" and calls.count("hermes_network") == 3  # 6 tiles, 2 a call
    assert _psnr(got, expected, 255) >= 50


# ----------------------------------------------------------------------------- real server


class Served:
    """A ``hermes-export serve-triton`` process started as the README says (foreground)."""

    def __init__(self, process, http_port, log):
        self.process, self.http_url, self.log = process, f"127.0.0.1:{http_port}", log

    def alive(self) -> bool:
        return self.process.poll() is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hidden(*modules):
    """``python -c`` code that runs the CLI with ``modules`` made unimportable."""
    return [sys.executable, "-c", f"import sys; sys.modules.update(dict.fromkeys({modules!r}))\n"
            "from hermes_deploy.cli.app import main; sys.argv[0] = 'hermes-export'; main()"]


@pytest.fixture(scope="module")
def triton_server(default_onnx, tmp_path_factory):
    need("pytriton", "--no-deps nvidia-pytriton (see README)")
    need("tritonclient", "'hermes-deploy[triton-server]'")
    tmp = tmp_path_factory.mktemp("triton")
    res = _cli("triton", default_onnx, "-o", tmp / "repo", "--tile", f"{TILE[0]}x{TILE[1]}",
               "--restore-backend", "onnxruntime")
    assert res.returncode == 0, res.stderr
    # the command the CLI hints is the one that serves it here (CPU, pytriton's server)
    hint = next(ln for ln in res.stdout.splitlines() if ln.startswith("serve it: "))
    argv = shlex.split(hint[len("serve it: "):])
    assert argv[:2] == ["hermes-export", "serve-triton"] and Path(argv[2]) == tmp / "repo"
    http = free_port()
    log = open(tmp / "server.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "hermes_deploy.cli.app", *argv[1:],
                                "--http-port", str(http), "--grpc-port", str(free_port())],
                               stdout=log, stderr=subprocess.STDOUT)
    server = Served(process, http, tmp / "server.log")
    deadline = time.monotonic() + 180
    try:
        while True:
            assert server.alive(), (tmp / "server.log").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "not ready in 180 s"
            try:
                with urllib.request.urlopen(f"http://{server.http_url}/v2/models/hermes_restore/ready",
                                            timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.25)
        yield server, tmp
    finally:
        process.send_signal(signal.SIGTERM)  # what Ctrl-C or a service manager sends
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_serve_triton_without_pytriton_says_what_to_install(tmp_path):
    res = subprocess.run([*_hidden("pytriton"), "serve-triton", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "nvidia-pytriton" in res.stderr and "pip install --no-deps" in res.stderr


def test_serve_triton_needs_none_of_pytritons_python_packages(default_onnx, tmp_path):
    """Only pytriton's server files are used: without the packages its Python code
    imports (left out by ``--no-deps``) the command is the same; a BLS repository, which
    needs backends this server lacks, is refused in one line."""
    need("pytriton", "--no-deps nvidia-pytriton (see README)")
    hidden = ("typing_inspect", "zmq", "sh", "wrapt", "tritonclient")
    for mode in ("local", "bls"):
        res = _cli("triton", default_onnx, "-o", tmp_path / mode, "--restore", mode)
        assert res.returncode == 0, res.stderr
    res = subprocess.run([*_hidden(*hidden), "serve-triton", str(tmp_path / "local"), "--dry-run"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "bin/tritonserver --model-repository=" in res.stdout
    assert "--load-model=hermes_restore" in res.stdout and "LD_LIBRARY_PATH=" in res.stdout
    res = subprocess.run([*_hidden(*hidden), "serve-triton", str(tmp_path / "bls"), "--dry-run"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "--restore local" in res.stderr


def _infer(server, image, name="IMAGE", dtype="UINT8"):
    import tritonclient.http as http

    tensor = http.InferInput(name, list(image.shape), dtype)
    tensor.set_data_from_numpy(image)
    out = "RESTORED16" if name == "IMAGE16" else "RESTORED"
    # closed after each call: an open connection holds the server's stop for 30 s
    with http.InferenceServerClient(server.http_url) as client:
        result = client.infer("hermes_restore", [tensor], outputs=[http.InferRequestedOutput(out)])
    return result.as_numpy(out)


@pytest.mark.slow
@pytest.mark.parametrize("depth", [8, 16])
def test_tritonserver_equals_infer(triton_server, default_onnx, depth):
    server, tmp = triton_server
    image = _photo(h=56, w=72, depth=depth, name="astronaut", y=100, x=180)
    folder = tmp / f"in{depth}"
    folder.mkdir()
    import pyvips

    pyvips.Image.new_from_array(image).copy(interpretation="rgb16" if depth == 16 else "srgb") \
        .write_to_file(str(folder / "photo.png"))
    res = _cli("infer", folder, "-o", tmp / f"out{depth}", "--model", default_onnx,
               "--backend", "onnxruntime", "--tile", f"{TILE[0]}x{TILE[1]}", "--no-progress")
    assert res.returncode == 0, res.stderr
    expected = _read(tmp / f"out{depth}" / "photo.png")
    got = _infer(server, image, *(("IMAGE16", "UINT16") if depth == 16 else ()))
    assert got.shape == expected.shape == (112, 144, 3)
    assert _psnr(got, expected, 65535 if depth == 16 else 255) >= 50


@pytest.mark.slow
def test_tritonserver_bad_image_is_an_error_and_it_keeps_serving(triton_server):
    from tritonclient.utils import InferenceServerException

    server, _ = triton_server
    with pytest.raises(InferenceServerException, match="expected an HxWxC image"):
        _infer(server, np.zeros((8, 8, 5), np.uint8))
    assert server.alive()
    good = _photo(h=16, w=16)
    assert _infer(server, good).shape == (32, 32, 3)
