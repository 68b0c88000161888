"""Where hermes-deploy keeps what it can rebuild, and the keys it keys it by.

* :func:`cache_dir` - ``$HERMES_CACHE_DIR`` or ``~/.cache/hermes-deploy``: cached ONNX
  exports of checkpoints, measured ModelSpecs, built engines.
* :func:`bundled_models` - the checkpoints shipped inside the package, by name.
* :func:`source_hash` - the SHA-256 of the checkpoint a name or path stands for (the
  ``source_sha256`` of a ModelSpec), or ``preset:NAME`` for an untrained preset.

Torch-free: these are paths and hashes only.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parent / "weights"


def cache_dir() -> Path:
    root = os.environ.get("HERMES_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "hermes-deploy"


def bundled_models() -> dict[str, Path]:
    """Bundled checkpoints by name (``default`` is the x2 tiny model when shipped)."""
    found = {p.name[: -len(".safetensors")]: p for p in sorted(BUNDLED_DIR.glob("*.safetensors"))}
    if "default" not in found and "tiny-x2" in found:
        found["default"] = found["tiny-x2"]
    return found


def source_hash(source: str) -> str:
    """SHA-256 of the checkpoint ``source`` names (a path or a bundled name), or
    ``preset:SOURCE`` when it names no file (an untrained preset)."""
    path = Path(source)
    if not path.is_file():
        path = bundled_models().get(source, path)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return f"preset:{source}"


def cache_key(source: str) -> str:
    """A short file-name-safe key of ``source``'s content (16 hex digits)."""
    return hashlib.sha256(source_hash(source).encode()).hexdigest()[:16]
