"""The work folder of one video output: finished segments and the state to resume from.

A video is restored segment by segment into a hidden folder beside its output,
``.<output name>.hermes-video/``:

* ``seg-<first frame>.mkv``: restored frames, losslessly (FFV1, intra-only, so every
  segment starts on a keyframe), in the output's own pixel format: the final encode reads
  back exactly the samples the model wrote. A segment is written under a temporary name
  and renamed when complete (:mod:`hermes_deploy.atomic`), so a run killed at any point
  leaves only complete segments (and temporaries that the next run sweeps).
* ``state.json``: the key of what is being made (input file, model, options), each shot's
  first frame and context, and each finished segment's frames with their source
  timestamps. It is rewritten atomically after each segment.

A run whose key matches continues after the last finished segment; any other key
discards the folder. The folder is removed when the output is published.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..atomic import sweep, write_text

STATE_FORMAT = "hermes-video-state/1"


@dataclass
class Segment:
    first: int  # index of its first frame in the video
    pts: list[int]  # source timestamps of its frames (video stream time base)
    durations: list[int]
    file: str

    @property
    def end(self) -> int:
        return self.first + len(self.pts)


@dataclass
class State:
    key: str
    shots: dict[int, list[float]] = field(default_factory=dict)  # first frame -> context
    segments: list[Segment] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.segments[-1].end if self.segments else 0

    def to_json(self) -> str:
        return json.dumps({"format": STATE_FORMAT, "key": self.key,
                           "shots": [[k, v] for k, v in sorted(self.shots.items())],
                           "segments": [asdict(s) for s in self.segments]})


def work_folder(output: Path) -> Path:
    return output.parent / f".{output.name}.hermes-video"


def run_key(source: Path, parts: dict) -> str:
    """A key of the input file (by size, modification time and name) and of everything
    that decides the output frames."""
    st = source.stat()
    blob = json.dumps({"source": [source.name, st.st_size, st.st_mtime_ns], **parts},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class WorkFolder:
    """The segments and state of one output (see module doc)."""

    def __init__(self, output: Path, key: str) -> None:
        self.path = work_folder(output)
        self.state = State(key)
        self.resumed = False

    def open(self, say) -> "WorkFolder":
        """Continue an earlier run of the same key, or start afresh."""
        if self.path.is_dir():
            stale = sweep(self.path)  # temporaries of a killed run: its unfinished segment
            old = self._read()
            if old is not None and old.key == self.state.key and self._complete(old):
                self.state, self.resumed = old, bool(old.segments)
                if self.resumed:
                    say(f"resuming {self.path.name[1:-len('.hermes-video')]} after "
                        f"{old.done} finished frame(s) in {len(old.segments)} segment(s)")
                return self
            if old is not None or stale:
                say(f"discarding the unfinished work of an earlier run with other inputs or "
                    f"settings ({self.path.name})")
            shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def _read(self) -> State | None:
        try:
            data = json.loads((self.path / "state.json").read_text())
            if data.get("format") != STATE_FORMAT:
                return None
            return State(key=data["key"], shots={int(k): list(v) for k, v in data["shots"]},
                         segments=[Segment(**s) for s in data["segments"]])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _complete(self, state: State) -> bool:
        return all((self.path / s.file).is_file() for s in state.segments)

    def segment_path(self, first: int) -> Path:
        return self.path / f"seg-{first:08d}.mkv"

    def add(self, segment: Segment, shots: dict[int, list[float]]) -> None:
        """Record a finished (published) segment and the contexts of its shots."""
        self.state.segments.append(segment)
        for k, v in shots.items():
            self.state.shots.setdefault(k, v)
        write_text(self.path / "state.json", self.state.to_json(), what="the video work state")

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

