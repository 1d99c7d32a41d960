"""The audio an output delivers: sample rate, channel layout, codec and bitrate, and the ffmpeg
filters that bring the music (and the original, when it is kept) to it.

Broadcast and most ad delivery specifications ask for 48 kHz stereo, so that is what an output
carries by default, whatever the decoder makes (MusicGen: 32 kHz mono; Stable Audio: 44.1 kHz
stereo). A mono decoder's music is centred (the same signal in both channels); a stereo
decoder's two channels stay apart. With ``--audio duck`` or ``--audio voice`` the original is
kept as it was: its sample rate and its layout (5.1 stays 5.1, the music going to the front left
and right, leaving the centre to dialogue). It is mixed down to stereo only where the output's
codec cannot carry its layout, and resampled only where the codec cannot carry its rate; the
sidecar says which and why (``AudioFormat.changes``). A mono original is widened to the delivery
layout (centred), since the music is at least as wide.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from cotvtm.video.types import VideoInfo

DELIVERY_RATE = 48_000  # broadcast and ad delivery specifications
DELIVERY_CHANNELS = 2
CHANNEL_CHOICES = (1, 2)  # what --audio-channels may ask of the music alone: mono or stereo
KBPS_PER_CHANNEL = 128  # AAC-LC is transparent to most listeners from about 128 kb/s per channel
MAX_KBPS = 512  # 5.1 and wider: 512 kb/s, the rate video platforms recommend for 5.1 AAC
CODEC_RATES = {
    "aac": (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000),
    "libopus": (48000, 24000, 16000, 12000, 8000),
}
CODEC_LAYOUTS = {  # what each encoder writes with its layout intact (checked with ffmpeg 5.1)
    "aac": ("mono", "stereo", "2.1", "3.0", "4.0", "quad", "5.0", "5.1", "7.1"),
    "libopus": ("mono", "stereo", "3.0", "quad", "5.0", "5.1", "6.1", "7.1"),
}
ON_CLOCK = "aresample=async=1:first_pts=0"  # samples placed by their timestamps from time 0
MIN_KEPT_RATE = 44_100  # a lower original rate (a phone's 16 kHz voice memo) would cut the music's highs
OPUS_MAX_KBPS_PER_CHANNEL = 256  # libopus refuses more
RELABEL = {"5.1(side)": "5.1", "5.0(side)": "5.0"}  # the same speakers named two ways (AC-3 decodes as "side")
COUNT_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}  # a stream that names no layout


@dataclass(frozen=True)
class Delivery:
    """What was asked of every output's audio (``--audio-rate``, ``--audio-channels``,
    ``--audio-bitrate``); None: the delivery default, or with a kept original its own."""

    rate: int | None = None
    channels: int | None = None
    bitrate: str | None = None


@dataclass(frozen=True)
class Original:
    """The input's first audio stream, as ffprobe describes it."""

    rate: int
    channels: int
    layout: str  # ffmpeg's name; "" when the stream names none

    @classmethod
    def of(cls, info: VideoInfo) -> "Original | None":
        """``info``'s first audio stream; None when it has none."""
        if not info.has_audio:
            return None
        return cls(info.audio_rate or DELIVERY_RATE, info.audio_channels or DELIVERY_CHANNELS, info.audio_layout)


@dataclass(frozen=True)
class AudioFormat:
    """The audio of one output, as the sidecar states it."""

    sample_rate: int
    channels: int
    layout: str
    codec: str
    bitrate: str
    original: dict | None = None  # the original's rate, channels and layout, when it is kept
    changes: list[str] = field(default_factory=list)  # what could not be kept of the original, and why

    def describe(self) -> dict:
        return asdict(self)


def audio_format(delivery: Delivery, codec: str, original: Original | None) -> AudioFormat:
    """The format of an output encoded with ``codec``; ``original``: the input's audio, when the
    output keeps it (``--audio duck`` / ``voice``)."""
    if original is None:
        layout = COUNT_LAYOUTS[delivery.channels or DELIVERY_CHANNELS]
        rate, changes = _rate(delivery.rate or DELIVERY_RATE, codec, "the requested")
        bitrate, more = _bitrate(delivery, layout, codec)
        return AudioFormat(rate, _count(layout), layout, codec, bitrate, None, changes + more)
    layout, changes = _kept_layout(original, delivery.channels, codec)
    rate, rate_changes = _rate(delivery.rate or original.rate, codec, "the original's")
    if delivery.rate is None and rate < MIN_KEPT_RATE:
        rate, rate_changes = DELIVERY_RATE, [f"the original's {original.rate} Hz raised to {DELIVERY_RATE} Hz, so "
                                             "that the music keeps its high frequencies"]
    kept = {"sample_rate": original.rate, "channels": original.channels, "layout": original.layout}
    bitrate, more = _bitrate(delivery, layout, codec)
    return AudioFormat(rate, _count(layout), layout, codec, bitrate, kept, changes + rate_changes + more)


