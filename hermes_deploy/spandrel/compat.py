"""Import spandrel beside a CPU-only torch whose torchvision came from PyPI.

spandrel imports ``torchvision.transforms.functional`` at import (its LaMa and
RestoreFormer architectures). PyPI's Linux torchvision wheels are CUDA builds: beside
the CPU torch wheel their compiled extension (``_C.so``, linked to torch's CUDA
libraries) does not load, so the ops it defines (``torchvision::nms``, ``qnms``, the
RoI ops) never exist, and ``torchvision/_meta_registrations.py`` - which guards its other
fake kernels with ``extension._has_ops()`` but not those of ``nms`` and ``qnms`` -
raises ``RuntimeError: operator torchvision::nms does not exist`` halfway through
``import torchvision``.

:func:`import_spandrel` handles exactly that error, and only it: it defines the
schema of each missing op the import stopped at (with a CPU kernel that says why it
cannot run), drops the half-imported ``torchvision`` modules from ``sys.modules`` and
imports again, and logs once what it did. Everything spandrel and its architectures use
(transforms, plain tensor code) works; torchvision's detection ops stay unavailable, as
they would be anyway (``torchvision.ops.nms`` checks the extension before it calls the
op). With a torchvision that matches its torch (a CUDA torch with its torchvision, or
both from PyTorch's CPU wheel index) the first import succeeds and nothing is touched.
"""

from __future__ import annotations

import logging
import re
import sys
from types import ModuleType

from ..optional import require

PURPOSE = "Loading HERMES checkpoints with spandrel (ComfyUI, chaiNNer)"
MISSING_OP = re.compile(r"operator torchvision::(\w+) does not exist")
# the ops whose fake kernels torchvision registers without checking its extension
SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
log = logging.getLogger("hermes_deploy.spandrel")
_defined: list = []  # torch.library.Library objects: a collected one drops its definitions


def _unavailable(name: str):
    def kernel(*args, **kwargs):
        raise RuntimeError(f"torchvision::{name} is a placeholder defined by hermes_deploy so that "
                           "torchvision imports beside a torch it was not built for; install the "
                           "torchvision build that matches this torch to run it")
    return kernel


def _define(name: str) -> None:
    import torch

    lib = torch.library.Library("torchvision", "FRAGMENT")
    lib.define(SCHEMAS[name])
    lib.impl(name, _unavailable(name), "CPU")
    _defined.append(lib)


def _forget_torchvision() -> None:
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]


def import_torchvision() -> ModuleType:
    """``torchvision``, with the missing-op schemas defined if its import needs them."""
    done: list[str] = []
    while True:
        try:
            module = require("torchvision", extra="spandrel", purpose=PURPOSE)
        except RuntimeError as exc:
            match = MISSING_OP.fullmatch(str(exc))
            name = match.group(1) if match else None
            if name not in SCHEMAS or name in done:
                raise
            _define(name)
            done.append(name)
            _forget_torchvision()
            continue
        if done:
            import torch

            log.warning("torchvision %s's compiled ops do not load beside torch %s (built for "
                        "another torch); defined placeholder schemas for torchvision::%s so that "
                        "torchvision and spandrel import; torchvision's detection ops stay "
                        "unavailable", getattr(module, "__version__", "?"), torch.__version__,
                        ", ".join(done))
        return module


def import_spandrel() -> ModuleType:
    """``spandrel``, imported after torchvision (see the module docstring)."""
    if "spandrel" not in sys.modules:
        import_torchvision()
    return require("spandrel", extra="spandrel", purpose=PURPOSE)
