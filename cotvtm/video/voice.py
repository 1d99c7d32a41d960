"""``--audio voice``: the original audio kept as it was, the music a bed under it.

An editor keeps a voice-over where it is and lays the music under it: at a bed level set from the
voice's own loudness (``--bed-level``, in LU relative to the speech), lowered further while
someone speaks (``--duck-depth``) and brought back up in the gaps. Here the speech is found by
Silero VAD on the original's audio (``speech.py``) before the music is written, so the music's
fall ends as a sentence starts (``music/ducking.py``); the bed's gain is then the one that puts
the music, where it is at full level, ``bed_level`` LU from the speech's loudness, both measured
as BS.1770 loudness over their spans (``levels.py``) in the output's format.

A video with no audio stream, or no speech, gets the music at its own level (nothing to sit
under), and its sidecar says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from cotvtm.music.ducking import Ducking, full_level_spans
from cotvtm.video import levels
from cotvtm.video.delivery import music_filter, original_filter

Spans = list[tuple[float, float]]
# more than +12 dB would lift near-silent music into clipping (there is no limiter without --loudness)
GAIN_RANGE_DB = (-40.0, 12.0)


@dataclass(frozen=True)
class Bed:
    """Where the speech is and how the music sits under it: what the sidecar's ``speech`` says."""

    spans: Spans = field(default_factory=list)
    note: str | None = None  # why the music is not ducked, when it is not
    speech_lufs: float | None = None
    music_lufs: float | None = None
    gain_db: float = 0.0  # the bed's gain: the music's, outside speech

    def describe(self, bed_level: float, ducking: Ducking) -> dict:
        from cotvtm.video.speech import DETECTOR

        def number(value):
            return round(value, 2) if value is not None and math.isfinite(value) else None

        return {"detector": DETECTOR, "spans": [[round(a, 3), round(b, 3)] for a, b in self.spans],
                "speech_lufs": number(self.speech_lufs), "music_lufs": number(self.music_lufs),
                "bed_level_lu": bed_level, "bed_gain_db": round(self.gain_db, 2),
                "ducked_gain_db": round(self.gain_db - ducking.depth_db, 2) if self.spans else None,
                "depth_db": ducking.depth_db, "attack_s": ducking.attack_s, "release_s": ducking.release_s,
                "hold_s": ducking.hold_s, "note": self.note}


def find_speech(path, has_audio: bool, duration: float) -> Bed:
    """The speech in ``path``'s first audio stream (a MediaError when it cannot be read)."""
    if not has_audio:
        return Bed(note="the video has no audio stream: the music plays at its own level")
    from cotvtm.video.speech import detect_speech  # torch and the model: only where voice is asked

    spans = detect_speech(path, duration)
    return Bed(spans) if spans else Bed(note="no speech found: the music plays at its own level, not ducked")


def set_bed_gain(bed: Bed, video_path, wav, mix, bed_level: float, ducking: Ducking, until: float) -> Bed:
    """``bed`` with the music's gain set: the speech's loudness (the original, in the output's
    format) plus ``bed_level``, less the music's where it is at full level before ``until`` (where
    the ending's fade starts). The WAV holds the music already ducked, so where no gap is long
    enough to measure, the music under the speech, plus the depth, stands for it. The gain is
    kept within ``GAIN_RANGE_DB``: music too quiet to measure is not raised into clipping."""
    if not bed.spans:
        return bed
    speech = levels.integrated(levels.block_loudness(
        [video_path], levels.first_audio(0, original_filter(mix.fmt, mix.original))), bed.spans)
    music = levels.block_loudness([wav], levels.first_audio(0, music_filter(mix.fmt, mix.music_channels)))
    lufs = levels.integrated(music, full_level_spans(bed.spans, until, ducking))
    if not math.isfinite(lufs):
        lufs = levels.integrated(music, ducking.merged(bed.spans)) + ducking.depth_db
    if not (math.isfinite(speech) and math.isfinite(lufs)):
        return replace(bed, speech_lufs=speech, music_lufs=lufs,
                       note="the speech or the music is too quiet to measure: the music is ducked from its own level")
    gain = speech + bed_level - lufs
    low, high = GAIN_RANGE_DB
    kept = min(max(gain, low), high)
    note = None if kept == gain else f"the bed needed {gain:+.1f} dB: kept to {kept:+.1f} dB"
    return replace(bed, speech_lufs=speech, music_lufs=lufs, gain_db=kept, note=note)
