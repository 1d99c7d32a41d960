"""What an editor opens beside a video output (``--timeline``): the music and the original audio
as WAV stems, and timelines naming them and the output video by relative path.

For ``a/b.mp4`` the files are ``a/b.mp4.<digest>.music.wav``, ``.original.wav`` (when the input
has audio) and ``.otio`` / ``.xml`` / ``.aaf``, published as the video is (made aside, moved or
uploaded whole, the music stem signed with ``--sign-cert``), after it and before the sidecar, so
an output whose sidecar exists has them all. The timelines reference files by name, so they work
wherever the outputs are copied together (a folder, a bucket synced down).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cotvtm.video.stems import music_stem, original_stem

DEFAULT_FPS = 25.0  # a video whose rate ffprobe cannot tell


@dataclass(frozen=True)
class EditorFiles:
    """The output-store keys of one video's editor files."""

    music: str
    original: str | None
    timelines: dict[str, str]  # kind -> key

    @classmethod
    def of(cls, out_video: str, has_audio: bool, kinds: tuple[str, ...]) -> "EditorFiles":
        from cotvtm.video.timeline import EXTENSIONS

        base = out_video[: -len(PurePosixPath(out_video).suffix)]  # a/b.mp4.<digest>
        return cls(f"{base}.music.wav", f"{base}.original.wav" if has_audio else None,
                   {kind: base + EXTENSIONS[kind] for kind in kinds})

    def describe(self) -> dict:
        """What the sidecar says: each file's name (they lie beside the video)."""
        return {"music": _name(self.music), "original": _name(self.original) if self.original else None,
                "timelines": {kind: _name(key) for kind, key in self.timelines.items()}}


@dataclass(frozen=True)
class Sound:
    """What the output video's audio was made from: the pinned input (``source``: its ``path`` and
    ``verify``), the music's WAV and the ``Mix``."""

    source: object
    wav: Path
    mix: object


@dataclass(frozen=True)
class Edit:
    """What the timelines mark: shot cuts, windows and beats (seconds), and the run's settings."""

    cuts: list[float]
    windows: list[tuple[float, float]]
    beats: list[float]
    metadata: dict


def publish_editor_files(mux, record, progress, sound: Sound, edit: Edit) -> dict:
    """Make ``record``'s stems and timelines in scratch, then publish each through ``mux.publish``
    (the stems before the timelines that name them); what the sidecar says of them."""
    from cotvtm.video.timeline import TimelineSpec, build, write

    job, info, source = record.job, record.plan.info, sound.source
    files = EditorFiles.of(job.out_video, info.has_audio, mux.ctx.cfg.timeline)
    folder = mux.scratch.dir / "editor"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        music = folder / _name(files.music)
        music_stem(sound.wav, sound.mix, music, mux.marking)
        mux.publish(files.music, progress, lambda path: shutil.copyfile(music, path))
        original = None
        if files.original:
            original = folder / _name(files.original)
            original_stem(source.path, info.duration, original)
            mux.publish(files.original, progress, lambda path: shutil.copyfile(original, path), source.verify,
                        mark=False)
        spec = TimelineSpec(PurePosixPath(job.key).name, info.fps or DEFAULT_FPS, info.duration,
                            _name(job.out_video), music.name, original.name if original else None, edit.cuts,
                            edit.windows, edit.beats, edit.metadata)
        timeline = build(spec)
        for kind, key in files.timelines.items():
            mux.publish(key, progress, lambda path, kind=kind: write(timeline, path, kind, media=folder), mark=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return files.describe()


def _name(key: str) -> str:
    return PurePosixPath(key).name
