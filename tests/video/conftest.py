"""Models and runners the video tests share."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def bicubic_onnx(tmp_path_factory):
    """An untrained tiny x2 model: its last conv is zero, so it is exactly bicubic
    upsampling (edges replicated) - the colour tests' model."""
    import torch

    from hermes_deploy.export.onnx_export import ExportOptions, export_onnx
    from hermes_deploy.model.checkpoint import save_checkpoint
    from hermes_deploy.model.config import preset
    from hermes_deploy.model.network import Hermes

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("bicubic")
    ckpt = save_checkpoint(Hermes(preset("tiny", scale=2)), root / "bicubic.safetensors")
    return export_onnx(str(ckpt), root / "bicubic.onnx", ExportOptions()).path


def ort(path):
    from hermes_deploy.engines.ort_runner import OrtRunner

    return OrtRunner(path, threads=2)
