"""hermes-serve (cpp/serve/), the C++ HTTP service, over real HTTP on loopback.

One Release build per session (scripts/cpp_build.py): test_cpp.py's, when its ``cpp``
fixture ran first in the session, else one made here as that fixture does; or the build
folder ``HERMES_SERVE_BUILD_DIR`` names (the development loop: ``python
scripts/cpp_build.py --build-dir build/cpp-serve``). Each server runs the exported
default model (x2) with ``--port 0`` and is reached through the port its one
``listening on`` line names. Then:

- the JSON endpoints (/healthz, /readyz, /v1/model) and the Prometheus text of /metrics;
- POST /v1/restore equals ``hermes-restore MODEL IN OUT --tile N`` pixel for pixel
  (decoded with pyvips) for RGB, RGBA and 16-bit PNGs, lossless WebP and TIFF, and JPEG
  inputs, with the query's tile, the server's --tile, and each output format;
- every error is one ``{"error", "detail"}`` JSON object with its status: bad query
  values, corrupt and truncated images, formats it does not read, --max-body and
  --max-pixels (configured from the environment), unknown paths and methods, a full
  queue (503 + Retry-After, never a reset or another 5xx), --timeout (504);
- uploads as ``curl -F file=@photo.png`` sends them (multipart/form-data) equal the raw
  body; no body, a zero or missing Content-Length, a truncated body and a malformed form
  are one 400 each, one log line each, counted once, nothing left in flight;
- the port opens before the model loads: /readyz and POST /v1/restore answer 503
  ``not_ready`` until then;
- a broken client (a body shorter than its Content-Length, a garbage request line, an
  idle half-sent request) does not stop it serving;
- SIGTERM / SIGINT with 4 requests in flight: all 4 complete with 200 and the right
  image, new requests get 503 ``shutting_down`` (or no connection), exit status 0 within
  --drain; a request whose body completes after SIGTERM gets 503 ``shutting_down``;
- bad flags and bad models: one ``hermes-serve: `` line on stderr, exit status 2 or 1.

Images are small (40x48 to 256x256) and few distinct sizes are used: OpenVINO compiles
each tile shape once per worker (about a second on 2 cores).
"""

from __future__ import annotations

import dataclasses
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import cpp_build  # noqa: E402

from .toolchain import toolchain_or_skip  # noqa: E402

LISTENING = re.compile(r"^hermes-serve: listening on http://(?P<host>[^\s/]+):(?P<port>\d+) \((?P<what>.*)\)$")
BAD_STDERR = ("Traceback", "terminate called", "Aborted", "Segmentation fault", "core dumped", "Sanitizer")


def _session_build(tmp_path_factory) -> Path | None:
    """The Release build test_cpp.py's ``cpp`` fixture made in this session, if it ran first."""
    for build in sorted(tmp_path_factory.getbasetemp().glob("cpp[0-9]*/build")):
        if (build / "hermes-serve").is_file() and (build / "hermes-restore").is_file():
            return build
    return None


@pytest.fixture(scope="session")
def serve_build(tmp_path_factory) -> Path:
    """A Release build folder holding hermes-serve and hermes-restore."""
    given = os.environ.get("HERMES_SERVE_BUILD_DIR")
    if given:
        build = Path(given).resolve()
    elif _session_build(tmp_path_factory) is not None:
        build = _session_build(tmp_path_factory)
    else:
        toolchain_or_skip()
        build = tmp_path_factory.mktemp("cpp-serve") / "build"
        try:
            cpp_build.build(build)
        except cpp_build.BuildError as exc:
            pytest.fail(str(exc))
    for tool in ("hermes-serve", "hermes-restore"):
        if not (build / tool).is_file():
            pytest.fail(f"{build} has no {tool} (the hermes-serve target in cpp/serve/)")
    return build


# ----------------------------------------------------------------------------- images


