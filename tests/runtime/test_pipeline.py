"""Tiled inference of the shipped default model (onnxruntime) against the whole image.

README's tiling table is printed by ``python benchmarks/bench_runtime.py tiles``; the
measurement is ``benchmarks/tiled_vs_whole.py``, and each of its rows is checked here at
the level the table states.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hermes_deploy.quality.metrics import psnr
from hermes_deploy.runtime.pipeline import restore_array
from hermes_deploy.runtime.plan import TileOptions, make_plan

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from tiled_vs_whole import README_ROWS, crop, measure, seam_gradients, whole_image  # noqa: E402

#: README's table: (photo, h, w, tile) -> (grid, PSNR floor in dB, printed PSNR). The
#: floors sit about 1 dB under the printed figures (float differences between CPUs move
#: them by far less); tiles off the model's 16-pixel grid gave 28-31 dB, no overlap 26 dB.
README_TABLE = {
    ("astronaut", 208, 224, 64): ((4, 5), 57.0, 58.2),
    ("astronaut", 256, 256, 48): ((8, 8), 54.0, 54.9),
    ("coffee", 200, 300, 64): ((4, 6), 57.5, 58.6),
    ("chelsea", 150, 225, 48): ((5, 7), 55.0, 55.8),
}


@pytest.fixture(scope="module")
def photo_case(default_runner):
    image = crop("astronaut", 208, 224)
    return image, whole_image(default_runner, image)


def test_readme_table_lists_the_benchmark_rows():
    assert tuple(README_TABLE) == README_ROWS


@pytest.mark.parametrize("row", README_ROWS, ids=lambda r: f"{r[0]}-{r[1]}x{r[2]}-tile{r[3]}")
def test_tiled_matches_whole_image_as_readme_states(default_runner, row):
    """Each row of README's table: the grid, PSNR at the level printed, and no seams (the
    tiled output's gradient ratio at tile edges is the whole image's own there). Sizes
    that are not multiples of the tile step or of 16 keep tiles on the 16-pixel grid."""
    grid, floor, printed = README_TABLE[row]
    got = measure(default_runner, *row)
    assert got.grid == grid
    assert got.psnr_db >= floor, f"tiled vs whole-image PSNR {got.psnr_db:.2f} dB (README: {printed} dB)"
    assert abs(got.ratio_tiled - got.ratio_whole) <= 0.02, (got.ratio_tiled, got.ratio_whole)
    if row[1:] == (208, 224, 64):  # content with no strong edges on the tile lines
        assert abs(got.ratio_tiled - 1) <= 0.05, got.ratio_tiled


def test_seam_metric_catches_pasted_tiles(default_runner, photo_case):
    """Without overlap (tiles pasted edge to edge, as a plain tile loop does) the same
    measurements fail: the checks above can fail."""
    image, whole = photo_case
    options = TileOptions(tile=(64, 64), overlap=0, batch=4)
    out, _ = restore_array(default_runner, image, options)
    across, elsewhere = seam_gradients(out, make_plan(default_runner.spec, *image.shape[:2], options))
    assert across / elsewhere > 1.05
    assert psnr(out, whole) < 45.0
