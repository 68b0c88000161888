"""Graph hygiene (onnx-graphsurgeon) and metadata.

``clean_graph`` folds constants, removes dead nodes and sorts topologically; inputs and
outputs keep the stable names given at export (``input``, ``context``, ``noise``,
``output``). ``attach_spec`` writes the :class:`~hermes_deploy.spec.ModelSpec` into
``metadata_props``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic import atomic_path
from ..errors import HermesError, MissingDependencyError
from ..spec import METADATA_KEY, ModelSpec


class ExportError(HermesError):
    """Export or graph processing failed."""


def clean_graph(model):
    """Constant folding, dead-node cleanup and topological sort with onnx-graphsurgeon."""
    try:
        import onnx_graphsurgeon as gs
    except ImportError:
        raise MissingDependencyError("onnx-graphsurgeon", "onnx", "graph cleanup") from None
    import onnx

    functions = list(model.functions)
    graph = gs.import_onnx(model)
    graph.fold_constants(error_ok=True).cleanup(remove_unused_graph_inputs=False).toposort()
    out = gs.export_onnx(graph, do_type_check=False)
    out.ir_version = model.ir_version
    del out.opset_import[:]
    out.opset_import.extend(model.opset_import)
    del out.functions[:]
    out.functions.extend(functions)
    del out.metadata_props[:]
    out.metadata_props.extend(model.metadata_props)
    out.producer_name, out.producer_version = "hermes-deploy", model.producer_version
    return onnx.shape_inference.infer_shapes(out)


def attach_spec(model, spec: ModelSpec) -> None:
    props = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, spec.to_json()


def save_model(model, path: str | os.PathLike) -> Path:
    """Check and write an ONNX model atomically (temporary file + rename)."""
    import onnx

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            onnx.save(model, str(tmp))
    except OSError as exc:
        raise ExportError(f"cannot write '{path}': {exc.strerror or exc}; check free space and "
                          "permissions") from None
    return path
