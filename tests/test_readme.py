"""The README's Python example runs as written and writes what it says (docs are
executable)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hermes_deploy.quality.metrics import psnr
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
    with Image.open(tmp_path / "photo-x2.png") as im:
        assert im.size == (192, 128) and im.mode == "RGB"
        out = np.asarray(im, np.float64) / 255
    assert (tmp_path / "x2-deploy.safetensors").is_file()
    # what it holds: the bundled model's x2 of this photo, as torch computes it on the whole
    # image here (the example's tiles are larger than the photo: no seams to allow for) ...
    import torch

    import hermes_deploy as hd

    model = hd.deploy(hd.load_model("default"), fidelity=True).eval()
    x = torch.from_numpy(photo.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        want = model(x, context=model.compute_context(x))[0].permute(1, 2, 0).clamp(0, 1).double().numpy()
    fidelity = psnr(out, want)
    assert fidelity >= 50.0, f"photo-x2.png is {fidelity:.1f} dB from the model's output (8-bit rounding: ~59)"
    # ... and an upscale of the photo: near bicubic, not equal to it (the model adds detail)
    bicubic = np.asarray(Image.fromarray(photo).resize((192, 128), Image.BICUBIC), np.float64) / 255
    near = psnr(out, bicubic)
    assert 25.0 <= near <= 45.0, f"photo-x2.png is {near:.1f} dB from bicubic (fidelity {fidelity:.1f} dB)"

