"""Paired test sets: a manifest of (visual, reference music) entries -> evaluation items.

A manifest is JSONL (one object a line) or CSV with the columns ``id``, ``visual`` (also
accepted: ``video`` or ``image``), ``audio`` (the reference music; for a video it may be the
video file itself, whose audio track is then the reference) and optionally ``caption``.
Relative paths are resolved against the manifest's folder.

A video is cut into windows logically, exactly as the soundtrack job does it
(``plan_windows``, frames decoded at ``sample_times`` only); window i is paired with the same
span of the reference audio. An image is one item, paired with the first ``window_s`` seconds
of its reference.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cotvtm.errors import CotvtmError, MediaError
from cotvtm.jsonl import json_objects
from cotvtm.video import ffmpeg, media
from cotvtm.video.ffmpeg import ffmpeg_url, summarise_stderr

REFERENCE_RATE = 32000  # references are kept at this rate and resampled for each metric model
VISUAL_COLUMNS = ("visual", "video", "image")


@dataclass(frozen=True)
class Entry:
    """One manifest row."""

    id: str
    visual: str
    audio: str
    caption: str | None = None
    where: str = ""  # "manifest.jsonl:3", for messages


@dataclass
class Item:
    """What is evaluated: one image, or one window of a video, with its reference music."""

    id: str
    entry: str
    kind: str  # image | video
    visual: str
    start: float
    end: float
    frames: np.ndarray  # (F, H, W, 3) uint8
    reference: np.ndarray  # mono float32 at REFERENCE_RATE
    caption: str | None = None

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class TestSet:
    manifest: str
    entries: int
    items: list[Item]
    notes: list[str] = field(default_factory=list)


def _rows(path: Path) -> list[tuple[str, dict]]:
    if path.suffix.lower() == ".jsonl":
        return list(json_objects(path, lambda number: f"{path}:{number}"))
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            return [(f"{path}:{number}", row) for number, row in enumerate(csv.DictReader(handle), 2)]
    raise CotvtmError(f"{path}: unsupported test-set manifest (use .jsonl or .csv)")


def _path(value, base: Path) -> str:
    value = str(value).strip()
    return value if Path(value).is_absolute() else str((base / value).resolve())


def _entry(where: str, row: dict, base: Path) -> Entry:
    ident = str(row.get("id") or "").strip()
    visual = next((row[c] for c in VISUAL_COLUMNS if row.get(c)), None)
    if not ident:
        raise CotvtmError(f"{where}: missing 'id'")
    if not visual:
        raise CotvtmError(f"{where}: missing 'visual' (a video or image path)")
    if not row.get("audio"):
        raise CotvtmError(f"{where}: missing 'audio' (the reference music)")
    entry = Entry(ident, _path(visual, base), _path(row["audio"], base), (row.get("caption") or "").strip() or None,
                  where)
    for name in (entry.visual, entry.audio):
        if not Path(name).is_file():
            raise CotvtmError(f"{where}: file not found: {name}")
    return entry


def read_testset_manifest(path: str | Path) -> list[Entry]:
    """Entries of a JSONL or CSV manifest; one clear error naming the file and line otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CotvtmError(f"{path}: test-set manifest not found")
    entries = [_entry(where, row, path.parent) for where, row in _rows(path)]
    seen = set()
    for entry in entries:
        if entry.id in seen:
            raise CotvtmError(f"{entry.where}: duplicate id {entry.id!r}")
        seen.add(entry.id)
    if not entries:
        raise CotvtmError(f"{path}: no entries")
    return entries


def fit(audio: np.ndarray, samples: int) -> np.ndarray:
    """A clip cut or zero-padded to exactly ``samples``: how every method's music meets its item."""
    audio = audio[:samples]
    return np.pad(audio, (0, samples - len(audio))).astype(np.float32)


def decode_audio(path: str, rate: int = REFERENCE_RATE, seconds: float | None = None) -> np.ndarray:
    """The file's first audio stream as mono float32 at ``rate`` (ffmpeg resamples and downmixes);
    with ``seconds``, only its first ``seconds`` are read and decoded."""
    bound = ["-t", f"{seconds:.6f}"] if seconds is not None else []
    proc = ffmpeg.run([ffmpeg.FFMPEG, "-nostdin", "-v", "error", *bound, "-i", ffmpeg_url(path), "-map", "0:a:0",
                       "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"], path, "audio decoding", 600,
                      formats=ffmpeg.AUDIO_FORMATS + ffmpeg.VIDEO_FORMATS)
    if proc.returncode != 0:
        reason = summarise_stderr(proc.stderr, ffmpeg_url(path)) or "ffmpeg failed"
        if b"matches no streams" in proc.stderr:
            reason = "no audio stream to use as the reference music"
        raise MediaError(path, reason)
    audio = np.frombuffer(proc.stdout, np.float32).copy()
    if len(audio) == 0:
        raise MediaError(path, "the audio stream is empty")
    return audio


def _span(audio: np.ndarray, start: float, end: float) -> tuple[np.ndarray, bool]:
    """Reference samples for [start, end); zero-padded (and flagged) where the reference is shorter."""
    a, b = int(round(start * REFERENCE_RATE)), int(round(end * REFERENCE_RATE))
    piece = audio[a:b]
    short = len(piece) < b - a
    return (np.pad(piece, (0, b - a - len(piece))) if short else piece), short


def _upright(path: str, short_side: int) -> np.ndarray:
    """(1, H, W, 3): the image as the soundtrack job reads it (upright, short side scaled)."""
    from cotvtm.video.image import image_frames

    return image_frames(path, 1, short_side)


def _video_items(entry: Entry, audio: np.ndarray, cfg) -> tuple[list[Item], bool]:
    info, windows = media.plan_media_windows(entry.visual, entry.visual, cfg.window_s, cfg.window_s)
    items, padded = [], False
    for window in windows:
        [frames] = media.window_frames(entry.visual, entry.visual, info, [window], cfg.frames_per_window,
                                       cfg.short_side, cfg.frame_reader)
        reference, short = _span(audio, window.start, window.end)
        padded |= short
        ident = entry.id if len(windows) == 1 else f"{entry.id}#{window.index}"
        items.append(Item(ident, entry.id, "video", entry.visual, window.start, window.end, frames, reference,
                          entry.caption))
    return items, padded


def _image_item(entry: Entry, audio: np.ndarray, cfg) -> Item:
    seconds = min(len(audio) / REFERENCE_RATE, cfg.window_s)
    reference, _ = _span(audio, 0.0, seconds)
    return Item(entry.id, entry.id, "image", entry.visual, 0.0, seconds, _upright(entry.visual, cfg.short_side),
                reference, entry.caption)


def load_testset(manifest: str | Path, cfg) -> TestSet:
    """Read the manifest and load every item (frames and reference); ``cfg`` is an ``EvalConfig``."""
    entries = read_testset_manifest(manifest)
    items, padded = [], []
    for entry in entries:
        try:
            audio = decode_audio(entry.audio)
            if media.is_image(entry.visual):
                items.append(_image_item(entry, audio, cfg))
                continue
            video_items, short = _video_items(entry, audio, cfg)
        except MediaError as exc:
            raise CotvtmError(f"{entry.where}: {exc}") from None
        items.extend(video_items)
        if short:
            padded.append(entry.id)
    notes = [f"reference shorter than its video, padded with silence: {', '.join(padded)}"] if padded else []
    return TestSet(str(manifest), len(entries), items, notes)
