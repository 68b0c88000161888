"""HERMES as a spandrel architecture: detection, loading, the descriptor.

Detection is keyed on the config tensor (``hermes.config``, see
:mod:`hermes_deploy.model.checkpoint`), as spandrel's MoESR keys on its
``upscale.MetaUpsample`` tensor: a state dict is HERMES when it holds that tensor, the
tensor is a valid config, and the other tensors are exactly the keys and shapes of the
network that config builds (built on the meta device: no memory, no weights). No other
architecture writes that key, so HERMES is tried first and cannot take another's file;
and a HERMES file, claimed first, never reaches a looser detector.

The descriptor:

* ``scale`` and channels from the config; no size requirement: the network takes any
  size and pads itself to its size multiple (symmetric reflection, as the runtime pads),
  so the call gives what ``hermes-export infer`` gives. Declaring
  ``multiple_of=size_multiple`` would make spandrel reflect-pad (without repeating the
  edge) before the call: measured on ``astronaut`` 200x232 that moved the output near
  the bottom/right border by up to 0.139 (56.9 dB against the network's own output; 34
  dB on noise), and it gains nothing - the hosts that tile by the size requirements
  (chaiNNer) honour ``INTERNAL`` and do not tile, and ComfyUI reads neither;
* ``supports_half = supports_bfloat16 = False``: measured on a CPU (torch 2.13), the
  network does not run in either - the spectral gate's FFT (``hermes::spectral_lowpass``)
  has no half or bfloat16 kernel ("Unsupported dtype"). With an FP32 island around that
  op (not in the network today) bf16 came within 54.0 dB and fp16 within 74.5 dB of
  FP32 on a 128x128 photograph crop; declaring either now would make a host switch
  dtype and fail;
* ``tiling = ModelTiling.INTERNAL`` and a call that tiles inside with one context per
  image (:mod:`.tiling`), so a host that calls it once per image gets bounded memory and
  one routing per image.
"""

from __future__ import annotations

import functools
import logging

import torch

from ..errors import CheckpointError
from ..model.checkpoint import CONFIG_KEY, config_from_tensor, split_config
from ..model.config import HermesConfig
from ..model.network import Hermes
from .compat import import_spandrel
from .tiling import CONTEXT_MAX_SIDE, TILE, TiledCall

spandrel = import_spandrel()

ARCH_ID = "HERMES"
log = logging.getLogger("hermes_deploy.spandrel")


@functools.lru_cache(maxsize=16)
def expected_shapes(config: HermesConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the state dict of the network ``config`` builds."""
    with torch.device("meta"):
        model = Hermes(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def detect(state_dict) -> bool:
    """Whether ``state_dict`` is a HERMES checkpoint (see the module docstring)."""
    value = state_dict.get(CONFIG_KEY)
    if value is None:
        return False
    try:
        config = config_from_tensor(value)
    except CheckpointError as exc:
        log.warning("not loading as HERMES: %s", exc)
        return False
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()
              if k != CONFIG_KEY and isinstance(v, torch.Tensor)}
    expected = expected_shapes(config)
    if len(shapes) != len(state_dict) - 1 or shapes != expected:
        missing = sorted(set(expected) - set(shapes))
        unexpected = sorted(set(shapes) - set(expected))
        log.warning("not loading as HERMES: '%s' describes a network whose tensors this file "
                    "does not hold (missing %d, unexpected %d, other shapes %d); it was edited "
                    "or cut", CONFIG_KEY, len(missing), len(unexpected),
                    sum(1 for k in shapes if k in expected and shapes[k] != expected[k]))
        return False
    return True


class HermesArch(spandrel.Architecture[Hermes]):
    """HERMES-IR/SR for spandrel; ``tile`` and ``context_max_side`` set the call's tiling."""

    def __init__(self, tile: int = TILE, overlap: int | None = None,
                 context_max_side: int = CONTEXT_MAX_SIDE) -> None:
        super().__init__(id=ARCH_ID, name="HERMES-IR/SR", detect=detect)
        self.call = TiledCall(tile, overlap, context_max_side)

    def load(self, state_dict) -> "spandrel.ImageModelDescriptor[Hermes]":
        config, weights = split_config(state_dict, "spandrel state dict")
        if config is None:
            raise CheckpointError(f"not a HERMES state dict: no '{CONFIG_KEY}' tensor; convert the "
                                  "checkpoint with hermes-export convert")
        model = Hermes(config).eval()
        tags = [config.preset, "deploy" if config.deploy else "training",
                "fidelity" if config.fidelity else "generative"]
        return spandrel.ImageModelDescriptor(
            model, weights, architecture=self,
            purpose="SR" if config.scale > 1 else "Restoration", tags=tags,
            supports_half=False, supports_bfloat16=False,
            scale=config.scale, input_channels=config.in_channels,
            output_channels=config.in_channels,
            size_requirements=spandrel.SizeRequirements(),
            tiling=spandrel.ModelTiling.INTERNAL, call_fn=self.call)


def register(registry=None, **options):
    """Add HERMES to ``registry`` (spandrel's ``MAIN_REGISTRY`` by default), ahead of
    every architecture already there; a second call changes nothing. ``options`` go to
    :class:`HermesArch`. Returns the registry's ``ArchSupport`` for HERMES."""
    registry = spandrel.MAIN_REGISTRY if registry is None else registry
    if ARCH_ID not in registry:
        ahead_of = tuple(a.architecture.id for a in registry.architectures())
        registry.add(spandrel.ArchSupport.from_architecture(HermesArch(**options), before=ahead_of))
    return registry[ARCH_ID]
