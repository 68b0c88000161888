"""Hostile input to ``hermes-export infer``: multi-frame images, an output folder that is
the input folder, a mismatched graph pair, and flags that can never work - each one
line, the right exit status, and never a replaced input or a dropped frame."""

from __future__ import annotations

import hashlib
import shutil

import onnx
import pytest
from PIL import Image

from .harness import check_outputs, cli, hidden, one_error_line, photo_u8, write_images


def _infer(src, out, model, *extra):
    return cli("infer", *([src] if not isinstance(src, list) else src), "-o", out, "--model", model,
               "--backend", "onnxruntime", "--no-progress", *extra)


def test_multi_frame_images_are_refused_not_cut_to_one_frame(default_onnx, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    frames = [Image.fromarray(photo_u8(24, 32, i)) for i in range(3)]
    frames[0].save(src / "anim.webp", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(src / "pages.tif", save_all=True, append_images=frames[1:])
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(src / "single.webp")  # one frame of the same formats still works
    frames[0].save(src / "single.tif")
    out = tmp_path / "out"
    res = _infer([src, src / "anim.gif"], out, default_onnx)
    assert res.returncode == 1, res.stderr
    failed = {ln.split()[1].rstrip(":"): ln for ln in res.stderr.splitlines() if ln.startswith("failed")}
    assert set(failed) == {"anim.webp", "pages.tif", "anim.gif"}, res.stderr
    assert "3 frames or pages" in failed["anim.webp"] and "3 frames or pages" in failed["pages.tif"]
    assert "GIF files are not read" in failed["anim.gif"] and "PNG, JPEG, TIFF, WebP" in failed["anim.gif"]
    assert check_outputs(out, {p.name: p for p in src.iterdir()}) == ["single.tif", "single.webp"]


def test_an_input_is_never_replaced_by_another_inputs_output(default_onnx, tmp_path):
    src = tmp_path / "in"
    inputs = write_images(src, {"a.png": (24, 32), "a.jpg": (24, 32), "b.png": (16, 16)})
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in inputs.values()}
    (src / "link.png").symlink_to(src / "b.png")  # a link is the input it points to
    res = _infer(src, src, default_onnx, "--format", "png", "--overwrite")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    failed = [ln for ln in res.stderr.splitlines() if ln.startswith("failed")]
    assert any("a.jpg: the output would replace the input a.png" in ln for ln in failed), failed
    assert any("a.png: the output would replace the input itself" in ln for ln in failed), failed
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in inputs.values()} == before
    assert hidden(src) == []


def _rewrite_spec(path, **changes):
    from hermes_deploy.export.graph import attach_spec
    from hermes_deploy.spec import ModelSpec

    model = onnx.load(str(path))
    attach_spec(model, ModelSpec.from_onnx(model).replace(**changes))
    onnx.save(model, str(path))


def test_graph_pair_is_checked_against_each_other(default_onnx, tmp_path):
    inputs = write_images(tmp_path / "in", {"a.png": (24, 32)})
    # the context graph given as the model
    res = _infer(inputs["a.png"], tmp_path / "o1", default_onnx.with_name("default.context.onnx"))
    assert res.returncode == 2
    line = one_error_line(res.stderr)
    assert "is a per-image context graph" in line and "'default.onnx'" in line, line
    # a main graph beside another model's context graph: exported from another checkpoint...
    pair = tmp_path / "pair"
    pair.mkdir()
    shutil.copy(default_onnx, pair / "default.onnx")
    shutil.copy(default_onnx.with_name("default.context.onnx"), pair / "default.context.onnx")
    _rewrite_spec(pair / "default.context.onnx", source_sha256="0" * 64)
    for backend in ("onnxruntime", "openvino"):
        res = cli("infer", inputs["a.png"], "-o", tmp_path / "o2", "--model", pair / "default.onnx",
                  "--backend", backend, "--no-progress")
        assert res.returncode == 2, res.stderr
        line = one_error_line(res.stderr)
        assert "belongs to another model" in line and "000000000000" in line, line
    # ... or of another width, the usual crash of a mismatched pair
    _rewrite_spec(pair / "default.context.onnx", source_sha256="", context_channels=7)
    model = onnx.load(str(pair / "default.context.onnx"))
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 7
    onnx.save(model, str(pair / "default.context.onnx"))
    res = _infer(inputs["a.png"], tmp_path / "o3", pair / "default.onnx")
    assert res.returncode == 2 and "7 context values" in one_error_line(res.stderr)
    assert not any((tmp_path / d).exists() and any((tmp_path / d).iterdir()) for d in ("o1", "o2", "o3"))


@pytest.mark.parametrize("flags,says", [
    (["--tile", "8"], "--tile 8x8 (rounded up to 16x16"),
    (["--tile", "32", "--overlap", "31"], "--tile 32x32 leaves no room for --overlap 31"),
    (["--tile", "24x64", "--overlap", "20"], "use --tile 48 or more, or --overlap 16 or less"),
    (["--overlap", "-3"], "--overlap must be 0 or more input pixels, got -3"),
    (["--context-size", "-5"], "--context-size must be 1 or more pixels, got -5"),
    (["--batch", "0"], "--batch must be 1 or more, got 0"),
    (["--max-pixels", "0"], "--max-pixels must be 1 or more, got 0"),
    (["--tile", "0x16"], "--tile must be positive, got '0x16'"),
    (["--format", "bmp"], "unknown output format 'bmp'"),
    (["--bogus"], "No such option: --bogus (see 'hermes-export infer --help')"),
    (["--overlap", "x"], "Invalid value for '--overlap'"),
])
def test_flags_that_can_never_work_are_one_usage_error(default_onnx, tmp_path, flags, says):
    inputs = write_images(tmp_path / "in", {"a.png": (40, 72), "b.png": (40, 40)})
    res = _infer(tmp_path / "in", tmp_path / "out", default_onnx, *flags)
    assert res.returncode == 2, res.stderr
    line = one_error_line(res.stderr)
    assert says in line, line
    assert "failed" not in res.stderr  # once, not per file
    if "tile" not in says:  # needs no model: refused before it is opened
        assert "backend:" not in res.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == sorted(inputs)


def test_a_tile_overlap_pair_that_works_is_not_refused(default_onnx, tmp_path):
    """The usage check is exactly the tiler's rule: the largest overlap it allows runs."""
    inputs = write_images(tmp_path / "in", {"a.png": (40, 72)})
    res = _infer(tmp_path / "in", tmp_path / "out", default_onnx, "--tile", "24x64", "--overlap", "16")
    assert res.returncode == 0, res.stderr
    assert check_outputs(tmp_path / "out", inputs) == ["a.png"]