def _kept_layout(original: Original, asked: int | None, codec: str) -> tuple[str, list[str]]:
    """The output layout that keeps ``original``'s, with what had to change."""
    if asked is not None:
        name = COUNT_LAYOUTS[asked]
        return name, [] if name == original.layout else [f"the original's {_named(original)} mixed to {name} "
                                                         "(--audio-channels)"]
    layout = RELABEL.get(original.layout, original.layout) or COUNT_LAYOUTS.get(original.channels, "")
    if layout == "mono":
        return COUNT_LAYOUTS[DELIVERY_CHANNELS], []  # widened, centred: nothing is lost
    if layout in CODEC_LAYOUTS[codec]:
        return layout, []
    return "stereo", [f"the original's {_named(original)} cannot be carried by {codec}: mixed down to stereo"]


def _rate(rate: int, codec: str, whose: str) -> tuple[int, list[str]]:
    if rate in CODEC_RATES[codec]:
        return rate, []
    return DELIVERY_RATE, [f"{whose} {rate} Hz cannot be carried by {codec}: resampled to {DELIVERY_RATE} Hz"]


def _bitrate(delivery: Delivery, layout: str, codec: str) -> tuple[str, list[str]]:
    """The encoder's bitrate: asked, or by channels; within what the codec takes."""
    kbps = int(delivery.bitrate[:-1]) if delivery.bitrate else min(KBPS_PER_CHANNEL * _count(layout), MAX_KBPS)
    most = OPUS_MAX_KBPS_PER_CHANNEL * _count(layout) if codec == "libopus" else kbps
    if kbps > most:
        return f"{most}k", [f"{kbps}k is more than {codec} takes for {layout}: {most}k"]
    return f"{kbps}k", []


def _named(original: Original) -> str:
    return f"{original.layout or 'unnamed'} layout ({original.channels} channels)"


def _count(layout: str) -> int:
    return {"mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "4.0": 4, "quad": 4, "5.0": 5, "5.1": 6, "6.1": 7,
            "7.1": 8}[layout]


def music_filter(fmt: AudioFormat, music_channels: int) -> str:
    """Filters (no labels) that bring the music to ``fmt``: resampled, then placed in the front
    left and right (a mono decoder's music centred in both), mono folding a stereo decoder's
    channels into one."""
    if fmt.layout == "mono":
        pan = "pan=mono|c0=0.5*c0+0.5*c1" if music_channels == 2 else "pan=mono|c0=c0"
    else:
        right = "c1" if music_channels == 2 else "c0"
        pan = f"pan={fmt.layout}|FL=c0|FR={right}"
    return f"aresample={fmt.sample_rate},{pan},{exact_format(fmt)}"


def original_filter(fmt: AudioFormat, original: Original) -> str:
    """Filters (no labels) that bring the original to ``fmt``: as it is where it is kept; a mono
    original centred; otherwise mixed down by ffmpeg's standard matrices."""
    # on the video's clock: an audio track starting late (or early) is padded (or cut) to time 0,
    # which amix, taking samples as they come, would not do
    steps = [ON_CLOCK] + ([] if original.rate == fmt.sample_rate else [f"aresample={fmt.sample_rate}"])
    if original.channels == 1 and fmt.channels > 1:
        steps.append(f"pan={fmt.layout}|FL=c0|FR=c0")
    elif RELABEL.get(original.layout) == fmt.layout:
        steps.append(f"channelmap=channel_layout={fmt.layout}")  # the same channels, renamed
    return ",".join(steps + [exact_format(fmt)])


def exact_format(fmt: AudioFormat) -> str:
    """The format ``amix`` and the encoder get, named outright so that no input's layout wins."""
    return f"aformat=sample_fmts=fltp:sample_rates={fmt.sample_rate}:channel_layouts={fmt.layout}"
