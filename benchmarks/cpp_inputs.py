"""What the C++ benchmarks (bench_cpp.py, bench_serve.py) start from: a built tool, the
exported default graph, and a photograph as a PNG."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def built(build_dir: Path, tool: str, who: str) -> Path:
    """``build_dir/tool``, building libhermes (Release) there first when it is missing."""
    import cpp_build

    path = Path(build_dir) / tool
    if not path.is_file():
        print("... building libhermes (Release)", file=sys.stderr, flush=True)
        try:
            cpp_build.build(build_dir)
        except cpp_build.BuildError as exc:
            raise SystemExit(f"{who}: {exc}")
    return path


def default_graph(onnx: Path | None, folder: Path) -> Path:
    """``onnx``, or the bundled default model exported into ``folder``."""
    if onnx is not None:
        return onnx
    from hermes_deploy.export.onnx_export import ExportOptions, export_onnx

    print("... exporting the bundled default model", file=sys.stderr, flush=True)
    path = folder / "default.onnx"
    export_onnx("default", path, ExportOptions())
    return path


def astronaut_png(folder: Path, size: int | None = None) -> Path:
    """The astronaut photograph (512x512), or a size x size crop of it, as an 8-bit PNG."""
    import numpy as np
    import pyvips

    from hermes_deploy.quality.photos import load_photo

    pixels = (np.clip(load_photo("astronaut"), 0, 1) * 255 + 0.5).astype(np.uint8)
    if size is not None:
        pixels = pixels[160:160 + size, 200:200 + size]
    path = folder / (f"astronaut-{size}.png" if size is not None else "astronaut.png")
    pyvips.Image.new_from_array(np.ascontiguousarray(pixels)).copy(interpretation="srgb").write_to_file(str(path))
    return path
