"""``hermes_restore``: the model that runs inside Triton's Python backend.

The repository's ``model.py`` is three lines: it subclasses :class:`RestoreModel` and
hands it ``triton_python_backend_utils`` (``pb``), which exists only inside the
backend's stub process. Everything else is here, so it is tested without a server.

- :class:`ImageRestorer` - one whole image (HxWxC uint8/uint16, C = 1-4) -> the restored
  image in the same sample type: the runtime's tile plan, blend and stitcher
  (:func:`~hermes_deploy.runtime.pipeline.run_tiled`), the context from the whole
  image or a copy downscaled as ``hermes-export infer`` does, alpha upscaled on its
  own, output rows quantized as the image writer quantizes them. The result equals
  ``hermes-export infer`` on the same image and backend.
- :class:`BlsRunner` - the runner interface over BLS requests to ``hermes_network`` and
  ``hermes_context`` (``restore=bls``): tiles of concurrent requests meet in Triton's
  dynamic batcher.
- :class:`RestoreModel` - ``initialize`` / ``execute`` / ``finalize``: each request gets
  its own response; a bad image is a Triton error with the message, and the model
  keeps serving.

Tensors cross the stub boundary by DLPack (``np.from_dlpack``, ``Tensor.from_dlpack``),
not ``as_numpy()`` / ``Tensor(name, array)``: measured with the stub of nvidia-pytriton
0.7.0 (Triton 2.51) under numpy 2.4, those two read numpy's array structs with the 1.x
layout - inputs arrived as zeros and outputs as 0 bytes - while DLPack carried the data
intact under numpy 1.x and 2.x alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import HermesError, InputError
from ..runtime.images import DEFAULT_MAX_PIXELS, Samples, to_float_rgb
from ..runtime.pipeline import fill, image_context, run_tiled
from ..runtime.plan import TileOptions, make_plan
from ..spec import ModelSpec

INPUTS = {"IMAGE": ("RESTORED", np.uint8), "IMAGE16": ("RESTORED16", np.uint16)}


class ImageRestorer:
    """Whole image in, restored image out (see module doc); ``runner`` is any runner."""

    def __init__(self, runner, options: TileOptions = TileOptions(),
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        self.runner, self.options, self.max_pixels = runner, options, max_pixels

    def check(self, image: np.ndarray, dtype) -> np.ndarray:
        if image.dtype != dtype:
            raise InputError(f"expected {np.dtype(dtype).name} samples, got {image.dtype}")
        if image.ndim == 2:
            image = image[:, :, None]
        if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4) or min(image.shape[:2]) < 1:
            raise InputError(f"expected an HxWxC image with C = 1 (grey), 2 (grey + alpha), 3 (RGB) "
                             f"or 4 (RGBA) and H, W >= 1; got shape {tuple(image.shape)}")
        h, w = image.shape[:2]
        if self.max_pixels and h * w > self.max_pixels:
            raise InputError(f"{w}x{h} is {h * w / 1e6:.0f} MP, over the server's pixel limit of "
                             f"{self.max_pixels / 1e6:.0f} MP (max_pixels in config.pbtxt)")
        return image

    def __call__(self, image: np.ndarray) -> np.ndarray:
        depth = 16 if image.dtype == np.uint16 else 8
        image = self.check(image, np.uint16 if depth == 16 else np.uint8)
        alpha = image.shape[2] in (2, 4)
        colour = np.ascontiguousarray(image[:, :, :-1] if alpha else image)
        channels = colour.shape[2]
        h, w = colour.shape[:2]
        spec = self.runner.spec
        s = spec.scale
        plan = make_plan(spec, h, w, self.options)
        ctx = image_context(self.runner, self._context_image(colour))
        out = np.empty((s * h, s * w, channels), np.uint16 if depth == 16 else np.uint8)
        run_tiled(self.runner, plan, lambda y0, y1: colour[y0:y1], ctx, fill(out),
                  batch=self.options.batch, samples=Samples(depth, channels))
        if alpha:
            out = np.concatenate([out, self._alpha(image[:, :, -1], s)], axis=2)
        return out

    def _context_image(self, colour: np.ndarray) -> np.ndarray:
        """The whole image, or the copy ``infer`` takes its context from (libvips cubic
        resize to ``context_max_side``; ImageSource.whole)."""
        limit = self.options.context_max_side
        if limit and max(colour.shape[:2]) > limit:
            import pyvips

            small = pyvips.Image.new_from_array(colour).resize(limit / max(colour.shape[:2]),
                                                               kernel="cubic")
            return to_float_rgb(small.numpy())
        return to_float_rgb(colour)

    @staticmethod
    def _alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
        import pyvips

        image = pyvips.Image.new_from_array(np.ascontiguousarray(alpha))
        up = image.resize(scale, kernel="cubic") if scale != 1 else image
        return up.numpy().reshape(alpha.shape[0] * scale, alpha.shape[1] * scale, 1).astype(alpha.dtype)


class BlsRunner:
    """The runner interface over BLS requests (``restore=bls``; see module doc)."""

    def __init__(self, pb, spec: ModelSpec, params: dict[str, str]) -> None:
        self.pb, self.spec = pb, spec
        self.network, self.context_model = params["network_model"], params["context_model"]
        self.context_in, self.context_out = params["context_input"], params["context_output"]
        self.batched = params.get("network_batched") == "1"
        self.name = f"Triton BLS ({self.network})"

    def __enter__(self) -> "BlsRunner":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def _call(self, model: str, feeds: dict[str, np.ndarray], output: str) -> np.ndarray:
        pb = self.pb
        tensors = [pb.Tensor.from_dlpack(k, np.ascontiguousarray(v).__dlpack__()) for k, v in feeds.items()]
        request = pb.InferenceRequest(model_name=model, inputs=tensors,
                                      requested_output_names=[output])
        response = request.exec()
        if response.has_error():
            raise HermesError(f"{model}: {response.error().message()}")
        return np.array(np.from_dlpack(pb.get_output_tensor_by_name(response, output)))

    def context(self, images: np.ndarray) -> np.ndarray:
        return self._call(self.context_model, {self.context_in: images.astype(np.float32)},
                          self.context_out)

    def infer(self, tiles: np.ndarray, context: np.ndarray) -> np.ndarray:
        from ..runtime.runner import checked_inputs, model_feeds

        tiles, context = checked_inputs(self.spec, tiles, context)
        return self._call(self.network, model_feeds(self.spec, tiles, context), self.spec.output_name)


def _tile(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    return int(h), int(w or h)


def restorer_from_parameters(params: dict[str, str], folder: Path, pb=None) -> ImageRestorer:
    """The :class:`ImageRestorer` a ``config.pbtxt``'s parameters describe; ``folder`` is
    the model's version folder (where ``restore=local`` finds its ONNX pair)."""
    options = TileOptions(tile=_tile(params.get("tile", "256x256")),
                          overlap=int(params["overlap"]) if params.get("overlap") else None,
                          batch=int(params.get("batch", "1")),
                          context_max_side=int(params.get("context_size", "1024")))
    max_pixels = int(params.get("max_pixels", "0")) or DEFAULT_MAX_PIXELS
    if params.get("mode", "local") == "bls":
        runner = BlsRunner(pb, ModelSpec.from_json(params["spec"]), params)
    else:
        from ..engines.select import open_runner

        runner, _ = open_runner(str(folder / params["model_file"]), params.get("backend", "onnxruntime"),
                                threads=int(params.get("threads", "0")))
    runner.__enter__()
    return ImageRestorer(runner, options, max_pixels)


