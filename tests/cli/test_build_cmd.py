"""``hermes-export build`` on an exported tiny HERMES graph (TensorRT-RTX, SM89, on CPU).

One portable FP32 export per module (tens of seconds); the builds use a 32x32 tile and
builder optimization level 0 so each takes seconds. FP16 and INT8 manifests are covered
with small graphs in tests/engines/test_manifest.py (an FP16 export costs another ~50 s;
tests/export/test_fp16_export.py already builds the exported FP16 graph).
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hermes_deploy.cli.app import app
from hermes_deploy.engines.trt.manifest import check_manifest, read_manifest, rebuild_command
from hermes_deploy.spec import ModelSpec

from ..conftest import make_model

pytestmark = pytest.mark.trt
trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed "
                          "(pip install 'hermes-deploy[trt-rtx]')")
pytest.importorskip("onnxruntime", reason="exporting needs the onnx extra")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from hermes_deploy.model.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("build")
    return save_checkpoint(make_model("tiny", 2, seed=3), root / "tiny.safetensors")


def _export(checkpoint, name, **options):
    from hermes_deploy.export.onnx_export import ExportOptions, export_onnx

    return export_onnx(str(checkpoint), checkpoint.parent / name, ExportOptions(**options)).path


@pytest.fixture(scope="module")
def exported(checkpoint):
    return _export(checkpoint, "tiny.onnx")


def _run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.mark.slow
def test_build_static_tile_then_cache_hit(exported, tmp_path):
    engine, cache = tmp_path / "tiny.engine", tmp_path / "cache"
    args = ["build", exported, "-o", engine, "--trt", "tensorrt-rtx", "--tile", "32x32",
            "--builder-optimization-level", "0", "--workspace", "256", "--cache", cache]
    code, out = _run(*args)
    assert code == 0, out
    assert "TensorRT-RTX" in out and "SM89" in out and "from cache" not in out
    # the size line says what an engine's megabytes are (kernels, not weights)
    weights_mb = float(out.split("size: ")[1].split(" MB of weights")[0])
    assert 0.5 < weights_mb < 2.0 and "kernels" in out  # tiny: ~0.9 MB of FP32 weights
    m = read_manifest(engine)
    assert m.model_spec() == ModelSpec.from_onnx(exported)
    context = m.model_spec().context_channels
    assert m.profiles == [{"input": [[1, 3, 32, 32]] * 3, "context": [[1, context]] * 3}]
    assert m.precision == "fp32" and m.plugins == [] and m.build["workspace_mb"] == 256
    check_manifest(m, engine, flavour="tensorrt-rtx", trt_version=trt.__version__,
                   compute_capability="SM89", onnx_path=exported)

    code, out = _run(*args[:3], tmp_path / "again.engine", *args[4:], "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["cache_hit"] is True
    assert (tmp_path / "again.engine").read_bytes() == engine.read_bytes()


@pytest.mark.slow
def test_build_dynamic_profiles_for_another_target(exported, tmp_path):
    engine = tmp_path / "dyn.engine"
    code, out = _run("build", exported, "-o", engine, "--min", "16x16", "--opt", "32x32",
                     "--max", "48x48", "--compute-capability", "SM86",
                     "--builder-optimization-level", "0")
    assert code == 0, out
    m = read_manifest(engine)
    assert m.compute_capability == "SM86"
    assert m.profiles[0]["input"] == [[1, 3, 16, 16], [1, 3, 32, 32], [1, 3, 48, 48]]
    # the rebuild command that mismatch errors print reproduces the same engine facts
    command = rebuild_command(m, tmp_path / "again.engine").split()
    assert command[:2] == ["hermes-export", "build"]
    assert "--compute-capability SM86" in " ".join(command)
    code, out = _run(*command[1:])
    assert code == 0, out
    again = read_manifest(tmp_path / "again.engine")
    assert again.profiles == m.profiles and again.build["cache_key"] == m.build["cache_key"]


@pytest.mark.parametrize("args, expected", [
    (["--tile", "32"], "--tile must look like 256x256"),
    (["--tile", "32x32", "--min", "16x16"], "either --tile"),
    (["--min", "16x16", "--opt", "32x32"], "same number of times"),
    (["--tile", "32x32", "--trt", "cuda"], "unknown TensorRT flavour 'cuda'"),
    (["--tile", "32x32", "--compute-capability", "SM1"], "unknown compute capability"),
    (["--min", "input:1x3x16x16", "--opt", "input:1x3x32x32", "--max", "input:1x3x64x64"],
     "input 'context' has dynamic shape"),
])
def test_bad_arguments_are_one_line_errors(exported, tmp_path, args, expected):
    engine = tmp_path / "bad.engine"
    code, out = _run("build", exported, "-o", engine, *args)
    assert code == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], out
    assert not engine.exists()


def test_full_tensorrt_missing_names_the_extra(exported, tmp_path):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    code, out = _run("build", exported, "-o", tmp_path / "t.engine", "--trt", "tensorrt",
                     "--tile", "32x32")
    assert code == 2 and "pip install 'hermes-deploy[tensorrt]'" in out
    assert not (tmp_path / "t.engine").exists()


def test_missing_onnx(tmp_path):
    code, out = _run("build", tmp_path / "absent.onnx", "-o", tmp_path / "x.engine")
    assert code == 2 and "not found" in out


# ----------------------------------------------------------------------------- --plugins


@pytest.fixture
def stand_in_onnx(tmp_path):
    """The build checks --plugins before it reads the ONNX: any file will do here."""
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not read before the plugin checks")
    return path


def _one_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    return lines[0]


def test_plugins_must_be_a_shared_library(stand_in_onnx, tmp_path):
    text = tmp_path / "plugins.txt"
    text.write_text("not a library\n")
    code, out = _run("build", stand_in_onnx, "-o", tmp_path / "m.engine", "--trt", "tensorrt",
                     "--plugins", text)
    assert code == 2
    assert "is not a shared library (no ELF header)" in _one_line(out) and str(text) in out
    code, out = _run("build", stand_in_onnx, "-o", tmp_path / "m.engine", "--trt", "tensorrt",
                     "--plugins", tmp_path / "absent.so")
    assert code == 2 and "plugin library" in _one_line(out) and "not found" in out
    assert not (tmp_path / "m.engine").exists()


def test_plugins_refused_for_tensorrt_rtx(stand_in_onnx, shared_library, tmp_path):
    code, out = _run("build", stand_in_onnx, "-o", tmp_path / "m.engine", "--trt", "tensorrt-rtx",
                     "--plugins", shared_library)
    assert code == 2
    line = _one_line(out)
    assert "TensorRT-RTX cannot load plugin libraries" in line and "--trt tensorrt" in line


def test_a_real_shared_library_passes_the_plugin_checks(stand_in_onnx, shared_library, tmp_path):
    code, out = _run("build", stand_in_onnx, "-o", tmp_path / "m.engine", "--trt", "tensorrt",
                     "--plugins", shared_library)
    assert code == 2  # no full TensorRT here (or a stand-in ONNX it cannot parse)
    assert "plugin library" not in out, out


@pytest.mark.slow
def test_build_a_single_graph(checkpoint, tmp_path):
    """An engine from ``--single-graph``: one input, no context binding, and the
    TensorRT runner asks for no context graph."""
    from hermes_deploy.engines.trt.runner import TrtRunner

    single = _export(checkpoint, "tiny.single.onnx", single_graph=True)
    engine = tmp_path / "single.engine"
    code, out = _run("build", single, "-o", engine, "--trt", "tensorrt-rtx", "--tile", "32x32",
                     "--builder-optimization-level", "0", "--workspace", "256")
    assert code == 0, out
    m = read_manifest(engine)
    assert m.model_spec().single_graph and m.model_spec().context_graph is None
    assert m.profiles == [{"input": [[1, 3, 32, 32]] * 3}]
    check_manifest(m, engine, flavour="tensorrt-rtx", trt_version=trt.__version__,
                   compute_capability="SM89", onnx_path=single)
    import numpy as np

    # no GPU here to open the engine: the runner's context step, which needs none, alone
    spec_only = TrtRunner.__new__(TrtRunner)
    spec_only.spec = m.model_spec()
    assert spec_only.context(np.zeros((2, 3, 8, 8), np.float32)).shape == (2, 0)
