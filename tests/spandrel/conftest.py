"""Checkpoints in every form spandrel must load, made with hermes_deploy's own APIs, and
photographs from scikit-image's data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hermes_deploy.cache import bundled_models
from hermes_deploy.model.checkpoint import convert_checkpoint, load_checkpoint, save_checkpoint
from hermes_deploy.model.deploy import deploy
from hermes_deploy.model.network import Hermes

from ..conftest import make_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_comfy_tiles  # noqa: E402  (the routing stand-in the benchmark measures with)

NEEDS = "needs spandrel and torchvision (pip install 'hermes-deploy[spandrel]')"


@pytest.fixture(scope="session")
def spandrel():
    """spandrel with HERMES registered in its MAIN_REGISTRY."""
    from hermes_deploy.optional import has

    if not (has("spandrel") and has("torchvision")):
        pytest.skip(NEEDS)
    from hermes_deploy.spandrel import register
    from hermes_deploy.spandrel.compat import import_spandrel

    register()
    return import_spandrel()


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """name -> file: the bundled default and its .pth, its deploy form, and random-weight
    x1 (deploy), x3 and x4 models (.pth and .safetensors)."""
    d = tmp_path_factory.mktemp("checkpoints")
    out = {"default": bundled_models()["default"],
           "default.pth": convert_checkpoint("default", d / "default.pth").output,
           "deploy": convert_checkpoint("default", d / "deploy.safetensors", deploy=True).output}
    out["x4.pth"] = save_checkpoint(make_model("tiny", 4, seed=4), d / "x4.pth")
    out["x4"] = save_checkpoint(make_model("tiny", 4, seed=4), d / "x4.safetensors")
    out["x3"] = save_checkpoint(make_model("tiny", 3, seed=3), d / "x3.safetensors")
    out["x1-deploy.pth"] = save_checkpoint(deploy(make_model("tiny", 1, seed=1)), d / "x1.pth")
    return out


def photo(h: int, w: int, name: str = "astronaut", y: int = 0, x: int = 0) -> torch.Tensor:
    """(1, 3, h, w) float crop in [0, 1] of a scikit-image photograph."""
    from skimage import data

    image = getattr(data, name)()[y:y + h, x:x + w]
    assert image.shape[:2] == (h, w), f"{name} is smaller than the crop"
    return torch.from_numpy(np.ascontiguousarray(image, np.float32) / 255).permute(2, 0, 1)[None]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.double().clamp(0, 1) - b.double().clamp(0, 1)) ** 2).mean().item()
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def routing_standin() -> Hermes:
    """The default with a router that routes (benchmarks/bench_comfy_tiles.py says how)."""
    return bench_comfy_tiles.routing_standin(load_checkpoint(bundled_models()["default"]))
