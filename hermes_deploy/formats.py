"""The image file formats hermes-deploy reads, by suffix (one list per reader).

* :data:`IMAGE_SUFFIXES` - whole-image loading with Pillow
  (:func:`hermes_deploy.quality.photos.load_images`: evaluation, calibration, verify).
* :data:`STREAMING_SUFFIXES` - the tiled runtime's streaming reader (libvips). BMP is
  absent: the libvips of the ``pyvips-binary`` wheel has no BMP loader (it reads BMP only
  through ImageMagick, which that wheel does not carry).
"""

from __future__ import annotations

STREAMING_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
IMAGE_SUFFIXES = STREAMING_SUFFIXES + (".bmp",)