class RestoreModel:
    """Triton Python-backend model; ``model.py`` subclasses it and sets ``pb``."""

    pb = None  # triton_python_backend_utils, set by model.py

    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        folder = Path(args["model_repository"]) / str(args["model_version"])
        self.restorer = restorer_from_parameters(params, folder, self.pb)

    def execute(self, requests: list) -> list:
        return [self._one(request) for request in requests]

    def _one(self, request):
        pb = self.pb
        try:
            given = [(name, t) for name in INPUTS
                     if (t := pb.get_input_tensor_by_name(request, name)) is not None]
            if len(given) != 1:
                raise InputError("send exactly one of IMAGE (UINT8) or IMAGE16 (UINT16), "
                                 f"got {len(given)}")
            name, tensor = given[0]
            output, dtype = INPUTS[name]
            image = np.from_dlpack(tensor)
            restored = self.restorer(image if image.dtype == dtype else np.asarray(image, dtype))
            return pb.InferenceResponse(output_tensors=[pb.Tensor.from_dlpack(
                output, np.ascontiguousarray(restored).__dlpack__())])
        except HermesError as exc:
            return pb.InferenceResponse(error=pb.TritonError(str(exc)))
        except MemoryError:
            return pb.InferenceResponse(error=pb.TritonError(
                "out of memory; send a smaller image or lower the tile/batch in config.pbtxt"))
        except Exception as exc:  # one bad request must not take the model down
            return pb.InferenceResponse(error=pb.TritonError(f"{type(exc).__name__}: {exc}"))

    def finalize(self) -> None:
        runner = getattr(getattr(self, "restorer", None), "runner", None)
        if runner is not None:
            runner.__exit__(None, None, None)
