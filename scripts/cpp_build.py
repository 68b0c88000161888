"""Configure, build, test-build and install libhermes (``cpp/``) with CMake.

Run from the repository root::

    python scripts/cpp_build.py [--build-dir build/cpp] [--prefix build/cpp-install]
                                [--sanitize] [--tensorrt-include DIR] [--jobs 2]

It finds OpenVINO's C++ SDK inside the ``openvino`` wheel (``openvino/cmake``), so the
only other requirements are the Debian packages ``scripts/install-cpp-deps.sh`` installs
(cmake, libvips-dev, nlohmann-json3-dev, libgtest-dev, libcpp-httplib-dev, libssl-dev, pkg-config). A missing one is a
one-line error naming that script. The tests in ``tests/cpp/`` and
``benchmarks/bench_cpp.py`` build through :func:`build`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "cpp"
DEPS_HINT = "install the C++ build dependencies with: bash scripts/install-cpp-deps.sh"


class BuildError(RuntimeError):
    """A step of the C++ build failed; the message says which and how to fix it."""


def openvino_cmake_dir() -> Path:
    try:
        import openvino
    except ImportError:
        raise BuildError("the openvino wheel is missing (it carries OpenVINO's C++ SDK); "
                         "pip install 'hermes-deploy[openvino]'") from None
    path = Path(openvino.__file__).parent / "cmake"
    if not (path / "OpenVINOConfig.cmake").is_file():
        raise BuildError(f"the openvino wheel at {path.parent} has no C++ SDK (cmake/OpenVINOConfig.cmake); "
                         "reinstall it: pip install --force-reinstall openvino")
    return path


def missing_tools() -> list[str]:
    """Build tools and packages that are not installed (empty when all are there)."""
    missing = [tool for tool in ("cmake", "pkg-config", "c++") if shutil.which(tool) is None]
    if shutil.which("pkg-config") and subprocess.run(["pkg-config", "--exists", "vips-cpp"]).returncode:
        missing.append("libvips-dev")
    for header, package in (("/usr/include/nlohmann/json.hpp", "nlohmann-json3-dev"),
                            ("/usr/include/gtest/gtest.h", "libgtest-dev"),
                            ("/usr/include/httplib.h", "libcpp-httplib-dev")):
        if not Path(header).is_file():
            missing.append(package)
    return missing


def _run(cmd: list[str], what: str, env: dict | None = None) -> None:
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if done.returncode:
        tail = "\n".join(done.stdout.splitlines()[-40:])
        raise BuildError(f"{what} failed (exit {done.returncode}):\n{tail}")


def vapoursynth_include() -> Path | None:
    """VapourSynth4.h's folder in the VapourSynth test environment (``.venv-vs``, made by
    scripts/install-vs-env.sh), or None."""
    for found in sorted((ROOT / ".venv-vs" / "lib").glob("python3*/site-packages/vapoursynth/include")):
        if (found / "VapourSynth4.h").is_file():
            return found
    return None


def build(build_dir: Path, prefix: Path | None = None, sanitize: bool = False,
          tensorrt_include: Path | None = None, jobs: int = 2) -> Path:
    """Configure and build into ``build_dir`` (and install into ``prefix``); returns build_dir."""
    missing = missing_tools()
    if missing:
        raise BuildError(f"missing {', '.join(missing)}; {DEPS_HINT}")
    build_dir = Path(build_dir)
    cmd = ["cmake", "-S", str(SOURCE), "-B", str(build_dir), f"-DOpenVINO_DIR={openvino_cmake_dir()}",
           "-DCMAKE_BUILD_TYPE=" + ("RelWithDebInfo" if sanitize else "Release"),
           f"-DHERMES_SANITIZE={'ON' if sanitize else 'OFF'}"]
    if prefix is not None:
        cmd.append(f"-DCMAKE_INSTALL_PREFIX={Path(prefix).resolve()}")
    if tensorrt_include is not None:
        cmd.append(f"-DTensorRT_INCLUDE_DIR={Path(tensorrt_include).resolve()}")
    vs_include = vapoursynth_include()
    if vs_include is not None:  # the VapourSynth plugin is built where its headers are
        cmd.append(f"-DHERMES_VAPOURSYNTH_INCLUDE_DIR={vs_include}")
    _run(cmd, "cmake configure")
    _run(["cmake", "--build", str(build_dir), "-j", str(jobs)], "cmake build")
    if prefix is not None:
        _run(["cmake", "--install", str(build_dir)], "cmake install")
    return build_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=ROOT / "build" / "cpp")
    parser.add_argument("--prefix", type=Path, default=None)
    parser.add_argument("--sanitize", action="store_true", help="AddressSanitizer + UBSan")
    parser.add_argument("--tensorrt-include", type=Path, default=None,
                        help="TensorRT's include/ folder (compile the TensorRT backend against it)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    try:
        out = build(args.build_dir, args.prefix, args.sanitize, args.tensorrt_include, args.jobs)
    except BuildError as exc:
        print(f"cpp_build: {exc}", file=sys.stderr)
        return 1
    print(f"built {out}" + (f", installed into {args.prefix}" if args.prefix else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
