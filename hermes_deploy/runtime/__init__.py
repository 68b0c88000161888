"""The tiled inference runtime (torch-free).

- :mod:`.runner`: the runner interface every backend implements (``engines/`` holds them).
- :mod:`.plan`: tile options, tile plans (same-shape, edge-clamped tiles), blend weights.
- :mod:`.stitch`: blends tile outputs into finished rows with a bounded accumulator.
- :mod:`.pipeline`: runs one image through a runner in three threads (read, infer, write).
- :mod:`.images`: streaming image I/O with libvips and tifffile.
- :mod:`.batch`: files, folders and globs in; resumable, atomic outputs; a summary.

It learns scale, channels, size multiple and overlap from the runner's ``ModelSpec``
and never imports the model code, torch or a backend: runners come in by interface.
"""
