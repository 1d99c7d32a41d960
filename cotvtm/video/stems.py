"""The audio an editor lays on its own tracks (``--timeline``): the music and the original, each
a 48 kHz 24-bit WAV beside the output video.

The music stem is the music as it sits in the output: ducked and at the bed's level under a
voice (``--audio voice``), before ``--loudness``, which belongs to the finished mix an editor
makes. It carries the run's AI-generated tags (RIFF INFO) and, with ``--sign-cert``, a C2PA
manifest. The original stem is the input's first audio track decoded on the video's clock, in its
own layout: not generated, so not marked.
"""

from __future__ import annotations

import os

from cotvtm.provenance import Marking
from cotvtm.video.delivery import ON_CLOCK, AudioFormat
from cotvtm.video.ffmpeg import FFMPEG, ffmpeg_url
from cotvtm.video.mux import Mix, _audio_command, _run_ffmpeg, output_options

STEM_RATE = 48_000
STEM_CODEC = "pcm_s24le"  # 24-bit: what editors and delivery specs take for mixing stems


def music_stem(wav: str | os.PathLike, mix: Mix, out: str | os.PathLike, marking: Marking | None = None) -> None:
    """The music of ``mix`` (its WAV, its bed gain) as a 48 kHz stereo 24-bit WAV at ``out``."""
    stereo = AudioFormat(STEM_RATE, 2, "stereo", STEM_CODEC, "")
    graph = Mix(stereo, mix.music_channels, music_gain_db=mix.music_gain_db).graph()
    _run_ffmpeg(wav, [*_audio_command(wav, wav, graph, "-v", "error", "-y"), "-c:a", STEM_CODEC, "-rf64", "auto",
                      *output_options(".wav", marking, faststart=False), ffmpeg_url(out)])


def original_stem(video: str | os.PathLike, duration: float, out: str | os.PathLike) -> None:
    """``video``'s first audio track on the video's clock (a late start stays late, a short track
    is padded), exactly ``duration`` long, as a 48 kHz 24-bit WAV in its own layout at ``out``."""
    _run_ffmpeg(video, [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", ffmpeg_url(video),
                        "-map", "0:a:0", "-af", f"{ON_CLOCK},apad", "-t", f"{duration:.6f}", "-ar", str(STEM_RATE),
                        "-c:a", STEM_CODEC, "-rf64", "auto", ffmpeg_url(out)])
