"""hermes-deploy: ship HERMES-IR/SR image restoration and super-resolution networks.

The public API is kept light: importing the package does not import torch; each name
below is resolved on first use.

>>> import hermes_deploy as hd
>>> model = hd.build_model(hd.preset("tiny", scale=2))      # training form
>>> fast = hd.deploy(model, fidelity=True)                   # deploy form, no E4
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "HermesConfig": "hermes_deploy.model.config",
    "PRESETS": "hermes_deploy.model.config",
    "preset": "hermes_deploy.model.config",
    "Hermes": "hermes_deploy.model.network",
    "build_model": "hermes_deploy.model.api",
    "load_model": "hermes_deploy.model.api",
    "save_checkpoint": "hermes_deploy.model.checkpoint",
    "load_checkpoint": "hermes_deploy.model.checkpoint",
    "deploy": "hermes_deploy.model.deploy",
    "reparameterize": "hermes_deploy.model.deploy",
    "count_params": "hermes_deploy.model.stats",
    "count_macs": "hermes_deploy.model.stats",
    "open_runner": "hermes_deploy.engines.select",
    "TileOptions": "hermes_deploy.runtime.plan",
    "restore_array": "hermes_deploy.runtime.pipeline",
    "restore_file": "hermes_deploy.runtime.pipeline",
    "run_batch": "hermes_deploy.runtime.batch",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hermes_deploy' has no attribute '{name}'")
