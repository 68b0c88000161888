"""``ModelSpec``: what a runtime needs to know about an exported model.

Written as JSON into the ONNX ``metadata_props`` (key ``hermes.spec``) and, later, the
engine manifest; read back without torch. The runtime learns scale, channels, size
multiple, overlap and input names from here, never by importing the model code.
Torch-free; numpy-free.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .optional import require

METADATA_KEY = "hermes.spec"
SPEC_VERSION = 1


@dataclass(frozen=True)
class ModelSpec:
    scale: int
    in_channels: int
    out_channels: int
    size_multiple: int  # the model pads internally; tiles that are multiples avoid waste
    min_size: int  # smallest accepted input side
    tile_overlap: int  # recommended overlap in input pixels (from the receptive field)
    receptive_radius: int  # measured 99% effective receptive-field radius, input pixels
    context_channels: int
    precision: str  # fp32 | fp16 | int8 (compute precision of the graph)
    io_dtype: str  # dtype of the graph inputs and outputs
    target: str  # portable | tensorrt
    opset: int
    fidelity: bool
    value_range: tuple[float, float] = (0.0, 1.0)
    input_name: str = "input"
    context_name: str = "context"
    noise_name: str | None = None
    output_name: str = "output"
    tile: tuple[int, int] | None = None  # fixed input H, W (None = dynamic)
    batch: int | None = None  # fixed batch (None = dynamic)
    context_graph: str | None = None  # companion ONNX file computing the context
    # One graph, one image input: the context is computed inside the graph from the input
    # it receives, so there is no context input and no companion graph, and each tile
    # that a tiling caller feeds it routes by itself (hermes-export onnx --single-graph).
    single_graph: bool = False
    source_sha256: str = ""
    package_version: str = ""
    preset: str = ""
    spec_version: int = SPEC_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def replace(self, **changes: Any) -> "ModelSpec":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> "ModelSpec":
        try:
            data = json.loads(text)
            known = {f.name for f in dataclasses.fields(cls)}
            data = {k: v for k, v in data.items() if k in known}
            for key in ("value_range", "tile"):
                if data.get(key) is not None:
                    data[key] = tuple(data[key])
            return cls(**data)
        except (json.JSONDecodeError, TypeError) as exc:
            raise InputError(f"{source} carries an unreadable HERMES spec ({exc}); re-export it "
                             "with hermes-export onnx") from None

    @classmethod
    def from_onnx(cls, model_or_path) -> "ModelSpec":
        """Read the spec from an ONNX ModelProto or file (metadata only)."""
        onnx = require("onnx", purpose="Reading an ONNX model's spec")

        source = str(model_or_path) if not hasattr(model_or_path, "metadata_props") else "model"
        if hasattr(model_or_path, "metadata_props"):
            model = model_or_path
        else:
            try:
                model = onnx.load(str(model_or_path), load_external_data=False)
            except Exception as exc:  # onnx raises several types for corrupt files
                raise InputError(f"'{model_or_path}' is not a readable ONNX file ({exc}); "
                                 "re-export it") from None
        props = {p.key: p.value for p in model.metadata_props}
        if METADATA_KEY not in props:
            raise InputError(f"{source} has no HERMES spec in its metadata; export it with "
                             "hermes-export onnx")
        return cls.from_json(props[METADATA_KEY], source)
