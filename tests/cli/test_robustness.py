"""Randomized robustness of ``hermes-export infer``: many drawn combinations of flag
values and small real inputs (degenerate sizes, every mode and format, corrupt, empty
and missing files), each run as a real process, each checked against the contract:
exit status 0, 1 or 2; no traceback; at most one ``hermes-export:`` error line, and one
line per failed file; every output complete at twice its input's size; nothing
temporary left. Bounded by a run count and a time budget; the seed is printed so a
failing draw can be replayed."""

from __future__ import annotations

import json
import random
import time

import numpy as np
import pytest
import tifffile
from PIL import Image

from .harness import check_outputs, cli, hidden, photo_u8

SIZES = [(1, 1), (1, 7), (7, 1), (2, 3), (17, 5), (31, 33), (40, 72)]
FLAGS = {
    "--tile": ["1", "8", "16", "17", "32", "48x16", "0", "abc", "16x40", "256"],
    "--overlap": ["-1", "0", "4", "15", "16", "31", "100"],
    "--batch": ["0", "1", "2", "3", "8"],
    "--format": ["auto", "png", "jpg", "webp", "tif", "bmp"],
    "--context-size": ["-1", "1", "7", "64"],
    "--max-pixels": ["0", "10", "100", "1000000"],
    "--threads": ["-1", "0", "1", "2"],
}


KNOWN_LINES = ("backend: ", "model: ", "... ", "done    ", "skipped ", "failed  ", "removed ",
               "out of memory on ", "hermes-export: ")


def _pool(folder) -> dict:
    """name -> path of small inputs: every mode and format, and broken files."""
    folder.mkdir()
    rng = np.random.default_rng(3)
    made = {}
    for i, (kind, ext) in enumerate([("RGB", "png"), ("L", "png"), ("RGBA", "png"), ("LA", "png"),
                                     ("I;16", "png"), ("RGB", "jpg"), ("L", "jpg"), ("CMYK", "jpg"),
                                     ("RGB", "webp"), ("RGBA", "webp"), ("RGB", "tif"), ("16", "tif")]):
        h, w = SIZES[i % len(SIZES)]
        rgb = photo_u8(h, w, i)
        path = folder / f"{kind.replace(';', '').lower()}{i}.{ext}"
        if kind == "16":
            tifffile.imwrite(path, rgb.astype(np.uint16) * 257 + rng.integers(0, 256, rgb.shape, np.uint16),
                             photometric="rgb")
        elif kind == "I;16":
            Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257).save(path)
        else:
            im = Image.fromarray(rgb).convert(kind)
            im.save(path, **({"quality": 90} if ext in ("jpg", "webp") else {}))
        made[path.name] = path
    good = folder / "rgb0.png"
    (folder / "truncated.png").write_bytes(good.read_bytes()[:60])
    (folder / "text.png").write_text("not an image\n")
    (folder / "empty.jpg").write_bytes(b"")
    for name in ("truncated.png", "text.png", "empty.jpg"):
        made[name] = folder / name
    return made


def _check_contract(res, out, chosen: dict, draw: str) -> None:
    assert res.returncode in (0, 1, 2), (draw, res.returncode, res.stderr)
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr, (draw, res.stderr)
    lines = res.stderr.splitlines()
    # every line is one of the runtime's own kinds: a second line of a message is a bug
    stray = [ln for ln in lines if not ln.startswith(KNOWN_LINES)]
    assert not stray, (draw, stray)
    errors = [ln for ln in lines if ln.startswith("hermes-export:")]
    failed = [ln for ln in res.stderr.splitlines() if ln.startswith("failed")]
    assert len(errors) <= 1, (draw, res.stderr)
    assert (res.returncode == 2) == (len(errors) == 1), (draw, res.stderr)
    assert (res.returncode == 1) == (bool(failed) and not errors), (draw, res.stderr)
    for line in failed:  # "failed  NAME: why" - the name of the file and one reason
        assert line.split()[1].rstrip(":") in chosen, (draw, line)
    if not out.exists():
        return
    check_outputs(out, chosen)  # complete, at 2x, nothing temporary
    report = out / "hermes-report.json"
    if report.exists():
        data = json.loads(report.read_text())
        assert data["failed"] == len(failed), (draw, res.stderr)
    assert hidden(out) == []


@pytest.mark.slow
def test_random_flags_and_inputs_keep_the_contract(default_onnx, tmp_path):
    seed = 20261202
    rng = random.Random(seed)
    pool = _pool(tmp_path / "pool")
    names = sorted(pool)
    budget = time.monotonic() + 240
    runs = 0
    seen = set()
    while runs < 40 and time.monotonic() < budget:
        chosen = {n: pool[n] for n in rng.sample(names, rng.randint(1, 4))}
        args = [str(p) for p in chosen.values()]
        if rng.random() < 0.15:
            args.append(str(tmp_path / "missing.png"))
            chosen["missing.png"] = tmp_path / "missing.png"
        flags = []
        for flag, values in FLAGS.items():
            if rng.random() < 0.35:
                flags += [flag, rng.choice(values)]
        if rng.random() < 0.3:
            flags.append("--overwrite")
        out = tmp_path / f"out{runs}"
        draw = f"seed {seed} run {runs}: {' '.join(args)} {' '.join(flags)}"
        res = cli("infer", *args, "-o", out, "--model", default_onnx, "--backend", "onnxruntime",
                  "--no-progress", *flags)
        _check_contract(res, out, chosen, draw)
        seen.add(res.returncode)
        runs += 1
    assert runs >= 15, f"only {runs} runs fitted in the time budget"
    assert seen == {0, 1, 2}, seen  # the draws reached every outcome