def _png(path: Path, pixels: np.ndarray, interpretation: str = "srgb") -> Path:
    import pyvips

    pyvips.Image.new_from_array(np.ascontiguousarray(pixels)).copy(interpretation=interpretation).write_to_file(
        str(path))
    return path


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, Path]:
    """Small inputs of a few sizes (each size is one OpenVINO compile per worker)."""
    import pyvips
    from PIL import Image

    from hermes_deploy.quality.photos import load_photo

    folder = tmp_path_factory.mktemp("serve-images")
    photo = np.clip(load_photo("astronaut"), 0, 1)  # 512x512x3 float
    u8 = (photo * 255 + 0.5).astype(np.uint8)
    small = u8[100:140, 200:248]  # 40x48
    out = {
        "small": _png(folder / "small.png", small),
        "wide": _png(folder / "wide.png", u8[40:136, 180:308]),  # 96x128: several tiles at tile 64
        "wide+1": _png(folder / "wide1.png", u8[40:137, 180:308]),  # 97x128: one row over 12288 pixels
        "square": _png(folder / "square.png", u8[::4, ::4]),  # 128x128 (the drain test)
        "large": _png(folder / "large.png", u8[::2, ::2]),  # 256x256 (overload, timeout)
    }
    alpha = np.linspace(40, 255, small.shape[1]).astype(np.uint8)[None, :, None].repeat(small.shape[0], 0)
    out["rgba"] = _png(folder / "rgba.png", np.concatenate([small, alpha], axis=2))
    u16 = (photo[100:140, 200:248] * 65535 + 0.5).astype(np.uint16)
    out["rgb16"] = _png(folder / "rgb16.png", u16, "rgb16")
    vsmall = pyvips.Image.new_from_file(str(out["small"]))
    vsmall.write_to_file(str(folder / "small.jpg"), Q=90)
    vsmall.write_to_file(str(folder / "small.webp"), lossless=True)
    vsmall.write_to_file(str(folder / "small.tif"))
    out.update(jpg=folder / "small.jpg", webp=folder / "small.webp", tif=folder / "small.tif")
    for name, fmt in (("gif", "GIF"), ("bmp", "BMP")):
        buf = io.BytesIO()
        Image.fromarray(small).save(buf, fmt)
        out[name] = folder / f"small.{name}"
        out[name].write_bytes(buf.getvalue())
    png = out["small"].read_bytes()
    out["truncated"] = folder / "truncated.png"
    out["truncated"].write_bytes(png[: len(png) // 2])
    out["corrupt"] = folder / "corrupt.png"
    out["corrupt"].write_bytes(png[:8] + np.random.default_rng(0).bytes(3000))
    out["text"] = folder / "notes.txt"
    out["text"].write_text("this is not an image\n" * 20)
    return out


def _decode(data: bytes) -> np.ndarray:
    import pyvips

    return pyvips.Image.new_from_buffer(data, "").numpy()


@pytest.fixture(scope="session")
def reference(serve_build, default_onnx, tmp_path_factory):
    """reference(image, tile) -> (pixels, figures) of ``hermes-restore MODEL IN OUT --tile tile``."""
    folder = tmp_path_factory.mktemp("serve-reference")
    cache: dict[tuple[str, str], tuple[np.ndarray, dict]] = {}

    def run(source: Path, tile: str = "256") -> tuple[np.ndarray, dict]:
        key = (str(source), tile)
        if key not in cache:
            out = folder / f"{len(cache)}-{source.stem}.png"
            done = subprocess.run([str(serve_build / "hermes-restore"), str(default_onnx), str(source), str(out),
                                   "--tile", tile], capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            cache[key] = (_decode(out.read_bytes()), json.loads(done.stdout.splitlines()[-1]))
        return cache[key]

    return run


# ----------------------------------------------------------------------------- servers


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> dict:
        assert self.headers.get("content-type", "").split(";")[0].strip() == "application/json", self.headers
        return json.loads(self.body)


def _request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
             timeout: float = 120) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        got = conn.getresponse()
        data = got.read()
        return Reply(got.status, {k.lower(): v for k, v in got.getheaders()}, data)
    finally:
        conn.close()


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERMES_")}
    env.update(extra)
    return env


@dataclass
class Server:
    proc: subprocess.Popen
    port: int = 0
    host: str = ""
    lines: list[str] = field(default_factory=list)  # stderr so far
    listening: threading.Event = field(default_factory=threading.Event)

    def request(self, method: str, path: str, body: bytes | None = None, **kw) -> Reply:
        return _request(self.port, method, path, body, **kw)

    def restore(self, image: Path | bytes, query: str = "", **kw) -> Reply:
        body = image if isinstance(image, bytes) else image.read_bytes()
        return self.request("POST", "/v1/restore" + (f"?{query}" if query else ""), body, **kw)

    def metrics(self) -> "Metrics":
        got = self.request("GET", "/metrics")
        assert got.status == 200, got.body[:300]
        return Metrics.parse(got.body.decode())

    def stderr(self) -> str:
        return "\n".join(self.lines)

    def _read_stderr(self) -> None:
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            m = LISTENING.match(line)
            if m and not self.listening.is_set():
                self.host, self.port = m["host"], int(m["port"])
                self.listening.set()
        self.listening.set()  # EOF: the waiter sees the exit

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(build: Path, model: Path | None, *args: str, env: dict | None = None, timeout: float = 180,
                 poll=None) -> Server:
    """Start hermes-serve and wait for its listening line; ``poll()`` runs meanwhile."""
    cmd = [str(build / "hermes-serve")] + (["--model", str(model)] if model is not None else []) + list(args)
    if not any(a == "--port" for a in args) and "HERMES_PORT" not in (env or {}):
        cmd += ["--port", "0"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env if env is not None else _clean_env())
    server = Server(proc)
    threading.Thread(target=server._read_stderr, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not server.listening.wait(0.05 if poll else 1.0):
        if poll:
            poll()
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"hermes-serve did not start in {timeout} s: {server.stderr()[-3000:]}")
    if not server.port:
        proc.wait(timeout=30)
        pytest.fail(f"hermes-serve exited with {proc.returncode} before listening: {server.stderr()[-3000:]}")
    return server


@pytest.fixture
def serve(serve_build, default_onnx):
    """serve(*flags, env=..., model=...) -> a running Server, stopped after the test."""
    started: list[Server] = []

    def run(*args: str, env: dict | None = None, model: Path | None = default_onnx, **kw) -> Server:
        server = start_server(serve_build, model, *args, env=env, **kw)
        started.append(server)
        return server

    yield run
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server(serve_build, default_onnx):
    """The default configuration (workers 2, queue 16, tile 256), shared by the module."""
    srv = start_server(serve_build, default_onnx)
    yield srv
    srv.stop()


@dataclass
class Metrics:
    series: dict[tuple[str, frozenset], float]
    types: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> "Metrics":
        series, types = {}, {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(None, 3)
                types[name] = kind.strip()
            if not line.strip() or line.startswith("#"):
                continue
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$", line)
            assert m, f"not a Prometheus sample line: {line!r}"
            labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m[2] or ""))
            series[(m[1], labels)] = float(m[3])
        return cls(series, types)

    def get(self, name: str, default: float | None = None, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        if key not in self.series:
            if default is not None:
                return default
            raise AssertionError(f"/metrics has no {name}{labels or ''}; it has {sorted({n for n, _ in self.series})}")
        return self.series[key]

    def labelled(self, name: str) -> dict[frozenset, float]:
        return {labels: v for (n, labels), v in self.series.items() if n == name}


def assert_error(reply: Reply, status: int, kind: str) -> dict:
    assert reply.status == status, (reply.status, reply.body[:300])
    body = reply.json()
    assert set(body) == {"error", "detail"}, body
    assert body["error"] == kind, body
    assert isinstance(body["detail"], str) and body["detail"].strip() and "\n" not in body["detail"], body
    return body


def _assert_clean_stderr(text: str) -> None:
    for bad in BAD_STDERR:
        assert bad not in text, text[-3000:]


# ----------------------------------------------------------------------------- endpoints


def test_listening_line_health_ready_and_model(server, default_onnx):
    from hermes_deploy.spec import ModelSpec

    assert server.host == "127.0.0.1"  # the default --host
    assert sum(bool(LISTENING.match(line)) for line in server.lines) == 1
    health = server.request("GET", "/healthz")
    assert health.status == 200 and health.json() == {"status": "ok"}
    ready = server.request("GET", "/readyz")
    assert ready.status == 200 and ready.json() == {"status": "ready"}
    got = server.request("GET", "/v1/model")
    assert got.status == 200
    model = got.json()
    spec = ModelSpec.from_onnx(default_onnx)
    for f in dataclasses.fields(ModelSpec):
        assert f.name in model, f"/v1/model lacks {f.name}"
    for key in ("scale", "in_channels", "out_channels", "size_multiple", "tile_overlap", "opset", "precision",
                "target"):
        assert model[key] == getattr(spec, key), key
    assert model["scale"] == 2
    assert model["backend"] == "openvino (CPU, f32)"


def _histogram_ok(m: Metrics, name: str) -> None:
    buckets = m.labelled(f"{name}_bucket")
    assert buckets, f"no {name}_bucket series"
    by_le = sorted(((float("inf") if dict(k)["le"] == "+Inf" else float(dict(k)["le"])), v)
                   for k, v in buckets.items())
    assert by_le[-1][0] == float("inf"), "no le=\"+Inf\" bucket"
    counts = [v for _, v in by_le]
    assert counts == sorted(counts), f"{name} buckets are not cumulative: {by_le}"
    assert m.get(f"{name}_count") == by_le[-1][1]
    assert m.get(f"{name}_sum") >= 0


def test_metrics_count_requests_tiles_and_errors(server, images, reference):
    before = server.metrics()
    first = server.restore(images["small"])
    second = server.restore(images["wide"], "tile=64")
    bad = server.restore(images["corrupt"])
    assert first.status == second.status == 200
    assert_error(bad, 400, "decode_failed")
    got = server.request("GET", "/metrics")
    assert got.status == 200
    assert got.headers["content-type"].replace(" ", "") == "text/plain;version=0.0.4", got.headers
    after = Metrics.parse(got.body.decode())
    tiles = int(first.headers["x-hermes-tiles"]) + int(second.headers["x-hermes-tiles"])
    assert tiles == 1 + reference(images["wide"], "64")[1]["tiles"]
    for _ in range(20):  # a worker may count its tiles a moment after the reply
        if after.get("hermes_tiles_total") - before.get("hermes_tiles_total", 0.0) >= tiles:
            break
        time.sleep(0.05)
        after = server.metrics()
    assert after.get("hermes_tiles_total") - before.get("hermes_tiles_total", 0.0) == tiles
    assert after.get("hermes_requests_total", status="200") - before.get("hermes_requests_total", 0.0,
                                                                          status="200") >= 2
    assert after.get("hermes_requests_total", status="400") - before.get("hermes_requests_total", 0.0,
                                                                          status="400") >= 1
    assert after.get("hermes_errors_total", kind="decode_failed") - before.get(
        "hermes_errors_total", 0.0, kind="decode_failed") == 1
    for labels in after.labelled("hermes_errors_total"):
        assert dict(labels).keys() == {"kind"}
    _histogram_ok(after, "hermes_request_seconds")
    assert after.get("hermes_request_seconds_count") - before.get("hermes_request_seconds_count", 0.0) >= 3
    assert after.get("hermes_queue_depth") == 0 and after.get("hermes_in_flight") == 0  # idle
    assert after.get("hermes_tiles_per_second") >= 0


# ----------------------------------------------------------------------------- restore


def _assert_restored(reply: Reply, ref: tuple[np.ndarray, dict], content_type: str = "image/png") -> None:
    pixels, figures = ref
    assert reply.status == 200, reply.body[:300]
    assert reply.headers["content-type"] == content_type
    got = _decode(reply.body)
    assert got.shape == pixels.shape and got.dtype == pixels.dtype, (got.shape, got.dtype, pixels.shape)
    diff = np.abs(got.astype(np.int64) - pixels.astype(np.int64))
    assert diff.max() == 0, f"{int((diff > 0).sum())} samples differ from hermes-restore, by up to {diff.max()}"
    assert reply.headers["x-hermes-grid"] == f"{figures['grid'][0]}x{figures['grid'][1]}"
    assert int(reply.headers["x-hermes-tiles"]) == figures["tiles"]


@pytest.mark.parametrize("name,query,tile", [
    ("small", "", "256"),  # 40x48 -> one tile
    ("wide", "tile=64", "64"),  # 96x128 -> a grid of 64-px tiles, blended
    ("wide", "tile=64x48", "64x48"),
    ("rgba", "", "256"),
    ("rgb16", "", "256"),
])
def test_restore_equals_hermes_restore(server, images, reference, default_onnx, name, query, tile):
    source = images[name]
    reply = server.restore(source, query)
    ref = reference(source, tile)
    _assert_restored(reply, ref)
    h, w = _decode(source.read_bytes()).shape[:2]
    assert ref[0].shape[:2] == (2 * h, 2 * w)
    assert reply.headers["x-hermes-model"] == default_onnx.name
    assert reply.headers["x-hermes-backend"] == "openvino (CPU, f32)"
    assert float(reply.headers["x-hermes-compute-seconds"]) > 0
    assert float(reply.headers["x-hermes-queue-seconds"]) >= 0


@pytest.mark.parametrize("name,content_type", [("jpg", "image/jpeg"), ("webp", "image/webp"),
                                               ("tif", "image/tiff")])
def test_input_formats(server, images, reference, name, content_type):
    """The output keeps the input's format unless ?format= says otherwise."""
    source = images[name]
    same = server.restore(source)
    assert same.status == 200 and same.headers["content-type"] == content_type, same.body[:300]
    as_png = server.restore(source, "format=png")
    # lossless inputs decode to the PNG's pixels; JPEG has its own reference
    _assert_restored(as_png, reference(source if name == "jpg" else images["small"]))
    if name == "tif":  # lossless out too
        assert np.array_equal(_decode(same.body), reference(images["small"])[0])


@pytest.mark.parametrize("fmt,content_type", [("png", "image/png"), ("jpg", "image/jpeg"),
                                              ("webp", "image/webp"), ("tif", "image/tiff")])
def test_output_formats(server, images, reference, fmt, content_type):
    reply = server.restore(images["small"], f"format={fmt}")
    assert reply.status == 200 and reply.headers["content-type"] == content_type, reply.body[:300]
    pixels = reference(images["small"])[0]
    got = _decode(reply.body)
    assert got.shape == pixels.shape
    if fmt in ("png", "tif"):  # lossless
        assert np.array_equal(got, pixels)
    else:  # lossy, but the same picture
        assert np.abs(got.astype(int) - pixels.astype(int)).mean() < 8


def test_settings_from_the_environment_tile_and_size_limits(serve, images, reference, default_onnx):
    """Every setting from HERMES_*; --max-pixels counts input pixels; --max-body bytes."""
    port = _free_port()
    early: list[Reply] = []

    def poll_readyz():  # before the listening line: nothing, or 503 JSON
        try:
            early.append(_request(port, "GET", "/readyz", timeout=2))
        except OSError:
            pass

    srv = serve(model=None, env=_clean_env(HERMES_MODEL=str(default_onnx), HERMES_PORT=str(port),
                                           HERMES_WORKERS="1", HERMES_TILE="64", HERMES_MAX_PIXELS="12288",
                                           HERMES_MAX_BODY="100000", HERMES_QUEUE="3"), poll=poll_readyz)
    assert srv.port == port
    for reply in early:  # a 200 may slip in between the warm-up and the listening line
        assert reply.status in (200, 503), reply
        reply.json()
    assert srv.request("GET", "/readyz").status == 200
    _assert_restored(srv.restore(images["wide"]), reference(images["wide"], "64"))  # 96x128 = 12288: allowed
    assert_error(srv.restore(images["wide+1"]), 413, "too_many_pixels")
    assert_error(srv.restore(b"\x89PNG\r\n\x1a\n" + bytes(100001 - 8)), 413, "body_too_large")
    errors = srv.metrics().labelled("hermes_errors_total")
    assert errors[frozenset({("kind", "too_many_pixels")})] == 1
    assert errors[frozenset({("kind", "body_too_large")})] == 1


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name,status,kind", [
    ("truncated", 400, "decode_failed"),
    ("corrupt", 400, "decode_failed"),
    ("gif", 415, "unsupported_format"),
    ("bmp", 415, "unsupported_format"),
    ("text", 415, "unsupported_format"),
])
def test_bad_bodies(server, images, name, status, kind):
    assert_error(server.restore(images[name]), status, kind)


