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
- :mod:`.triton_server`: starting a ``tritonserver`` from the ``nvidia-pytriton`` wheel
  on loopback (Python backend only), for tests and local trials.

Ray and Triton are optional (extras ``ray`` and ``triton``); nothing here imports them
at module level.
"""
