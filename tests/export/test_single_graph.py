"""``--single-graph``: one input, one output, the context computed inside.

The reference is the pair (main graph fed by its context graph) on whole images, and the
torch deploy model; tiles of a single graph route by themselves, which the last tests
show against the whole-image output.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from hermes_deploy.errors import InputError
from hermes_deploy.export.ort import GraphPair, context_graph_path
from hermes_deploy.quality import load_photo
from hermes_deploy.spec import ModelSpec


def _photo_crop(h: int = 96, w: int = 128) -> np.ndarray:
    img = load_photo("astronaut")[40:40 + h, 120:120 + w]
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], np.float32)


def test_single_graph_has_one_input_one_output_and_no_companion(default_single_onnx):
    model = onnx.load(str(default_single_onnx), load_external_data=False)
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["output"]
    spec = ModelSpec.from_onnx(default_single_onnx)
    assert spec.single_graph and spec.context_graph is None
    assert not list(default_single_onnx.parent.glob("*.context.onnx"))
    assert context_graph_path(default_single_onnx, spec) is None


@pytest.fixture(scope="module")
def routing_forms(tmp_path_factory):
    """A random tiny model exported as the pair and as one graph. Its router is random,
    so its output moves with the context, where the shipped default's barely does (its
    logits differ by < 0.01 between images): a context computed wrongly inside the
    single graph shows here and would not show on the default."""
    from hermes_deploy.export.onnx_export import ExportOptions, export_onnx
    from hermes_deploy.model.checkpoint import save_checkpoint

    from ..conftest import make_model

    root = tmp_path_factory.mktemp("routing-forms")
    ckpt = save_checkpoint(make_model("tiny", 2, seed=5), root / "random.safetensors")
    return {form: export_onnx(str(ckpt), root / f"{form}.onnx",
                              ExportOptions(single_graph=form == "single")).path
            for form in ("single", "pair")}


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_single_graph_equals_the_pair_on_whole_images(routing_forms, backend):
    from hermes_deploy.engines.select import graph_runner

    rng = np.random.default_rng(3)
    cases = [_photo_crop(), rng.random((2, 3, 53, 77), dtype=np.float32)]
    with graph_runner(routing_forms["single"], backend, 2, None) as single, \
            graph_runner(routing_forms["pair"], backend, 2, None) as pair:
        assert single.context(cases[0]).shape == (1, 0)
        for x in cases:
            got = single.infer(x, single.context(x))
            want = pair.infer(x, pair.context(x))
            assert got.shape == want.shape == (x.shape[0], 3, 2 * x.shape[2], 2 * x.shape[3])
            assert float(np.abs(got - want).max()) <= 1e-5


def test_single_graph_matches_the_torch_model(default_single_onnx):
    import torch

    from hermes_deploy.checks.verify import reference_model

    spec = ModelSpec.from_onnx(default_single_onnx)
    model = reference_model("default", spec)
    x = _photo_crop(64, 80)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert float(np.abs(GraphPair(default_single_onnx)(x) - want).max()) <= 1e-5


def test_a_graph_whose_spec_lies_about_its_inputs_is_refused(default_onnx, tmp_path):
    model = onnx.load(str(default_onnx))
    spec = ModelSpec.from_onnx(model).replace(single_graph=True, context_graph=None)
    from hermes_deploy.export.graph import attach_spec

    attach_spec(model, spec)
    path = tmp_path / "liar.onnx"
    onnx.save(model, str(path))
    with pytest.raises(InputError, match="says it is a single graph but takes a 'context' input"):
        GraphPair(path)


def test_tiles_of_a_single_graph_route_by_themselves(default_single_onnx, default_onnx):
    """Whole image: equal. Tiled at 64: the pair stays close to its whole-image output
    (one context), the single graph drifts further (a context per tile)."""
    from hermes_deploy.quality.metrics import psnr
    from hermes_deploy.runtime.pipeline import restore_array
    from hermes_deploy.runtime.plan import TileOptions
    from hermes_deploy.engines.ort_runner import OrtRunner

    img = load_photo("astronaut")[:192, :192]
    scores = {}
    for name, path in (("single", default_single_onnx), ("pair", default_onnx)):
        with OrtRunner(path, threads=2) as runner:
            whole = restore_array(runner, img, TileOptions(tile=(192, 192)))[0]
            tiled = restore_array(runner, img, TileOptions(tile=(64, 64)))[0]
        scores[name] = psnr(tiled, whole)
    assert scores["pair"] > scores["single"] + 1.0, scores


@pytest.mark.slow
def test_single_graph_int8_and_fp16(tmp_path, default_single_onnx):
    """Both variants keep the one-input form and stay close to the FP32 single graph."""
    from hermes_deploy.export.int8 import Int8Options, calibrate_int8
    from hermes_deploy.export.onnx_export import ExportOptions, export_onnx
    from hermes_deploy.quality.metrics import psnr

    int8 = calibrate_int8("default", tmp_path / "q.onnx", Int8Options(single_graph=True, samples=8))
    fp16 = export_onnx("default", tmp_path / "h.onnx", ExportOptions(single_graph=True, precision="fp16"))
    x = _photo_crop()
    ref = GraphPair(default_single_onnx)(x)
    for result, floor in ((int8, 40.0), (fp16, 45.0)):
        model = onnx.load(str(result.path), load_external_data=False)
        assert [i.name for i in model.graph.input] == ["input"]
        assert result.context_path is None and result.spec.single_graph
        out = GraphPair(result.path)(x)
        assert psnr(out, ref) >= floor
    assert not list(tmp_path.glob("*.context.onnx"))
