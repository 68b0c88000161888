#!/usr/bin/env bash
# The Python 3.12 virtual environment the VapourSynth tests run their scripts in
# (tests/integrations/test_vsmlrt.py): VapourSynth R81 and vs-mlrt's OpenVINO plugin
# install only on Python >= 3.12, the package itself runs on 3.11. The environment is
# .venv-vs/ in the repository (git-ignored); the tests find it there.
#
# Python 3.12 comes from pyenv (3.12.1, as on the developers' and CI machines): from
# `pyenv root` when pyenv is on PATH, else $PYENV_ROOT, else ~/.pyenv. No 3.12 is an
# error, never a skip. Idempotent: an environment that already holds the pinned versions
# is left alone. Quiet: pip's output is shown only when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-vs
want_python=3.12.1
pins=(vapoursynth==81 vapoursynth-mlrt-ov==17.1 numpy==2.4.6)

if command -v pyenv >/dev/null 2>&1; then
  pyenv_root=$(pyenv root)
else
  pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
fi
python312=$pyenv_root/versions/$want_python/bin/python
if [ ! -x "$python312" ]; then
  echo "install-vs-env.sh: Python $want_python not found at $python312." >&2
  echo "  The VapourSynth tests need it (vapoursynth and vapoursynth-mlrt-ov require Python >= 3.12)." >&2
  echo "  Fix: pyenv install $want_python (or set PYENV_ROOT to the pyenv that has it)." >&2
  exit 1
fi

# Ready when the venv's python runs, has every pin, and the core loads the ov plugin.
check='
import sys
from importlib.metadata import version
pins = dict(p.split("==") for p in sys.argv[1:])
wrong = {n: version(n) for n in pins if version(n).lstrip("v") != pins[n]}
assert not wrong, wrong
from vapoursynth import core
core.ov.Version()
'
if "$venv/bin/python" -c "$check" "${pins[@]}" >/dev/null 2>&1; then
  echo "VapourSynth test environment ready ($venv)"
  exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! {
  "$python312" -m venv --clear "$venv" &&
  "$venv/bin/python" -m pip --disable-pip-version-check install "${pins[@]}"
} >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-vs-env.sh: could not build $venv (pip's output above)" >&2
  exit 1
fi
if ! "$venv/bin/python" -c "$check" "${pins[@]}" >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-vs-env.sh: $venv was built but VapourSynth or its ov plugin does not load (above)" >&2
  exit 1
fi
echo "built the VapourSynth test environment ($venv: ${pins[*]})"
