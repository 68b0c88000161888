"""The package's shape, checked from source: layers, no import circles, no private
names across modules, one optional-import guard whose extras exist.

Every module's imports are read with ``ast`` (lazy imports inside functions included:
a circle through a lazy import is still a circle in the design). The checks run on
the real package, and each is also run on a small planted package so that it is seen
to fail (a checker that finds nothing anywhere proves nothing).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - CI runs 3.11
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "hermes_deploy"

# Bottom to top: a module may import from its own layer and the layers before it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("hermes_deploy", "errors", "optional", "spec", "atomic", "cache", "tile_grid",
              "contracts", "formats", "cpu", "faults")),
    ("ops", ("ops",)),
    ("model", ("model",)),
    ("quality", ("quality",)),
    ("calibration", ("calibration",)),
    ("training", ("training",)),
    ("runtime", ("runtime",)),
    ("video", ("video",)),
    ("export", ("export",)),
    ("engines", ("engines",)),
    ("checks", ("checks",)),
    ("scaleout", ("scaleout",)),
    ("spandrel", ("spandrel",)),
    ("cli", ("cli",)),
]
# Layers that must never import torch, not even lazily.
TORCH_FREE = ("base", "quality", "calibration", "runtime", "video")


# ----------------------------------------------------------------------------- reading


def module_names(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``package_dir``."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str, int]]:
    """``(target module, imported name or "", line)`` for every import in one module.

    ``from pkg import sub`` counts as an import of ``pkg.sub`` when that is a module,
    else of ``pkg`` (the name is an attribute of it).
    """
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub, "", node.lineno) if sub in modules else
                             (target, alias.name, node.lineno))
    return found


def import_graph(package_dir: Path) -> tuple[dict[str, set[str]], list[str], list[str]]:
    """(edges between the package's modules, private-name imports, unresolved imports)."""
    modules = module_names(package_dir)
    top = package_dir.name
    edges: dict[str, set[str]] = {m: set() for m in modules}
    private, unresolved = [], []
    for name, path in modules.items():
        for target, imported, line in imports_of(name, path, modules):
            if target != top and not target.startswith(top + "."):
                continue
            if target not in modules:
                unresolved.append(f"{path.name}:{line} imports missing module {target}")
                continue
            if target != name:
                edges[name].add(target)
            if imported.startswith("_") and not imported.startswith("__"):
                private.append(f"{name}:{line} imports private {target}.{imported}")
    return edges, private, unresolved


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def layer_of(module: str, top: str = "hermes_deploy") -> int:
    rest = module[len(top) + 1:] if module != top else top
    head = rest.split(".")[0]
    for i, (_, members) in enumerate(LAYERS):
        if head in members:
            return i
    raise AssertionError(f"module {module} is in no layer of LAYERS; add it where it belongs")


def upward_imports(edges: dict[str, set[str]], top: str = "hermes_deploy") -> list[str]:
    return [f"{src} ({LAYERS[layer_of(src, top)][0]}) imports {dst} ({LAYERS[layer_of(dst, top)][0]})"
            for src, targets in sorted(edges.items()) for dst in sorted(targets)
            if layer_of(dst, top) > layer_of(src, top)]


def torch_imports(package_dir: Path, layers: Iterable[str]) -> list[str]:
    """``module:line`` of every torch import in the modules of ``layers``."""
    modules = module_names(package_dir)
    out = []
    for name, path in modules.items():
        if LAYERS[layer_of(name, package_dir.name)][0] not in layers:
            continue
        out += [f"{name}:{line}" for target, _, line in imports_of(name, path, modules)
                if target == "torch" or target.startswith("torch.")]
    return out


# ----------------------------------------------------------------------------- the package


@pytest.fixture(scope="module")
def graph():
    return import_graph(PACKAGE)


def test_every_import_resolves(graph):
    assert graph[2] == []


def test_no_import_circles(graph):
    assert cycles(graph[0]) == []


def test_no_private_names_cross_modules(graph):
    assert graph[1] == []


def test_layers_only_import_downward(graph):
    assert upward_imports(graph[0]) == []


def test_torch_free_layers_never_import_torch():
    assert torch_imports(PACKAGE, TORCH_FREE) == []


def test_every_extra_named_exists_in_pyproject():
    from hermes_deploy.optional import EXTRAS

    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named = {e for e in EXTRAS.values() if e}  # "" marks a core dependency
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if func == "require":
                named |= {k.value.value for k in node.keywords
                          if k.arg == "extra" and isinstance(k.value, ast.Constant) and k.value.value}
            elif func == "MissingDependencyError" and len(node.args) >= 2:
                if isinstance(node.args[1], ast.Constant) and node.args[1].value:
                    named.add(node.args[1].value)
    from hermes_deploy.engines.trt.flavour import Flavour

    named |= {f.extra for f in Flavour}
    assert named and named <= extras, f"extras named in code but absent from pyproject: {named - extras}"


def test_only_the_one_guard_catches_import_errors():
    """Optional imports go through ``optional.require``/``has``; no ad-hoc guards."""
    ad_hoc = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "optional.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = [node.type] if not isinstance(node.type, ast.Tuple) else node.type.elts
                if any(getattr(t, "id", "") in ("ImportError", "ModuleNotFoundError") for t in caught):
                    ad_hoc.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert ad_hoc == []


def test_every_error_class_lives_in_errors_module():
    elsewhere = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                elsewhere.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert elsewhere == []


def test_import_does_not_load_torch():
    code = "import sys, hermes_deploy, hermes_deploy.quality; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- planted faults


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    pkg = tmp_path / "hermes_deploy"
    for rel, text in files.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return pkg


def test_checks_fail_on_planted_faults(tmp_path):
    pkg = _plant(tmp_path, {
        "__init__.py": "",
        "errors.py": "",
        "runtime/__init__.py": "",
        "runtime/plan.py": "from .pipeline import run\n",
        "runtime/pipeline.py": "def run():\n    from .plan import _helper\n",  # lazy circle + private
        "model/__init__.py": "",
        "model/net.py": "from ..runtime.plan import x\nfrom ..missing import y\n",  # upward + unresolved
        "quality/__init__.py": "",
        "quality/m.py": "def f():\n    import torch\n",  # torch in a torch-free layer
    })
    edges, private, unresolved = import_graph(pkg)
    assert cycles(edges) == [["hermes_deploy.runtime.pipeline", "hermes_deploy.runtime.plan"]]
    assert private == ["hermes_deploy.runtime.pipeline:2 imports private hermes_deploy.runtime.plan._helper"]
    assert unresolved == ["net.py:2 imports missing module hermes_deploy.missing"]
    assert upward_imports(edges) == [
        "hermes_deploy.model.net (model) imports hermes_deploy.runtime.plan (runtime)"]
    assert torch_imports(pkg, TORCH_FREE) == ["hermes_deploy.quality.m:2"]


def test_clean_planted_package_passes(tmp_path):
    pkg = _plant(tmp_path, {
        "__init__.py": "",
        "errors.py": "class HermesError(Exception):\n    pass\n",
        "runtime/__init__.py": "from .plan import plan\n",
        "runtime/plan.py": "from ..errors import HermesError\n\ndef plan():\n    pass\n",
        "cli/__init__.py": "",
        "cli/app.py": "from ..runtime import plan\nfrom .. import __version__\n",
    })
    edges, private, unresolved = import_graph(pkg)
    assert cycles(edges) == [] and private == [] and unresolved == [] and upward_imports(edges) == []


def missing_from_architecture(text: str, package: Path, cpp_folders: Iterable[str]) -> list[str]:
    """Modules of ``package`` not listed in the doc's module index (by their path under the
    package, in backticks), and ``cpp/`` folders the doc never names (as ``folder/``)."""
    missing = [f"hermes_deploy/{p.relative_to(package).as_posix()}"
               for p in sorted(package.rglob("*.py"))
               if f"`{p.relative_to(package).as_posix()}`" not in text]
    missing += [f"cpp/{folder}/" for folder in sorted(cpp_folders) if f"{folder}/" not in text]
    return missing


def _tracked_cpp_folders() -> set[str]:
    """Folders under cpp/ that hold tracked files (build trees are never tracked)."""
    files = subprocess.run(["git", "ls-files", "cpp"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    return {str(Path(f).parent.relative_to("cpp").as_posix()) for f in files
            if Path(f).parent != Path("cpp")}


def test_architecture_names_every_module_and_cpp_folder():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    missing = missing_from_architecture(text, ROOT / "hermes_deploy", _tracked_cpp_folders())
    assert not missing, "ARCHITECTURE.md does not name: " + ", ".join(missing)


def test_a_module_left_out_of_architecture_is_caught(tmp_path):
    package = tmp_path / "hermes_deploy"
    (package / "runtime").mkdir(parents=True)
    for name in ("__init__.py", "runtime/__init__.py", "runtime/plan.py", "runtime/new.py"):
        (package / name).write_text("")
    text = "- `__init__.py`\n- `runtime/__init__.py`\n- `runtime/plan.py`\n`serve/` and `src/`\n"
    assert missing_from_architecture(text, package, {"serve", "src", "plugins/kernels"}) == [
        "hermes_deploy/runtime/new.py", "cpp/plugins/kernels/"]
