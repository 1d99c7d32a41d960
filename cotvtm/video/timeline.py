"""Timelines an editor opens: the output's picture, the original audio and the music on their own
tracks, with the run's shot cuts, windows and beats as markers.

Ad and social teams finish a soundtracked video in an editor, so beside the output video, the
music WAV and the original audio WAV a job writes the same edit as ``.otio`` (OpenTimelineIO's
JSON), FCP 7 XML (``.xml``, which Premiere Pro and DaVinci Resolve import) and AAF (``.aaf``, Avid
Media Composer), through OpenTimelineIO's adapters.

Tracks: V1 the picture, A1 the original audio (when the input has some), then the music (A2, or
A1 without an original). Every clip covers the video's frames exactly: ``round(duration * rate)``
at the edit rate, a rate SMPTE timecode has, the lowest a whole multiple of the video's or else
the nearest (``edit_rate``: 29.97 is 30000/1001, as editors expect; 10 fps is 30).

Media paths are relative URLs (percent-encoded, resolved against the timeline's folder:
``media_path``), since the outputs move together between machines and buckets:

- ``.otio``: the clips' ``target_url`` as written;
- FCP 7 XML: ``<pathurl>`` holds the relative URL and ``<name>`` the file name (the FCP 7 format
  shows absolute ``file://localhost/`` URLs; an editor that does not find the file offers to
  relink it, by that name, in the timeline's folder);
- AAF: a ``NetworkLocator`` with the relative URL; no essence is embedded.

Markers sit on the timeline's stack, which the FCP XML adapter writes as the sequence's markers
and reads back there: shot cuts (red, "cut"), windows (blue, "window N", spanning the window;
N is the window's index in the run's records, from 0) and beats (green, "beat"), each at the frame
nearest its time. FCP 7 XML has no marker colour (they read back red) and no place for the
run's settings (``metadata["cotvtm"]``); AAF carries the settings as a comment of the composition
and the markers as Avid locators (``_add_locators``), since the AAF adapter writes no markers.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import opentimelineio as otio
import soundfile as sf
from opentimelineio.opentime import RationalTime, TimeRange

from cotvtm.errors import MediaError
from cotvtm.storage.local import atomic_write_bytes

EXTENSIONS = {"otio": ".otio", "fcp-xml": ".xml", "aaf": ".aaf"}
ADAPTERS = {"otio": "otio_json", "fcp-xml": "fcp_xml", "aaf": "AAF"}
NTSC_BASES = (24, 30, 48, 60)  # timebases whose NTSC rates (x 1000/1001) editors use
TIMECODE_RATES = tuple(sorted([base * 1000 / 1001 for base in NTSC_BASES] + [24, 25, 30, 48, 50, 60]))
NAMESPACE = "cotvtm"
CUT, WINDOW, BEAT = otio.schema.MarkerColor.RED, otio.schema.MarkerColor.BLUE, otio.schema.MarkerColor.GREEN
_RGB = {CUT: {"red": 65535, "green": 0, "blue": 0}, WINDOW: {"red": 0, "green": 0, "blue": 65535},
        BEAT: {"red": 0, "green": 65535, "blue": 0}}  # AAF's CommentMarkerColor, 16 bits a channel


@dataclass
class TimelineSpec:
    """One soundtracked video as an edit. Paths are relative to the folder the timelines go to;
    times are seconds; ``metadata`` is the run's settings (JSON-like values)."""

    name: str
    fps: float
    duration: float
    picture: str
    music: str
    original: str | None = None
    cuts: list[float] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)
    beats: list[float] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)


def edit_rate(fps: float) -> float:
    """The timeline's rate: a rate SMPTE timecode has (``TIMECODE_RATES``; FCP XML and AAF write
    timecode), the lowest that is a whole multiple of ``fps`` (10 fps: 30, each picture three
    frames), else the nearest (a phone's 29.87 average is 29.97)."""
    for rate in TIMECODE_RATES:
        if fps > 0 and round(rate / fps) >= 1 and abs(rate / fps - round(rate / fps)) < 1e-4:
            return rate
    return min(TIMECODE_RATES, key=lambda rate: abs(rate - fps))


def build(spec: TimelineSpec) -> otio.schema.Timeline:
    """The edit: picture, original and music clips over the video's frames, and the markers."""
    if not spec.fps > 0 or not spec.duration > 0:
        raise MediaError(spec.picture, f"no timeline for a video of {spec.duration} s at {spec.fps} fps")
    rate = edit_rate(spec.fps)
    frames = max(1, round(spec.duration * rate))  # a clip of no frames is one AAF cannot hold
    timeline = otio.schema.Timeline(name=spec.name, global_start_time=RationalTime(0, rate))
    timeline.metadata[NAMESPACE] = spec.metadata
    audio = [spec.original, spec.music] if spec.original else [spec.music]
    timeline.tracks.append(_track("V1", otio.schema.TrackKind.Video, spec.picture, frames, rate))
    for number, path in enumerate(audio, 1):
        timeline.tracks.append(_track(f"A{number}", otio.schema.TrackKind.Audio, path, frames, rate))
    timeline.tracks.markers.extend(_markers(spec, frames, rate))
    return timeline


