"""Fixtures of the scale-out tests: a local Ray cluster, small photographs, the
local batch's outputs to compare with. Tests skip, with the reason, where Ray or the
Triton packages are not installed."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

from hermes_deploy.quality.photos import load_photo

TILE = (32, 32)  # several tiles per image, so the tile grid and the blend are exercised


def need(module: str, install: str):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"needs {module} (pip install {install})")


@pytest.fixture(scope="session")
def ray_cluster():
    """A local two-CPU Ray cluster for the session (two actors of one CPU each)."""
    need("ray", "'hermes-deploy[ray]'")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def write_photos(folder, count: int, size=(48, 64)):
    """``count`` different crops of real photographs as PNG (8-bit RGB)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ("coffee", "astronaut", "chelsea")
    paths = []
    for i in range(count):
        photo = load_photo(names[i % 3])
        y, x = 11 * i % (photo.shape[0] - size[0]), 17 * i % (photo.shape[1] - size[1])
        crop = (photo[y:y + size[0], x:x + size[1]] * 255 + 0.5).astype(np.uint8)
        path = folder / f"img{i:02d}.png"
        Image.fromarray(crop).save(path)
        paths.append(path)
    return paths
