"""The README's Python example runs as written (docs are executable)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hermes_deploy.quality.photos import load_photo

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_python_api_example_runs(tmp_path):
    text = README.read_text()
    section = text[text.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    photo = (load_photo("coffee")[:64, :96] * 255 + 0.5).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    env = {**os.environ, "HERMES_CACHE_DIR": str(tmp_path / "cache")}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    with Image.open(tmp_path / "photo-x2.png") as out:
        assert out.size == (192, 128)
    assert (tmp_path / "x2-deploy.safetensors").is_file()
