"""Serve a repository from :mod:`.triton_repo` with the ``tritonserver`` that ships in the
``nvidia-pytriton`` wheel (``hermes-export serve-triton REPO``): a CPU machine, no container.

The wheel's server has the Python backend only, so it serves ``hermes_restore`` written
with ``--restore local`` (tiles run in-process); ``hermes_network`` / ``hermes_context``
and BLS repositories need NVIDIA's Triton container (README). Only the wheel's *files*
are used (server binary, Python backend, stubs, bundled libraries): pytriton's Python
code is never imported, so ``pip install --no-deps nvidia-pytriton`` is the whole install
and its numpy<2 pin never touches this environment. Three things are arranged before
the server runs (found with nvidia-pytriton 0.7.0, Triton 2.51):

- **The stub.** The Python backend runs each model in a ``triton_python_backend_stub``
  process and looks for it in the backend folder; the wheel keeps one stub per Python
  version under ``tritonserver/python_backend_stubs/3.X/``. A backend folder in the
  cache holds the backend library, its utils module and the stub of *this* Python.
- **The libraries.** The server and stub need the wheel's bundled libraries
  (``nvidia_pytriton.libs``) on ``LD_LIBRARY_PATH``.
- **The interpreter.** The stub is linked against ``libpython3.X.so.1.0`` and runs
  whichever one the loader finds first. On a machine with a system Python of the same
  version that is the system's, whose ``sys.path`` lacks this environment's packages.
  This Python's own library folder therefore goes first on ``LD_LIBRARY_PATH``, and
  this environment's import path (site-packages and the folder holding
  ``hermes_deploy``, for editable installs) goes into ``PYTHONPATH``, so ``model.py``
  imports hermes_deploy, numpy and onnxruntime exactly as ``hermes-export`` does. A
  Python built without a shared libpython cannot host the stub.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from ..cache import cache_dir
from ..errors import InputError, ServingError
from ..optional import has

PURPOSE = "Serving a Triton model repository here (hermes-export serve-triton)"
# --no-deps: the wheel pins numpy<2, and only its server files are used
INSTALL = "pip install --no-deps 'nvidia-pytriton>=0.7'"
RESTORE = "hermes_restore"


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"  # HTTP and gRPC listen here (0.0.0.0: every interface)
    http_port: int = 8000
    grpc_port: int = 8001


@dataclass
class ServerPlan:
    """What :func:`serve` runs: the command, its environment, the models it loads."""

    argv: list[str]
    env: dict[str, str]
    models: list[str]  # loaded (explicit model control)
    left_out: list[str]  # in the repository, not loadable by this server

    def shell_line(self) -> str:
        """The command as one shell line, with the two variables it needs."""
        keys = ("LD_LIBRARY_PATH", "PYTHONPATH")
        return " ".join([*(f"{k}={shlex.quote(self.env[k])}" for k in keys),
                         *map(shlex.quote, self.argv)])


def pytriton_dist() -> tuple[Path, Path]:
    """(the wheel's ``tritonserver`` folder, its bundled library folder), found without
    importing pytriton (its Python code needs packages ``--no-deps`` leaves out)."""
    if not has("pytriton"):
        raise ServingError(f"{PURPOSE} needs the tritonserver of the package 'nvidia-pytriton', "
                           f"which is not installed; install it with: {INSTALL}")
    root = Path(list(importlib.util.find_spec("pytriton").submodule_search_locations)[0])
    dist = root / "tritonserver"
    if not (dist / "bin" / "tritonserver").is_file():
        raise ServingError(f"{root} has no tritonserver binary; reinstall it with: "
                           f"{INSTALL} --force-reinstall")
    return dist, root.parent / "nvidia_pytriton.libs"


def backend_folder(root: Path | None = None) -> Path:
    """A backends/ folder whose python/ holds the backend and the stub of this Python
    (kept in the cache, per Python version; refreshed when the wheel's files change)."""
    dist, _ = pytriton_dist()
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        have = sorted(p.name for p in (dist / "python_backend_stubs").iterdir())
        raise ServingError(f"nvidia-pytriton has no Python backend stub for Python {version} "
                           f"(it has {', '.join(have)}); run the server from one of those")
    backends = (root or cache_dir() / "triton-backends") / f"py{version}"
    python = backends / "python"
    python.mkdir(parents=True, exist_ok=True)
    for item in [p for p in (dist / "backends" / "python").iterdir() if p.is_file()] + [stub]:
        target = python / item.name
        if not target.is_file() or target.stat().st_size != item.stat().st_size \
                or target.stat().st_mtime_ns < item.stat().st_mtime_ns:
            shutil.copy2(item, target.with_name(target.name + ".tmp"))
            os.replace(target.with_name(target.name + ".tmp"), target)  # no half-copied stub
    return backends


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
    # sys.path[0] is the script's folder or the current one, not where packages live
    paths = [package_parent] + [p for p in sys.path[1:] if p and Path(p).is_dir()]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths + [env.get("PYTHONPATH", "")]).keys()).strip(os.pathsep)
    return env


