"""Write the engine-manifest corpus: cases whose expected messages come from Python.

libhermes (cpp/src/manifest.cpp) repeats :func:`hermes_deploy.engines.trt.manifest.check_manifest`
and :func:`hermes_deploy.engines.trt.runner.pick_profile` word for word. The cases here
are defined once; this script runs the Python functions on them and writes what they
say into ``cases/*.json``, ``normalize_capability.json`` and ``pick_profile.json``.
``tests/engines/trt/test_manifest_corpus.py`` checks that the files still are what
Python says, ``cpp/tests/test_manifest.cpp`` that C++ says the same. See README.md.

Run from anywhere: ``python tests/data/manifests/make_corpus.py`` (needs no TensorRT).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from hermes_deploy.engines.trt.flavour import normalize_capability  # noqa: E402
from hermes_deploy.engines.trt.manifest import (  # noqa: E402
    EngineManifest, check_manifest, read_manifest)
from hermes_deploy.engines.trt.runner import pick_profile  # noqa: E402
from hermes_deploy.errors import HermesError  # noqa: E402

CORPUS = Path(__file__).resolve().parent
#: stands for the case's temporary folder in engine paths and messages
DIR = "<DIR>"
ENGINE = "engine bytes: a stand-in, never deserialized\n"
ONNX = "onnx bytes: a stand-in for model.onnx\n"
LIB = "\x7fELF plugin library bytes: a stand-in, never loaded\n"
VERSIONS = {"tensorrt": "10.13.0.35", "tensorrt-rtx": "1.0.0.21"}
#: a 1 MiB + 1 byte engine, so that hashing crosses a streaming block
BIG = {"pattern": "hermes-", "size": (1 << 20) + 1}
PROFILE = {"x": [[1, 3, 16, 16], [1, 3, 256, 256], [4, 3, 512, 512]],
           "ctx": [[1, 8], [1, 8], [4, 8]]}  # not sorted: file order must be kept


def file_bytes(content: str | dict[str, Any]) -> bytes:
    """A case file's bytes: text (UTF-8), or ``{"pattern", "size"}`` repeated to size."""
    if isinstance(content, str):
        return content.encode()
    pattern = content["pattern"].encode()
    return (pattern * (content["size"] // len(pattern) + 1))[:content["size"]]


def sha(content: str | dict[str, Any]) -> str:
    return hashlib.sha256(file_bytes(content)).hexdigest()


def manifest(flavour: str = "tensorrt", **changes: Any) -> dict[str, Any]:
    """A manifest as hermes-export build writes it for ENGINE built from ONNX."""
    built = dataclasses.asdict(EngineManifest(
        flavour=flavour, trt_version=VERSIONS.get(flavour, "1.0"), compute_capability="SM89",
        onnx_sha256=sha(ONNX), engine_sha256=sha(ENGINE), precision="fp32",
        profiles=[PROFILE], inputs=[["x", "float32", [-1, 3, -1, -1]], ["ctx", "float32", [-1, 8]]],
        outputs=[["y", "float32", [-1, 3, -1, -1]]],
        build={"tile": None, "batch": None, "workspace_mb": None, "optimization_level": None,
               "timing_cache": None, "cache_key": "0" * 32},
        spec={"scale": 2, "in_channels": 3, "out_channels": 3, "context_channels": 8,
              "input_name": "x", "context_name": "ctx", "output_name": "y",
              "context_graph": "model.context.onnx"},
        onnx_name="exports/model.onnx", package_version="0.1.0"))
    built.update(changes)
    return built


def case(description: str, *, manifest: dict[str, Any] | None, running: tuple[str, str, str | None],
         files: dict[str, Any] | None = None, engine_path: str = "model.engine",
         onnx_path: str | None = None, check_engine_file: bool = True,
         status: str | None = None) -> dict[str, Any]:
    """One case; ``status`` is the C++ status of an InputError (a mismatch is
    HERMES_ERR_MISMATCH, acceptance HERMES_OK)."""
    files = {engine_path: ENGINE, "model.onnx": ONNX} if files is None else files
    return {"description": description, "engine_path": engine_path, "files": files,
            "sha256": {name: sha(content) for name, content in files.items()},
            "manifest": manifest,
            "running": dict(zip(("flavour", "trt_version", "compute_capability"), running)),
            "onnx_path": onnx_path, "check_engine_file": check_engine_file, "status": status}


FULL = ("tensorrt", VERSIONS["tensorrt"], "SM89")
RTX = ("tensorrt-rtx", VERSIONS["tensorrt-rtx"], "SM89")
def without(manifest_dict: dict[str, Any], key: str) -> dict[str, Any]:
    """A manifest as an older hermes-export wrote it, without ``key``."""
    return {k: v for k, v in manifest_dict.items() if k != key}


WITH_LIB = {"model.engine": ENGINE, "model.onnx": ONNX, "libhermes_trt_plugins.so": LIB}
LIB_RECORD = [{"path": "libhermes_trt_plugins.so", "sha256": sha(LIB)}]
TWO_PROFILES = [PROFILE, {"x": [[1, 3, 520, 520], [2, 3, 768, 768], [2, 3, 1024, 1024]],
                          "ctx": [[1, 8], [2, 8], [2, 8]]}]

CASES: dict[str, dict[str, Any]] = {
    "accepted_tensorrt": case("a fitting engine, with its unchanged ONNX", manifest=manifest(),
                              running=FULL, onnx_path="model.onnx"),
    "accepted_rtx_cc_spelling": case("sm_89 is SM89", manifest=manifest("tensorrt-rtx"),
                                     running=(*RTX[:2], "sm_89")),
    "accepted_cc_dotted": case("8.9 is SM89", manifest=manifest(), running=(*FULL[:2], "8.9")),
    "accepted_current": case("an engine recorded as CURRENT skips the GPU check",
                             manifest=manifest(compute_capability="CURRENT"),
                             running=(*FULL[:2], "SM90")),
    "accepted_no_gpu": case("no GPU known: the capability check is skipped", manifest=manifest(),
                            running=(*FULL[:2], None)),
    "accepted_engine_not_checked": case("check_engine_file=False: the engine may be absent",
                                        manifest=manifest(), running=FULL,
                                        files={"model.onnx": ONNX}, check_engine_file=False),
    "accepted_big_engine": case("a 1 MiB + 1 byte engine hashes as Python hashes it",
                                manifest=manifest(engine_sha256=sha(BIG)), running=FULL,
                                files={"model.engine": BIG}),
    "manifest_missing": case("no model.engine.json beside the engine (read_manifest)",
                             manifest=None, running=FULL),
    "manifest_version_2": case("a newer manifest", manifest=manifest(manifest_version=2),
                               running=FULL),
    "manifest_version_0": case("an older manifest", manifest=manifest(manifest_version=0),
                               running=FULL),
    "flavour_rtx_on_tensorrt": case("a TensorRT-RTX engine loaded by TensorRT",
                                    manifest=manifest("tensorrt-rtx"), running=FULL),
    "flavour_tensorrt_on_rtx": case("a TensorRT engine loaded by TensorRT-RTX",
                                    manifest=manifest(), running=RTX),
    "flavour_unknown_in_manifest": case("the manifest's unknown flavour is shown as written",
                                        manifest=manifest("tensorrt-llm"), running=FULL),
    "flavour_unknown_running": case("the running flavour must be one of the two",
                                    manifest=manifest(), running=("tensorrt-llm", "1.0", None),
                                    status="HERMES_ERR_INVALID_ARGUMENT"),
    "trt_version_tensorrt": case("another TensorRT release", manifest=manifest(),
                                 running=("tensorrt", "10.14.1.48", "SM89")),
    "trt_version_rtx": case("another TensorRT-RTX release", manifest=manifest("tensorrt-rtx"),
                            running=("tensorrt-rtx", "1.1.0.3", "SM89")),
    "cc_tensorrt_mismatch": case(
        "TensorRT engine from another GPU; the fixed tile is in the rebuild command",
        manifest=manifest(build={"tile": [256, 256], "workspace_mb": 1024,
                                 "optimization_level": 3}),
        running=(*FULL[:2], "8.6")),
    "cc_tensorrt_odd_spelling": case("sm_89a is not SM89", manifest=manifest(),
                                     running=(*FULL[:2], "sm_89a")),
    "cc_tensorrt_current_running": case("'current' from the GPU query is CURRENT",
                                        manifest=manifest(), running=(*FULL[:2], "current")),
    "cc_rtx_mismatch": case("TensorRT-RTX engine for another GPU: rebuild for this one",
                            manifest=manifest("tensorrt-rtx"), running=(*RTX[:2], "sm_120")),
    "cc_rtx_spaces": case("' SM 8.6 ' is SM86", manifest=manifest("tensorrt-rtx"),
                          running=(*RTX[:2], " SM 8.6 ")),
    "cc_rtx_control_whitespace": case("\\t, \\n and \\x1f are whitespace to Python's \\s",
                                      manifest=manifest("tensorrt-rtx"),
                                      running=(*RTX[:2], "\tsm\x1f_8.9\n")),
    "onnx_changed": case("the ONNX changed since the build", manifest=manifest(), running=FULL,
                         files={"model.engine": ENGINE, "model.onnx": ONNX + "edited\n"},
                         onnx_path="model.onnx"),
    "onnx_short_sha": case("a manifest sha shorter than 12 characters is shown whole",
                           manifest=manifest(onnx_sha256="abc"), running=FULL,
                           onnx_path="model.onnx"),
    "engine_replaced": case("the engine file is not the one the manifest describes",
                            manifest=manifest(), running=FULL,
                            files={"model.engine": ENGINE + "patched\n"}),
    "engine_missing": case("the engine file is missing", manifest=manifest(), running=FULL,
                           files={}, status="HERMES_ERR_IO"),
    "engine_in_subfolder_unicode": case(
        "the message names the file (Path.name) and the command the whole path",
        manifest=manifest(), running=("tensorrt", "10.14.1.48", "SM89"),
        engine_path="engines/modèle v2.engine", files={"engines/modèle v2.engine": ENGINE}),
    "first_problem_wins": case("version, engine and ONNX all differ: the version is reported",
                               manifest=manifest(), running=("tensorrt", "9.0.0.1", "SM75"),
                               files={"model.engine": "other\n", "model.onnx": "other\n"},
                               onnx_path="model.onnx"),
    "rebuild_profiles": case(
        "two profiles in file order; workspace; optimization level 0 is shown; no onnx_name",
        manifest=manifest(profiles=TWO_PROFILES, onnx_name="",
                          build={"tile": None, "workspace_mb": 2048, "optimization_level": 0}),
        running=("tensorrt", "10.14.1.48", "SM89")),
    "rebuild_tile_wins": case(
        "a fixed tile replaces the profiles; workspace 0 and level null are left out",
        manifest=manifest(profiles=TWO_PROFILES,
                          build={"tile": [512, 384], "workspace_mb": 0,
                                 "optimization_level": None}),
        running=("tensorrt", "10.14.1.48", "SM89")),
    "rebuild_no_profiles": case("a static engine has no profiles; build facts may be absent",
                                manifest=manifest(profiles=[], build={"optimization_level": 5}),
                                running=("tensorrt", "10.14.1.48", "SM89")),
    "accepted_without_plugin_libraries": case(
        "a manifest written before plugin_libraries existed loads (no libraries)",
        manifest=without(manifest(), "plugin_libraries"), running=FULL),
    "plugin_library_accepted": case(
        "the plugin library beside the engine, unchanged",
        manifest=manifest(plugin_libraries=LIB_RECORD), running=FULL, files=WITH_LIB),
    "plugin_library_missing": case(
        "the plugin library the manifest records is not beside the engine",
        manifest=manifest(plugin_libraries=LIB_RECORD), running=FULL, status="HERMES_ERR_IO"),
    "plugin_library_replaced": case(
        "another plugin library under the recorded name; the rebuild command passes --plugins",
        manifest=manifest(plugin_libraries=LIB_RECORD), running=FULL,
        files={**WITH_LIB, "libhermes_trt_plugins.so": LIB + "patched\n"}),
    "plugin_library_relative_folder": case(
        "a path relative to the engine's folder, the engine in a subfolder",
        manifest=manifest(plugin_libraries=[{"path": "../plugins/libhermes_trt_plugins.so",
                                              "sha256": sha(LIB + "an older build\n")}]),
        running=FULL, engine_path="engines/model.engine",
        files={"engines/model.engine": ENGINE, "plugins/libhermes_trt_plugins.so": LIB}),
    "plugin_library_unreadable": case(
        "a plugin library entry without sha256 is not a manifest (both sides, same words)",
        manifest=manifest(plugin_libraries=[{"path": "libhermes_trt_plugins.so"}]), running=FULL,
        files=WITH_LIB, status="HERMES_ERR_MODEL"),
    "rebuild_rtx": case("TensorRT-RTX: the target is in the rebuild command",
                        manifest=manifest("tensorrt-rtx", profiles=TWO_PROFILES),
                        running=("tensorrt-rtx", "1.1.0.3", "SM89")),
}

CAPABILITIES = ["SM89", "sm_89", "sm89", "89", "8.9", "sm_8.9", "SM 8 9", "8.", ".9", "sm", "sm_",
                "sm_089", "12.0", "sm_120", "90a", "sm_90a", "current", "CURRENT", "", "  ",
                "\t8.6\n", "8\x1f9", "8.9.1", "compute_89", "SM_SM89"]

PROFILES = [{"x": [[1, 3, 16, 16], [1, 3, 32, 32], [1, 3, 64, 64]]},
            {"x": [[1, 3, 65, 65], [2, 3, 128, 128], [4, 3, 256, 256]]}]
PICKS = [
    (PROFILES, [["x", [1, 3, 16, 64]]]),
    (PROFILES, [["x", [3, 3, 100, 256]]]),
    ([], [["x", [1, 3, 8, 8]]]),
    (PROFILES, [["x", [1, 3, 300, 32]]]),
    (PROFILES, [["x", [1, 3, 16, 16]], ["ctx", [1, 8]]]),  # ctx is in no profile: ignored
    (PROFILES, [["x", [1, 3, 16]]]),  # another rank
    ([PROFILE], [["x", [2, 3, 16, 16]], ["ctx", [2, 8]]]),
    ([PROFILE], [["x", [8, 3, 16, 16]], ["ctx", [8, 8]]]),
    ([{"n": [[1], [2], [4]]}], [["n", [5]]]),  # one-element tuples print as (5,)
]


# ----------------------------------------------------------------------------- running


def materialize(entry: dict[str, Any], folder: Path) -> tuple[str, str | None]:
    """Write a case's files and manifest under ``folder``; return (engine, onnx) paths."""
    for name, content in entry["files"].items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(file_bytes(content))
    engine = f"{folder}/{entry['engine_path']}"
    if entry["manifest"] is not None:
        Path(engine).parent.mkdir(parents=True, exist_ok=True)
        Path(engine + ".json").write_text(json.dumps(entry["manifest"], indent=2))
    onnx = f"{folder}/{entry['onnx_path']}" if entry["onnx_path"] else None
    return engine, onnx


def run_case(entry: dict[str, Any], folder: Path) -> tuple[str | None, str | None]:
    """(error class name, message with the folder as <DIR>) of read + check_manifest."""
    engine, onnx = materialize(entry, folder)
    running = entry["running"]
    try:
        loaded = read_manifest(engine)
        check_manifest(loaded, engine, flavour=running["flavour"],
                       trt_version=running["trt_version"],
                       compute_capability=running["compute_capability"], onnx_path=onnx,
                       check_engine_file=entry["check_engine_file"])
    except HermesError as exc:
        return type(exc).__name__, str(exc).replace(str(folder), DIR)
    return None, None


def expected(entry: dict[str, Any]) -> dict[str, Any]:
    """The case with Python's verdict: ``error``, ``status`` and ``expect``."""
    folder = Path(tempfile.mkdtemp(prefix="hermes-manifest-"))
    try:
        error, message = run_case(entry, folder)
    finally:
        shutil.rmtree(folder)
    if error is None:
        status = "HERMES_OK"
    elif error == "EngineMismatchError":
        status = "HERMES_ERR_MISMATCH"
    elif entry["status"] is None:
        raise SystemExit(f"case {entry['description']!r} raises {error}: give it a status")
    else:
        status = entry["status"]
    return {**entry, "error": error, "status": status, "expect": message}


def corpus() -> dict[str, Any]:
    """Every corpus file name -> its JSON value, as Python says now."""
    out: dict[str, Any] = {f"cases/{name}.json": expected(entry) for name, entry in CASES.items()}
    out["normalize_capability.json"] = [[text, normalize_capability(text)] for text in CAPABILITIES]
    picks = []
    for profiles, shapes in PICKS:
        try:
            index, message = pick_profile(profiles, {n: tuple(s) for n, s in shapes}), None
        except HermesError as exc:
            index, message = None, str(exc)
        picks.append({"profiles": profiles, "shapes": shapes, "index": index, "expect": message})
    out["pick_profile.json"] = picks
    return out


def dump(value: Any) -> str:
    """Indented JSON with lists of numbers on one line (shapes read as shapes)."""
    text = re.sub(r"\[[-\d,\s]*\]", lambda m: json.dumps(json.loads(m.group())),
                  json.dumps(value, indent=2, ensure_ascii=False))
    if json.loads(text) != value:  # a string that looked like a list of numbers
        text = json.dumps(value, indent=2, ensure_ascii=False)
    return text + "\n"


def main() -> None:
    files = corpus()
    for stale in (CORPUS / "cases").glob("*.json"):
        if f"cases/{stale.name}" not in files:
            stale.unlink()
    (CORPUS / "cases").mkdir(exist_ok=True)
    for name, value in files.items():
        (CORPUS / name).write_text(dump(value), encoding="utf-8")
    print(f"wrote {len(files)} files under {CORPUS}")


if __name__ == "__main__":
    main()
