"""Video in, video out: the tiled runtime over every frame of a video file (PyAV).

``restore_video`` restores one file (:mod:`.restore`); :class:`VideoInputs` is what
``hermes-export infer`` hands the batch driver so that videos among its inputs go
through here. Torch-free, like the runtime it builds on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .encode import EncodeOptions, output_suffix
from .probe import VIDEO_SUFFIXES, is_video
from .restore import CONTEXT_MODES, VideoOptions, restore_video


@dataclass(frozen=True)
class VideoInputs:
    """The batch driver's handler for video files (``runtime.batch.OtherMedia``)."""
    options: VideoOptions = VideoOptions()
    suffixes: tuple[str, ...] = VIDEO_SUFFIXES

    def output_for(self, source: Path, outdir: Path) -> Path:
        return outdir / (source.stem + output_suffix(source.suffix))

    def restore(self, runner, source, output, options, max_pixels, progress_factory, say):
        return restore_video(runner, source, output, options, self.options,
                             max_pixels=max_pixels, progress_factory=progress_factory, say=say)


__all__ = ["CONTEXT_MODES", "EncodeOptions", "VIDEO_SUFFIXES", "VideoInputs", "VideoOptions",
           "is_video", "restore_video"]