@pytest.mark.parametrize("query", ["format=nonsense", "tile=abc", "tile=12x", "tile=0", "tile=-64"])
def test_bad_query_values(server, images, query):
    assert_error(server.restore(images["small"], query), 400, "bad_request")


def test_empty_body_is_a_client_error(server):
    reply = server.restore(b"")
    assert reply.status in (400, 415), reply
    assert reply.json()["error"] in ("bad_request", "decode_failed", "unsupported_format")


def test_unknown_paths_and_methods(server):
    assert_error(server.request("GET", "/nope"), 404, "not_found")
    assert_error(server.request("POST", "/v2/restore", b"x"), 404, "not_found")
    assert_error(server.request("GET", "/v1/restore"), 405, "method_not_allowed")


def test_huge_content_length_is_refused_without_waiting_for_the_body(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/restore HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n")
        status, body = _read_raw_response(sock)
    assert status == 413, body
    assert json.loads(body)["error"] == "body_too_large"


def test_overloaded_queue_answers_503_with_retry_after(serve, images):
    srv = serve("--workers", "1", "--queue", "1")
    body = images["large"].read_bytes()
    gate = threading.Barrier(8)

    def post(_):
        gate.wait()
        return srv.restore(body)

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(post, range(8)))  # an exception (a reset) fails the test here
    statuses = sorted(r.status for r in replies)
    assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
    for reply in replies:
        if reply.status == 503:
            assert_error(reply, 503, "overloaded")
            assert re.fullmatch(r"\d+", reply.headers.get("retry-after", "")), reply.headers
        else:
            assert _decode(reply.body).shape == (512, 512, 3)
    after = srv.restore(body)  # afterwards it serves normally
    assert after.status == 200
    m = srv.metrics()
    assert m.get("hermes_errors_total", kind="overloaded") == statuses.count(503)
    assert m.get("hermes_requests_total", status="503") == statuses.count(503)


