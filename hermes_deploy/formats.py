"""The image file formats hermes-deploy reads, by suffix (one list per reader).

* :data:`IMAGE_SUFFIXES` - whole-image loading with Pillow
  (:func:`hermes_deploy.quality.photos.load_images`: evaluation, calibration, verify).
* :data:`STREAMING_SUFFIXES` - the tiled runtime's streaming reader (libvips). BMP is
  absent: the libvips of the ``pyvips-binary`` wheel has no BMP loader (it reads BMP only
  through ImageMagick, which that wheel does not carry).
"""

from __future__ import annotations

STREAMING_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
#: libvips loaders the runtime accepts, whatever a file's suffix says: anything else (GIF,
#: HEIF, SVG, PDF, ...) is refused by name rather than half-supported
STREAMING_LOADERS = ("pngload", "jpegload", "tiffload", "webpload")
STREAMING_NAMES = "PNG, JPEG, TIFF, WebP (single images: no animations or multi-page files)"
IMAGE_SUFFIXES = STREAMING_SUFFIXES + (".bmp",)

