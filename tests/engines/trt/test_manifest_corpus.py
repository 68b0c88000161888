"""The shared engine-manifest corpus (tests/data/manifests/) is still what Python says.

libhermes' C++ twin of check_manifest / normalize_capability / pick_profile is tested
against these files (cpp/tests/test_manifest.cpp); here each file is checked against
the Python functions, so a change to manifest.py that changes a message fails until
the corpus is rewritten (``python tests/data/manifests/make_corpus.py``) and the C++
follows. Torch- and TensorRT-free: the cases write stand-in files, nothing is built.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

from hermes_deploy.engines.trt.flavour import normalize_capability
from hermes_deploy.engines.trt.runner import pick_profile
from hermes_deploy.errors import HermesError

CORPUS = Path(__file__).resolve().parents[2] / "data" / "manifests"
CASE_FILES = sorted((CORPUS / "cases").glob("*.json"))


def _generator():
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_corpus = _generator()


def _load(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_corpus_covers_every_kind_of_refusal():
    names = {p.stem for p in CASE_FILES}
    assert names == set(make_corpus.CASES), ("corpus is stale: run "
                                              "tests/data/manifests/make_corpus.py")
    statuses = {_load(p)["status"] for p in CASE_FILES}
    assert statuses == {"HERMES_OK", "HERMES_ERR_MISMATCH", "HERMES_ERR_IO",
                        "HERMES_ERR_INVALID_ARGUMENT", "HERMES_ERR_MODEL"}


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_check_manifest_says_what_the_corpus_says(path, tmp_path):
    case = _load(path)
    for name, content in case["files"].items():
        assert hashlib.sha256(make_corpus.file_bytes(content)).hexdigest() == case["sha256"][name]
    error, message = make_corpus.run_case(case, tmp_path)
    assert (error, message) == (case["error"], case["expect"]), (
        "Python's check_manifest changed: run tests/data/manifests/make_corpus.py and update "
        "cpp/src/manifest.cpp to match")
    if message is not None:
        assert "\n" not in message


def test_case_files_are_the_generator_output():
    """Edited case definitions must be written out (and a hand edit is caught)."""
    for name, value in make_corpus.corpus().items():
        assert (CORPUS / name).read_text(encoding="utf-8") == make_corpus.dump(value), name


def test_normalize_capability_corpus():
    for text, expect in _load(CORPUS / "normalize_capability.json"):
        assert normalize_capability(text) == expect, text


def test_pick_profile_corpus():
    for entry in _load(CORPUS / "pick_profile.json"):
        shapes = {n: tuple(s) for n, s in entry["shapes"]}
        if entry["expect"] is None:
            assert pick_profile(entry["profiles"], shapes) == entry["index"]
        else:
            with pytest.raises(HermesError) as info:
                pick_profile(entry["profiles"], shapes)
            assert str(info.value) == entry["expect"]