def _models(repository: Path) -> dict[str, str]:
    """model name -> its config.pbtxt text, for the folders of the repository."""
    return {p.parent.name: p.read_text() for p in sorted(repository.glob("*/config.pbtxt"))}


def plan_server(repository: str | os.PathLike, options: ServeOptions = ServeOptions(),
                extra_args: tuple[str, ...] = ()) -> ServerPlan:
    """The ``tritonserver`` command that serves ``repository``'s Python models; refuses,
    in one line, what this server cannot serve."""
    dist, _ = pytriton_dist()
    repo = Path(repository).resolve()
    models = _models(repo) if repo.is_dir() else {}
    if RESTORE not in models:
        raise InputError(f"'{repository}' is not a repository written by hermes-export triton "
                         f"(no {RESTORE}/config.pbtxt); write one with: hermes-export triton "
                         f"MODEL.onnx -o {repository}")
    mode = re.search(r'key: "mode" value: \{ string_value: "(\w+)" \}', models[RESTORE])
    if mode and mode.group(1) != "local":
        raise InputError(f"{RESTORE} in '{repository}' sends its tiles to hermes_network "
                         f"(--restore {mode.group(1)}), which needs backends this tritonserver "
                         "(nvidia-pytriton: Python backend only) lacks; write the repository "
                         "with --restore local, or serve it in NVIDIA's Triton container (README)")
    for flag, port in (("--http-port", options.http_port), ("--grpc-port", options.grpc_port)):
        if not 0 < port < 65536:
            raise InputError(f"{flag} must be 1-65535, got {port}")
    python = [n for n, text in models.items() if re.search(r'^backend: "python"', text, re.M)]
    argv = [str(dist / "bin" / "tritonserver"), f"--model-repository={repo}",
            f"--backend-directory={backend_folder()}",
            f"--http-address={options.host}", f"--http-port={options.http_port}",
            f"--grpc-address={options.host}", f"--grpc-port={options.grpc_port}",
            "--allow-metrics=false", "--model-control-mode=explicit",
            *(f"--load-model={n}" for n in python), *extra_args]
    return ServerPlan(argv, server_env(), python, [n for n in models if n not in python])


def serve(repository: str | os.PathLike, options: ServeOptions = ServeOptions(),
          say=None) -> None:
    """Run the server in the foreground, in place of this process (Ctrl-C or SIGTERM
    stop it); returns only by raising ``ServingError`` if it cannot be started."""
    plan = plan_server(repository, options)
    say = say or (lambda msg: None)
    say(f"serving {', '.join(plan.models)} from {repository}: HTTP {options.host}:"
        f"{options.http_port}, gRPC {options.host}:{options.grpc_port} (Ctrl-C stops)")
    if plan.left_out:
        say(f"not loaded: {', '.join(plan.left_out)} (this tritonserver has the Python backend "
            f"only; {RESTORE} runs its tiles in-process without them)")
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(plan.argv[0], plan.argv, plan.env)
    except OSError as exc:
        raise ServingError(f"cannot run {plan.argv[0]} ({exc.strerror or exc}); reinstall it "
                           f"with: {INSTALL} --force-reinstall") from None
