"""Plugin registration for ``--target tensorrt`` graphs, as far as TensorRT-RTX allows.

TensorRT-RTX 1.7 cannot build plugin nodes; these tests pin down exactly why, so the
day a release can, they fail and say what to enable. The full-TensorRT quickly
deployable plugins (``plugins/qdp.py``) cannot be imported here (no ``tensorrt``).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from hermes_deploy.engines.trt.plugins import PLUGINS, PluginUnavailableError, register_plugins

pytestmark = pytest.mark.trt
trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed "
                          "(pip install 'hermes-deploy[trt-rtx]')")

WANTED = [{"name": n, "version": v, "namespace": "hermes"} for n, v in PLUGINS.items()]


def test_rtx_is_refused_with_one_line():
    with pytest.raises(PluginUnavailableError) as info:
        register_plugins(trt, WANTED)
    message = str(info.value)
    assert "\n" not in message and "hermes::SelectiveScan, hermes::SpectralLowpass" in message
    assert "--target portable" in message


def test_unknown_plugin_version_is_refused():
    with pytest.raises(PluginUnavailableError, match=r"hermes::SelectiveScan v2.*has hermes::"):
        register_plugins(trt, [{"name": "SelectiveScan", "version": "2", "namespace": "hermes"}])


def test_rtx_has_no_quickly_deployable_plugins_and_no_plugin_layers():
    with pytest.raises(ImportError):  # if this passes one day: register the QDPs for RTX
        import tensorrt_rtx.plugin  # noqa: F401
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network(0)
    assert not [name for name in dir(network) if name.startswith("add_plugin")]


PROBE = textwrap.dedent('''
    import numpy as np, onnx, tensorrt_rtx as trt
    from onnx import helper, TensorProto, numpy_helper

    class Lowpass(trt.IPluginV3, trt.IPluginV3OneCore, trt.IPluginV3OneBuild,
                  trt.IPluginV3OneRuntime):
        def __init__(self):
            trt.IPluginV3.__init__(self); trt.IPluginV3OneCore.__init__(self)
            trt.IPluginV3OneBuild.__init__(self); trt.IPluginV3OneRuntime.__init__(self)
            self.plugin_name, self.plugin_version = "SpectralLowpass", "1"
            self.plugin_namespace, self.num_outputs = "hermes", 1
        def get_capability_interface(self, kind): return self
        def get_output_data_types(self, types): return [types[0]]
        def get_output_shapes(self, inputs, shape_inputs, builder): return [inputs[0]]
        def supports_format_combination(self, pos, io, n): return True
        def configure_plugin(self, i, o): pass
        def on_shape_change(self, i, o): pass
        def get_fields_to_serialize(self): return trt.PluginFieldCollection([])
        def attach_to_context(self, c): return self.clone()
        def enqueue(self, *args): pass
        def set_tactic(self, t): pass
        def clone(self): return Lowpass()

    made = []
    class Creator(trt.IPluginCreatorV3One):
        def __init__(self):
            trt.IPluginCreatorV3One.__init__(self)
            self.name, self.plugin_namespace, self.plugin_version = "SpectralLowpass", "hermes", "1"
            self.field_names = trt.PluginFieldCollection([])
        def create_plugin(self, name, fields, phase):
            made.append(Lowpass()); print("created", flush=True); return made[-1]

    creator = Creator()
    assert trt.get_plugin_registry().register_creator(creator, "hermes")
    node = helper.make_node("SpectralLowpass", ["x", "c", "s"], ["y"], domain="hermes",
                            plugin_version="1", plugin_namespace="hermes")
    ones = [numpy_helper.from_array(np.ones(3, np.float32), n) for n in "cs"]
    graph = helper.make_graph([node], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])], ones)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid("hermes", 1)])
    model.ir_version = 9
    logger = trt.Logger(trt.Logger.ERROR)
    network = trt.Builder(logger).create_network(0)
    parser = trt.OnnxParser(network, logger)
    print("parsed", parser.parse(model.SerializeToString()), flush=True)
''')


def test_python_iplugin_v3_aborts_the_rtx_onnx_parser(tmp_path):
    """A registered Python IPluginV3 is found and created, then the parser terminates."""
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert "created" in done.stdout
    if done.returncode == 0 and "parsed True" in done.stdout:
        pytest.fail("TensorRT-RTX now parses Python plugins: register them for the RTX flavour")
    assert done.returncode != 0 and "parsed" not in done.stdout
    assert "terminate called" in done.stderr


def test_qdp_module_imports_without_tensorrt():
    code = ("import sys, hermes_deploy.engines.trt.plugins.qdp\n"
            "print(sorted(m for m in ('tensorrt', 'tensorrt_rtx', 'triton', 'torch')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
