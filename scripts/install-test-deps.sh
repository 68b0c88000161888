#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian machine: the C++ build tools and
# libraries (apt), the package with its test extra (pip, CPU torch), the Triton client
# (the triton-server extra) and nvidia-pytriton's runnable tritonserver for the
# real-server tests, installed the way README's Scale-out section says.
#
# nvidia-pytriton goes in with --no-deps on purpose: it pins numpy<2, and only its
# server binary, Python backend and stubs are used (hermes-export serve-triton never
# imports its Python code). The triton-server extra is written so that it downgrades
# nothing (pyproject.toml says how).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-cpp-deps.sh
pip() { python -m pip --disable-pip-version-check "$@"; }
pip install --quiet torch==2.13.0 -e ".[test,triton-server]"
pip install --quiet --no-deps "nvidia-pytriton>=0.7"
bash scripts/install-vs-env.sh  # Python 3.12 venv for the VapourSynth/vs-mlrt tests