def write(timeline: otio.schema.Timeline, path: str | os.PathLike, kind: str,
          media: str | os.PathLike | None = None) -> None:
    """Write ``timeline`` as ``kind`` (a key of ``EXTENSIONS``) to ``path``, whole or not at all
    (written aside, then renamed into place). ``media``: the folder holding the WAVs it names
    (default: ``path``'s), read for the AAF's audio descriptors, which say what they hold."""
    if kind not in ADAPTERS:
        raise ValueError(f"timeline kind {kind!r} is not one of {', '.join(ADAPTERS)}")
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="cotvtm-timeline-") as folder:
        draft = str(Path(folder) / path.name)
        if kind == "aaf":
            _write_aaf(timeline, draft, Path(media) if media is not None else path.parent)
        else:
            otio.adapters.write_to_file(timeline, draft, adapter_name=ADAPTERS[kind])
        atomic_write_bytes(path, Path(draft).read_bytes())


def media_path(timeline_path: str | os.PathLike, target_url: str) -> Path:
    """The file a clip's relative URL names, beside the timeline at ``timeline_path``. (The AAF
    adapter reads a relative locator back as ``file://`` before it.)"""
    if target_url.startswith("file://") and not target_url.startswith(("file:///", "file://localhost/")):
        target_url = target_url.removeprefix("file://")
    return Path(timeline_path).parent / otio.url_utils.filepath_from_url(target_url)


def _url(path: str) -> str:
    """A relative path as a relative URL: POSIX separators, percent-encoded (spaces, '#', ...)."""
    return urllib.parse.quote(Path(path).as_posix())


def _track(name: str, kind: str, path: str, frames: int, rate: float) -> otio.schema.Track:
    span = TimeRange(RationalTime(0, rate), RationalTime(frames, rate))
    file_name = Path(path).name  # FCP XML's <name>, by which editors relink
    reference = otio.schema.ExternalReference(target_url=_url(path), available_range=span)
    reference.name = file_name
    clip = otio.schema.Clip(name=file_name, media_reference=reference, source_range=span)
    return otio.schema.Track(name=name, kind=kind, children=[clip])


def _markers(spec: TimelineSpec, frames: int, rate: float) -> list[otio.schema.Marker]:
    def at(start: float, end: float | None = None) -> TimeRange:
        first = _frame(start, frames, rate)
        last = first if end is None else max(first, _frame(end, frames, rate))
        return TimeRange(RationalTime(first, rate), RationalTime(last - first, rate))

    return ([otio.schema.Marker("cut", at(t), CUT) for t in spec.cuts]
            + [otio.schema.Marker(f"window {i}", at(start, end), WINDOW) for i, (start, end) in enumerate(spec.windows)]
            + [otio.schema.Marker("beat", at(t), BEAT) for t in spec.beats])


def _frame(seconds: float, frames: int, rate: float) -> int:
    return min(max(round(seconds * rate), 0), frames)


def _write_aaf(timeline: otio.schema.Timeline, path: str, folder: Path) -> None:
    """AAF through its adapter (fresh MobIDs: the media has none yet), then the markers as locators."""
    timeline = timeline.deepcopy()
    settings = timeline.metadata.get(NAMESPACE)
    if settings:
        timeline.metadata["AAF"] = {"UserComments": {NAMESPACE: json.dumps(settings, sort_keys=True, default=_plain)}}
    for clip in timeline.find_clips():
        description = _essence(folder, clip.media_reference.target_url)
        if description:
            clip.media_reference.metadata["AAF"] = {"EssenceDescription": description}
    otio.adapters.write_to_file(timeline, path, adapter_name="AAF", use_empty_mob_ids=True)
    _add_locators(path, timeline)


def _plain(value):
    """OTIO's metadata containers as JSON: AnyDictionary as an object, AnyVector as an array."""
    return dict(value) if hasattr(value, "keys") else list(value)


def _essence(folder: Path, target_url: str) -> dict | None:
    """A WAV's PCM descriptor values (the adapter's defaults are 16-bit mono); None for other media."""
    try:
        info = sf.info(str(folder / otio.url_utils.filepath_from_url(target_url)))
    except (OSError, RuntimeError):  # not there yet, or not audio (the picture)
        return None
    bits = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32}.get(info.subtype, 16)
    align = info.channels * bits // 8
    return {"Channels": info.channels, "QuantizationBits": bits, "BlockAlign": align,
            "AverageBPS": info.samplerate * align, "AudioSamplingRate": info.samplerate,
            "SampleRate": info.samplerate}


def _add_locators(path: str, timeline: otio.schema.Timeline) -> None:
    """The stack's markers as Avid locators: ``DescriptiveMarker``s in an event slot of the
    composition, described against the picture's slot, in the colour of each marker."""
    import aaf2  # with the AAF adapter; only AAF needs it

    markers = list(timeline.tracks.markers)
    if not markers:
        return
    with aaf2.open(path, "rw") as f:
        composition = next(f.content.toplevel())
        picture = next(s for s in composition.slots if s.media_kind == "Picture")
        rate = picture.edit_rate
        events = f.create.Sequence(media_kind="DescriptiveMetadata")
        for marker in markers:
            locator = f.create.DescriptiveMarker()
            locator["Position"].value = int(marker.marked_range.start_time.value)
            locator["Length"].value = max(1, int(marker.marked_range.duration.value))
            locator["Comment"].value = marker.name
            locator["CommentMarkerColor"].value = _RGB.get(marker.color, _RGB[CUT])
            locator["DescribedSlots"].value = {picture.slot_id}
            events.components.append(locator)
        slot = f.create.EventMobSlot()
        slot["EditRate"].value = rate
        slot["SlotID"].value = max(s.slot_id for s in composition.slots) + 1
        slot["PhysicalTrackNumber"].value = 1
        slot.segment = events
        composition.slots.append(slot)

