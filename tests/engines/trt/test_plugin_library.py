"""Plugin libraries in the engine manifest (``hermes-export build --plugins``), no TensorRT.

The record (``{"path", "sha256"}``, path relative to the engine's folder when the library
lies inside it), the ELF check, the manifest checks and the cache key. The same checks in
C++ are covered by the shared corpus (tests/data/manifests, cases plugin_library_*).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil

import pytest

from hermes_deploy.engines.trt import manifest as mf
from hermes_deploy.errors import EngineMismatchError, InputError


@pytest.fixture
def library(shared_library):
    return shared_library


def _manifest(**changes):
    base = mf.EngineManifest(flavour="tensorrt", trt_version="11.1.0.1", compute_capability="SM89",
                             onnx_sha256="", engine_sha256="", precision="fp32", profiles=[],
                             inputs=[], outputs=[])
    return dataclasses.replace(base, **changes)


def test_record_inside_the_engine_folder_is_relative(library, tmp_path):
    engines = tmp_path / "engines"
    (engines / "plugins").mkdir(parents=True)
    inside = engines / "plugins" / library.name
    shutil.copy(library, inside)
    record = mf.plugin_library_record(inside, engines / "model.engine")
    assert record == {"path": f"plugins/{library.name}",
                      "sha256": hashlib.sha256(library.read_bytes()).hexdigest()}
    outside = mf.plugin_library_record(library, engines / "model.engine")
    assert outside["path"] == str(library.resolve())
    assert mf.plugin_library_path(engines / "model.engine", record["path"]) == str(inside)


def test_record_refuses_what_is_not_a_library(tmp_path):
    text = tmp_path / "lib.so"
    text.write_text("#!/bin/sh\n")
    with pytest.raises(InputError, match="is not a shared library"):
        mf.plugin_library_record(text, tmp_path / "m.engine")
    with pytest.raises(InputError, match="not found"):
        mf.plugin_library_record(tmp_path / "absent.so", tmp_path / "m.engine")


def test_check_manifest_checks_the_libraries(library, tmp_path):
    shutil.copy(library, tmp_path / library.name)
    engine = tmp_path / "m.engine"
    m = _manifest(plugin_libraries=[mf.plugin_library_record(tmp_path / library.name, engine)])
    mf.check_manifest(m, engine, flavour="tensorrt", trt_version="11.1.0.1", check_engine_file=False)
    (tmp_path / library.name).write_bytes(library.read_bytes() + b"\0")
    with pytest.raises(EngineMismatchError, match="is not the one engine m.engine was built with") as info:
        mf.check_manifest(m, engine, flavour="tensorrt", trt_version="11.1.0.1", check_engine_file=False)
    assert f"--plugins {tmp_path / library.name}" in str(info.value)
    (tmp_path / library.name).unlink()
    with pytest.raises(InputError, match="needs does not exist"):
        mf.check_manifest(m, engine, flavour="tensorrt", trt_version="11.1.0.1", check_engine_file=False)


def test_manifests_without_the_field_still_load_and_round_trip():
    old = json.loads(_manifest().to_json())
    del old["plugin_libraries"]
    assert mf.EngineManifest.from_json(json.dumps(old)).plugin_libraries == []
    m = _manifest(plugin_libraries=[{"path": "libp.so", "sha256": "ab"}])
    assert mf.EngineManifest.from_json(m.to_json()) == m
    bad = json.loads(m.to_json())
    bad["plugin_libraries"] = [{"path": "libp.so"}]
    with pytest.raises(InputError, match=r"\(missing field 'sha256'\)"):
        mf.EngineManifest.from_json(json.dumps(bad), "m.engine.json")


def test_cache_key_follows_the_library_bytes_and_keeps_old_keys():
    facts = dict(flavour="tensorrt", trt_version="11.1.0.1", compute_capability="SM89",
                 onnx_sha256="0" * 64, profiles=[], build={}, plugins=[])
    plain = mf.cache_key(**facts)
    assert mf.cache_key(**facts, plugin_libraries=[]) == plain
    one = mf.cache_key(**facts, plugin_libraries=[{"path": "a.so", "sha256": "1" * 64}])
    moved = mf.cache_key(**facts, plugin_libraries=[{"path": "b/a.so", "sha256": "1" * 64}])
    other = mf.cache_key(**facts, plugin_libraries=[{"path": "a.so", "sha256": "2" * 64}])
    assert one == moved and len({plain, one, other}) == 3
