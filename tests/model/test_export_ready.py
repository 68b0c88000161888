"""torch.export of the deploy form with dynamic batch, height and width."""

from __future__ import annotations

import pytest
import torch

from hermes_deploy.model.deploy import deploy

from ..conftest import make_model


@pytest.mark.slow
def test_torch_export_dynamic_shapes_and_custom_op_nodes():
    model = deploy(make_model("tiny", 2), fidelity=True)
    dims = {0: torch.export.Dim("batch", min=1, max=64),
            2: torch.export.Dim("height", min=1, max=4096),
            3: torch.export.Dim("width", min=1, max=4096)}
    ep = torch.export.export(model, (torch.rand(2, 3, 40, 56),), dynamic_shapes={"x": dims})
    targets = [str(n.target) for n in ep.graph.nodes if n.op == "call_function"]
    n_ssm = model.config.n_stem + 1  # stem SSM blocks + the structure expert
    assert sum("hermes.selective_scan" in t for t in targets) == n_ssm
    assert sum("hermes.spectral_lowpass" in t for t in targets) == 1
    exported = ep.module()
    for shape in [(3, 3, 37, 53), (1, 3, 1, 1), (1, 3, 64, 16)]:
        x = torch.rand(*shape)
        with torch.no_grad():
            assert torch.equal(exported(x), model(x))