def test_timeout_gives_504_and_the_flag_wins_over_the_environment(serve, images):
    srv = serve("--timeout", "0.05", "--host", "127.0.0.1",
                env=_clean_env(HERMES_TIMEOUT="600", HERMES_HOST="203.0.113.7"))
    assert srv.host == "127.0.0.1"
    assert_error(srv.restore(images["large"]), 504, "timeout")
    assert srv.request("GET", "/healthz").status == 200
    assert srv.metrics().get("hermes_errors_total", kind="timeout") >= 1


def test_bf16_precision(serve, serve_build, default_onnx, images):
    """bf16 where the CPU has bf16 units; elsewhere a one-line refusal at start-up."""
    from hermes_deploy.cpu import has_precision

    if not has_precision("bf16"):
        code, line = _refused(serve_build, ["--model", str(default_onnx), "--port", "0", "--precision", "bf16"])
        assert code == 1 and "bf16" in line and "use f32" in line, line
        return
    srv = serve("--precision", "bf16", "--workers", "1")
    assert srv.request("GET", "/v1/model").json()["backend"] == "openvino (CPU, bf16)"
    reply = srv.restore(images["large"])
    assert reply.status == 200 and reply.headers["x-hermes-backend"] == "openvino (CPU, bf16)"
    assert _decode(reply.body).shape == (512, 512, 3)


