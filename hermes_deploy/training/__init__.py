"""Training of HERMES models on CPU-sized budgets (torch).

``train(TrainConfig(...))`` reproduces the shipped default from its seed; see
``hermes_deploy/weights/README.md`` for the exact command and figures.
"""

from .train import TrainConfig, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
