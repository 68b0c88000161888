#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian machine: the C++ build tools and
# libraries (apt), the package with its test extra (pip, CPU torch), and the Triton
# client plus nvidia-pytriton's runnable tritonserver for the real-server tests.
#
# The last two go in with --no-deps on purpose: nvidia-pytriton pins numpy<2 and
# tritonclient pins protobuf<7 and ml-dtypes<=0.5.4, which would downgrade what the rest
# of the package runs on; only pytriton's server binary, Python backend and stubs are
# used, and the client runs fine on the newer numpy/protobuf (tests/scaleout check it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-cpp-deps.sh
pip() { python -m pip --disable-pip-version-check "$@"; }
pip install --quiet torch==2.13.0 -e ".[test]"
pip install --quiet "python-rapidjson>=0.9.1" "urllib3>=2.0.7" "geventhttpclient>=2.3.3" \
    "greenlet<3.4" "aiohttp>=3.8.1,<4" "grpcio>=1.81.1" "packaging>=14.1" \
    "pyzmq>=23" "sh>=1.14" "typing_inspect>=0.6" "wrapt>=1.11" "typer>=0.9" \
    "importlib_metadata>=7.0.1"
pip install --quiet --no-deps "tritonclient>=2.50" "nvidia-pytriton>=0.7"
