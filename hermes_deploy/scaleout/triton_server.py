"""Start the ``tritonserver`` that ships in the ``nvidia-pytriton`` wheel, on loopback.

For tests and local trials of a repository from :mod:`.triton_repo`; production runs
the NGC Triton container (README). The wheel's server has the Python backend only, and
three things have to be arranged before it serves a Python model (found here with
nvidia-pytriton 0.7.0, Triton 2.51):

- **The stub.** The Python backend runs each model in a ``triton_python_backend_stub``
  process and looks for it in the backend folder; the wheel keeps one stub per Python
  version under ``tritonserver/python_backend_stubs/3.X/``. A private backend folder is
  made with the backend library, its utils module and the stub of *this* Python.
- **The libraries.** The server and stub need the wheel's bundled libraries
  (``nvidia_pytriton.libs``) on ``LD_LIBRARY_PATH``.
- **The interpreter.** The stub is linked against ``libpython3.X.so.1.0`` and runs
  whichever one the loader finds first. On a machine with a system Python of the same
  version that is the system's (``/lib/x86_64-linux-gnu``), whose ``sys.path`` lacks this
  environment's packages. This Python's own library folder therefore goes first on
  ``LD_LIBRARY_PATH``, and this environment's import path (site-packages and the
  folder holding ``hermes_deploy``, for editable installs) goes into ``PYTHONPATH``,
  so ``model.py`` imports hermes_deploy, numpy and onnxruntime exactly as this process
  does. A Python built without a shared libpython cannot host the stub.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import ServingError
from ..optional import require

PURPOSE = "Running a local tritonserver (from nvidia-pytriton)"


def pytriton_dist() -> tuple[Path, Path]:
    """(the wheel's ``tritonserver`` folder, its bundled library folder)."""
    pytriton = require("pytriton", extra="triton-server", purpose=PURPOSE)
    root = Path(pytriton.__file__).resolve().parent
    dist = root / "tritonserver"
    libs = root.parent / "nvidia_pytriton.libs"
    if not (dist / "bin" / "tritonserver").is_file():
        raise ServingError(f"{root} has no tritonserver binary; reinstall nvidia-pytriton")
    return dist, libs


def backend_folder(workdir: Path) -> Path:
    """A backends/ folder whose python/ holds the backend and the stub of this Python."""
    dist, _ = pytriton_dist()
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        have = sorted(p.name for p in (dist / "python_backend_stubs").iterdir())
        raise ServingError(f"nvidia-pytriton has no Python backend stub for Python {version} "
                           f"(it has {', '.join(have)}); run the server from one of those")
    python = workdir / "backends" / "python"
    python.mkdir(parents=True, exist_ok=True)
    for item in (dist / "backends" / "python").iterdir():
        if item.is_file():
            shutil.copy2(item, python / item.name)
    shutil.copy2(stub, python / stub.name)
    return python.parent


def server_env(base: dict | None = None) -> dict[str, str]:
    """The environment that lets the stub run this interpreter with this import path."""
    env = dict(os.environ if base is None else base)
    _, libs = pytriton_dist()
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise ServingError(f"this Python ({sys.executable}) has no shared libpython, which the "
                           "Triton Python backend stub links against; use a Python built with "
                           "--enable-shared (distribution, pyenv with PYTHON_CONFIGURE_OPTS, conda)")
    libdir = sysconfig.get_config_var("LIBDIR")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, str(libs), env.get("LD_LIBRARY_PATH"))
                                             if p)
    import hermes_deploy

    package_parent = str(Path(hermes_deploy.__file__).resolve().parent.parent)
    paths = [package_parent] + [p for p in sys.path if p and Path(p).is_dir()]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths + [env.get("PYTHONPATH", "")]).keys()).strip(os.pathsep)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TritonServer:
    """A running ``tritonserver`` (a context manager: stopped on exit)."""

    process: subprocess.Popen
    http_port: int
    grpc_port: int
    log: Path
    workdir: Path

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "TritonServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_server(repository: str | os.PathLike, workdir: str | os.PathLike | None = None,
                 timeout: float = 180.0, extra_args: tuple[str, ...] = ()) -> TritonServer:
    """Start ``tritonserver`` on loopback (free HTTP and gRPC ports, no metrics) serving
    ``repository``; returns when every model is ready, or raises ``ServingError`` with
    the end of the server's log."""
    dist, _ = pytriton_dist()
    workdir = Path(workdir or tempfile.mkdtemp(prefix="hermes-triton-"))
    backends = backend_folder(workdir)
    env = server_env()
    http, grpc = free_port(), free_port()
    log = workdir / "tritonserver.log"
    cmd = [str(dist / "bin" / "tritonserver"), f"--model-repository={Path(repository).resolve()}",
           f"--backend-directory={backends}", "--http-address=127.0.0.1", f"--http-port={http}",
           "--grpc-address=127.0.0.1", f"--grpc-port={grpc}", "--allow-metrics=false",
           "--exit-timeout-secs=10", *extra_args]
    with open(log, "wb") as handle:
        process = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                   cwd=workdir)
    server = TritonServer(process, http, grpc, log, workdir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise ServingError(f"tritonserver exited with status {process.returncode}:\n"
                               f"{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://{server.http_url}/v2/health/ready", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(0.25)
    server.stop()
    raise ServingError(f"tritonserver was not ready after {timeout:.0f}s:\n{server.log_tail()}")