# ----------------------------------------------------------------------------- uploads


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "hermes-test-boundary") -> tuple[bytes, dict]:
    """(body, headers) of a multipart/form-data request, as ``curl -F`` sends it;
    parts are (field name, file name or None, content)."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            body += b"Content-Type: application/octet-stream\r\n"
        body += b"\r\n" + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _logged(server: Server, pattern: str, since: int, timeout: float = 5.0) -> list[str]:
    """The stderr lines after line ``since`` that match ``pattern`` (waiting up to ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in server.lines[since:] if re.search(pattern, line)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _idle(server: Server, timeout: float = 5.0) -> Metrics:
    """/metrics once no request is in flight (fails if one stays in flight)."""
    deadline = time.monotonic() + timeout
    while True:
        m = server.metrics()
        if m.get("hermes_in_flight") == 0 or time.monotonic() > deadline:
            assert m.get("hermes_in_flight") == 0, "a request stayed in flight"
            return m
        time.sleep(0.05)


def _delta(after: Metrics, before: Metrics, name: str, **labels: str) -> float:
    return after.get(name, 0.0, **labels) - before.get(name, 0.0, **labels)


def test_multipart_upload_equals_the_raw_body(server, images, reference):
    """``curl -F file=@photo.png``: the one file field is the image; other shapes of form
    are a 400 naming the fix; every one is counted once, logged once when it fails, and
    leaves nothing in flight."""
    before, since = _idle(server), len(server.lines)
    body, headers = _multipart([("file", "small.png", images["small"].read_bytes())])
    _assert_restored(server.request("POST", "/v1/restore", body, headers=headers), reference(images["small"]))
    body, headers = _multipart([("file", "wide.png", images["wide"].read_bytes())])
    _assert_restored(server.request("POST", "/v1/restore?tile=64", body, headers=headers),
                     reference(images["wide"], "64"))
    two, headers = _multipart([("a", "small.png", images["small"].read_bytes()),
                               ("b", "small.png", images["small"].read_bytes())])
    detail = assert_error(server.request("POST", "/v1/restore", two, headers=headers), 400, "bad_request")["detail"]
    assert "one file" in detail and "-F file=@" in detail, detail
    none, headers = _multipart([("note", None, b"hello")])
    detail = assert_error(server.request("POST", "/v1/restore", none, headers=headers), 400, "bad_request")["detail"]
    assert "-F file=@" in detail, detail
    broken = b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\nabc"
    assert_error(server.request("POST", "/v1/restore", broken,
                                headers={"Content-Type": "multipart/form-data; boundary=x"}), 400, "bad_request")
    after = _idle(server)
    assert _delta(after, before, "hermes_requests_total", status="200") == 2
    assert _delta(after, before, "hermes_requests_total", status="400") == 3
    assert _delta(after, before, "hermes_errors_total", kind="bad_request") == 3
    assert _delta(after, before, "hermes_errors_total", kind="internal") == 0
    assert len(_logged(server, r"^hermes-serve: POST /v1/restore 400 bad_request: ", since)) == 3


def test_empty_and_truncated_bodies_are_logged_and_finished(server):
    """No body at all (no Content-Length: the body is empty, RFC 9112 6.3), a zero
    Content-Length, a body cut short by a client that went away: a 400 at once naming the
    fix, one log line each, every metric counted once, nothing left in flight."""
    before, since = _idle(server), len(server.lines)
    empty = assert_error(server.restore(b""), 400, "bad_request")["detail"]
    assert "--data-binary @" in empty and "-F file=@" in empty, empty
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:  # curl -X POST URL
        t0 = time.monotonic()
        sock.sendall(b"POST /v1/restore HTTP/1.1\r\nHost: x\r\n\r\n")
        status, body = _read_raw_response(sock)
    assert time.monotonic() - t0 < 5 and status == 400, (status, body)
    assert "--data-binary @" in json.loads(body)["detail"], body
    # cut short: the client is gone, so the 400 is for the log and the metrics alone
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/restore HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789")
    assert _logged(server, r"^hermes-serve: POST /v1/restore 400 bad_request: .*ended early", since)
    after = _idle(server)
    assert _delta(after, before, "hermes_requests_total", status="400") == 3
    assert _delta(after, before, "hermes_errors_total", kind="bad_request") == 3
    assert len(_logged(server, r"^hermes-serve: POST /v1/restore 400 bad_request: .*no body", since)) == 2
    assert len(_logged(server, r"^hermes-serve: POST /v1/restore 400 bad_request: .*ended early", since)) == 1


def test_a_request_arriving_as_sigterm_lands_gets_503(serve, images):
    """Headers in before SIGTERM, the body after: 503 shutting_down (not queued, not a 400),
    one log line, and the server stops with nothing in flight."""
    srv = serve("--workers", "1")
    png = images["small"].read_bytes()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as sock:
        sock.sendall(b"POST /v1/restore HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(png) + png[:100])
        deadline = time.monotonic() + 5
        while srv.metrics().get("hermes_in_flight") < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        srv.proc.send_signal(signal.SIGTERM)
        assert _logged(srv, r"^hermes-serve: SIGTERM: finishing 1 in-flight", 0)
        sock.sendall(png[100:])
        status, body = _read_raw_response(sock)
    assert status == 503 and json.loads(body)["error"] == "shutting_down", (status, body)
    assert srv.proc.wait(timeout=30) == 0, srv.stderr()[-3000:]
    assert _logged(srv, r"^hermes-serve: POST /v1/restore 503 shutting_down: ", 0)
    assert srv.lines[-1] == "hermes-serve: stopped", srv.stderr()[-3000:]  # not "with N unfinished"
    _assert_clean_stderr(srv.stderr())


def test_readyz_answers_503_until_the_model_is_ready(serve, images):
    """The port opens at once (Kubernetes probes it): /readyz and POST /v1/restore answer
    503 not_ready until the model is loaded and warm, then 200."""
    port = _free_port()
    early: list[tuple[str, Reply]] = []
    png = images["small"].read_bytes()

    def poll():
        try:
            early.append(("readyz", _request(port, "GET", "/readyz", timeout=2)))
            early.append(("restore", _request(port, "POST", "/v1/restore", png, timeout=2)))
        except OSError:
            pass

    srv = serve("--port", str(port), "--workers", "1", poll=poll)
    not_ready = [(what, r) for what, r in early if r.status == 503]
    assert not_ready, f"no 503 before the listening line: {[(w, r.status) for w, r in early]}"
    for what, reply in not_ready:
        assert_error(reply, 503, "not_ready")
        if what == "restore":
            assert re.fullmatch(r"\d+", reply.headers.get("retry-after", "")), reply.headers
    assert srv.request("GET", "/readyz").status == 200
    m = srv.metrics()
    assert m.get("hermes_in_flight") == 0
    assert m.get("hermes_errors_total", 0.0, kind="not_ready") == sum(w == "restore" for w, _ in not_ready)


# ----------------------------------------------------------------------------- robustness


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_raw_response(sock: socket.socket) -> tuple[int | None, bytes]:
    """(status, body) of one raw HTTP response read until close or its Content-Length."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionError, socket.timeout):
        pass
    if not data:
        return None, b""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    assert m, f"not an HTTP response: {data[:200]!r}"
    length = next((int(l.split(":", 1)[1]) for l in lines[1:] if l.lower().startswith("content-length:")), None)
    try:
        while (length is None or len(body) < length):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    except (ConnectionError, socket.timeout):
        pass
    return int(m[1]), body


def test_a_body_shorter_than_its_content_length_then_close(server, images, reference):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/restore HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                     b"Content-Length: 100000\r\n\r\n0123456789")
    assert server.request("GET", "/healthz").status == 200
    _assert_restored(server.restore(images["small"], timeout=30), reference(images["small"]))


def test_a_garbage_request_line(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01 garbage\r\n\r\n")
        status, body = _read_raw_response(sock)
    if status is not None:  # 400 JSON if any answer at all
        assert status == 400 and json.loads(body)["error"] == "bad_request", (status, body)
    assert server.request("GET", "/healthz").status == 200


def test_a_malformed_content_length_is_a_bad_request(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/restore HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n")
        status, body = _read_raw_response(sock)
    assert status == 400 and json.loads(body)["error"] == "bad_request", (status, body)
    assert server.request("GET", "/healthz").status == 200


def test_an_idle_half_sent_request_does_not_block_the_others(server, images, reference):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as idle:
        idle.sendall(b"GET /hea")
        t0 = time.monotonic()
        assert server.request("GET", "/healthz", timeout=10).status == 200
        assert time.monotonic() - t0 < 5
        _assert_restored(server.restore(images["small"], timeout=30), reference(images["small"]))
    assert server.proc.poll() is None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_drains_in_flight_requests(serve, images, reference, sig):
    """The signal finds requests in flight (in /metrics just before it, and in the count the
    server logs when it takes it); every one of them completes with 200 and the right
    image after the signal, and the server exits 0 within --drain."""
    drain = 20.0
    srv = serve("--workers", "2", "--queue", "4", "--drain", str(drain))
    body = images["square"].read_bytes()

    def timed_restore():
        reply = srv.restore(body, timeout=60)
        return reply, time.monotonic()

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(timed_restore) for _ in range(4)]
        # all four in the server (2 running, 2 queued) before the signal; a request not yet
        # routed when it lands would get 503 shutting_down
        deadline = time.monotonic() + 30
        while True:
            in_flight = srv.metrics().get("hermes_in_flight")
            if in_flight >= 4 or any(f.done() for f in futures) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert in_flight >= 1, f"no request in flight to drain ({in_flight} in /metrics)"
        waiting = socket.create_connection(("127.0.0.1", srv.port), timeout=10)  # connected, nothing sent yet
        srv.proc.send_signal(sig)
        signalled = time.monotonic()
        taken = _logged(srv, rf"^hermes-serve: {sig.name}: finishing (\d+) in-flight requests", 0)
        assert taken, f"no '{sig.name}: finishing N in-flight' line: {srv.stderr()[-3000:]}"
        unfinished = int(re.search(r"finishing (\d+) in-flight", taken[0])[1])
        assert unfinished >= 1, taken[0]
        # new requests that still reach it: 503 shutting_down; or no connection at all
        try:
            late = srv.restore(images["small"], timeout=10)
        except OSError:
            late = None
        if late is not None:
            assert_error(late, 503, "shutting_down")
        with waiting:
            small = images["small"].read_bytes()
            try:
                waiting.sendall(b"POST /v1/restore HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(small)
                                + small)
                status, late_body = _read_raw_response(waiting)
            except OSError:
                status = None
            if status is not None:
                assert status == 503 and json.loads(late_body)["error"] == "shutting_down", (status, late_body)
        results = [f.result(timeout=60) for f in futures]
    ref = reference(images["square"])
    for reply, _ in results:
        _assert_restored(reply, ref)
    # each request the server counted at the signal was answered after it
    after = sum(done_at > signalled for _, done_at in results)
    assert after >= unfinished, f"{unfinished} in flight at the signal, {after} answered after it"
    srv.proc.wait(timeout=drain + 10)
    assert srv.proc.returncode == 0, srv.stderr()[-3000:]
    assert time.monotonic() - signalled < drain
    assert _logged(srv, r"^hermes-serve: stopped$", 0), srv.stderr()[-3000:]  # not "with N unfinished"
    _assert_clean_stderr(srv.stderr())


# ----------------------------------------------------------------------------- startup errors


def _refused(build: Path, args: list[str], env: dict | None = None, timeout: float = 120):
    done = subprocess.run([str(build / "hermes-serve"), *args], capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else _clean_env(), stdin=subprocess.DEVNULL)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hermes-serve: "), done.stderr[-3000:]
    _assert_clean_stderr(done.stderr)
    return done.returncode, lines[0]


@pytest.mark.parametrize("args", [
    ["--bogus"], ["--workers", "0"], ["--workers", "two"], ["--threads", "-1"], ["--queue", "x"],
    ["--timeout", "soon"], ["--timeout", "-1"], ["--precision", "f16"], ["--backend", "cuda"],
    ["--port", "70000"], ["--tile", "0"], ["--max-body", "big"], ["--workers"],
], ids=lambda a: " ".join(a))
def test_bad_flags_exit_2(serve_build, default_onnx, args):
    code, line = _refused(serve_build, ["--model", str(default_onnx), "--port", "0", *args])
    assert code == 2, line


def test_bad_environment_value_exits_2(serve_build, default_onnx):
    code, line = _refused(serve_build, [], env=_clean_env(HERMES_MODEL=str(default_onnx), HERMES_WORKERS="many"))
    assert code == 2, line


def test_no_model_exits_2(serve_build):
    assert _refused(serve_build, ["--port", "0"])[0] == 2


def test_missing_and_broken_models(serve_build, tmp_path):
    code, line = _refused(serve_build, ["--model", str(tmp_path / "absent.onnx"), "--port", "0"])
    assert code in (1, 2), line
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not protobuf \x00\x01\x02" * 10)
    code, line = _refused(serve_build, ["--model", str(garbage), "--port", "0"])
    assert code == 1, line


def test_port_in_use(serve_build, default_onnx):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, line = _refused(serve_build, ["--model", str(default_onnx), "--port", str(port)])
    assert code in (1, 2), line


def test_default_server_exits_0_on_sigterm(server):
    """Last: the module's server is still up after everything above, and stops cleanly."""
    assert server.proc.poll() is None, server.stderr()[-3000:]
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=40) == 0
    _assert_clean_stderr(server.stderr())
