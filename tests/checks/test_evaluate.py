"""The shipped default model: quality gate on the held-out photographs."""

from __future__ import annotations

import pytest

from hermes_deploy.model.api import bundled_models, load_model
from hermes_deploy.quality import HELDOUT_PHOTOS, TRAIN_PHOTOS
from hermes_deploy.checks.evaluate import evaluate_model

pytestmark = pytest.mark.skipif("default" not in bundled_models(), reason="no bundled default model")


def test_default_loads_by_name_as_trained_x2():
    model = load_model("default")
    assert model.config.scale == 2 and model.config.preset == "tiny" and model.config.fidelity
    assert len(model.moe.experts) == 4  # E4 kept in the checkpoint


@pytest.mark.slow
def test_default_beats_bicubic_on_heldout_photos_without_routing_collapse():
    assert not set(HELDOUT_PHOTOS) & set(TRAIN_PHOTOS)
    report = evaluate_model("default", list(HELDOUT_PHOTOS))
    assert report.mean("gain") >= 1.0, report.table()
    util = report.extra["utilization"]
    assert util["generative"] == 0.0
    for name in ("texture", "structure", "deblur"):
        assert util[name] >= 0.05, util
