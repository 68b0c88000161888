"""Scale-out on engines users already run: Ray Data for batch, Triton for serving.

- :mod:`.ray_batch`: :func:`~.ray_batch.run_ray_batch`, the folder batch of
  ``hermes-export infer`` spread over a Ray Data actor pool (one loaded model per
  actor), with the local batch's rules for every file (it calls
  :func:`hermes_deploy.runtime.batch.run_batch` inside the actors).
- :mod:`.triton_repo`: :func:`~.triton_repo.write_repository`, a Triton Inference Server
  model repository (network, context graph, and the whole-image ``hermes_restore``
  Python-backend model) with its ``config.pbtxt`` files.
- :mod:`.triton_backend`: the code of ``hermes_restore`` that runs inside Triton's
  Python backend (whole images in, tiled by the runtime, restored images out).
- :mod:`.triton_server`: ``hermes-export serve-triton``, the ``tritonserver`` of the
  ``nvidia-pytriton`` wheel serving such a repository on this machine (CPU, Python
  backend only), in the foreground.

Ray and Triton are optional (the ``ray`` extra; the ``triton-server`` extra and
``nvidia-pytriton``); nothing here imports them at module level.
"""
