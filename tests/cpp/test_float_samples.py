"""libhermes' float samples (``HERMES_SAMPLE_F32``) through the C ABI (ctypes) against
the Python runtime on the same float image: the float path that a VapourSynth RGBS clip
takes, with no 8/16-bit rounding on either side to hide a difference."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

from .test_single_graph import build  # noqa: F401 - the shared session build

F32 = 3


class Image(ctypes.Structure):
    _fields_ = [("width", ctypes.c_int32), ("height", ctypes.c_int32), ("channels", ctypes.c_int32),
                ("sample", ctypes.c_int32), ("stride", ctypes.c_size_t), ("data", ctypes.c_void_p)]


class RestoreParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("tile_height", ctypes.c_int32),
                ("tile_width", ctypes.c_int32), ("overlap", ctypes.c_int32), ("batch", ctypes.c_int32),
                ("context_size", ctypes.c_int32), ("max_pixels", ctypes.c_int64)]


def _restore_f32(lib_path: Path, model: Path, image: np.ndarray, tile: int) -> np.ndarray:
    lib = ctypes.CDLL(str(lib_path))
    lib.hermes_last_error.restype = ctypes.c_char_p
    lib.hermes_restore_default_params.restype = RestoreParams
    model_h, session = ctypes.c_void_p(), ctypes.c_void_p()
    assert lib.hermes_model_load(str(model).encode(), None, ctypes.byref(model_h)) == 0, lib.hermes_last_error()
    params = lib.hermes_restore_default_params()
    assert params.struct_size == ctypes.sizeof(RestoreParams)  # the layout above is the header's
    params.tile_height = params.tile_width = tile
    try:
        assert lib.hermes_session_create(model_h, ctypes.byref(params), ctypes.byref(session)) == 0, \
            lib.hermes_last_error()
        src = np.ascontiguousarray(image, np.float32)
        h, w, c = src.shape
        out = np.full((2 * h, 2 * w, c), np.nan, np.float32)
        iv = Image(w, h, c, F32, 0, src.ctypes.data)
        ov = Image(2 * w, 2 * h, c, F32, 0, out.ctypes.data)
        assert lib.hermes_restore(session, ctypes.byref(iv), ctypes.byref(ov)) == 0, lib.hermes_last_error()
        return out
    finally:
        lib.hermes_session_free(session)
        lib.hermes_model_free(model_h)


def test_float_samples_equal_the_python_runtime(build, default_onnx):  # noqa: F811
    from hermes_deploy.engines.ov_runner import OvRunner
    from hermes_deploy.quality.photos import load_photo
    from hermes_deploy.runtime.pipeline import restore_array
    from hermes_deploy.runtime.plan import TileOptions

    if not (build / "libhermes.so").exists():
        pytest.fail(f"no libhermes.so in {build}")
    image = np.ascontiguousarray(load_photo("astronaut")[40:136, 60:188], np.float32)  # 96x128
    got = _restore_f32(build / "libhermes.so", default_onnx, image, tile=64)
    with OvRunner(default_onnx, precision="f32") as runner:
        want, _ = restore_array(runner, image, TileOptions(tile=(64, 64)))
    assert not np.isnan(got).any()
    diff = float(np.abs(got - want).max())
    print(f"libhermes f32 vs Python runtime: max abs {diff:.2e}; outside [0, 1]: "
          f"{int(((got < 0) | (got > 1)).sum())} samples")
    assert diff <= 1e-5
    assert ((got < 0) | (got > 1)).any() == ((want < 0) | (want > 1)).any()  # unclipped, both
