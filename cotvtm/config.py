"""The soundtrack job's settings, and the hash that names its outputs."""

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace

from cotvtm.errors import CotvtmError
from cotvtm.video.limits import MAX_DURATION_S

MODES = ("continuous", "independent")  # how windows of one video follow each other (music/compose.py)
DECODERS = ("engine", "generate")  # how MusicGen decodes (music/musicgen.py)
WINDOWS = ("fixed", "shots")  # how a video is cut into windows (video/windows.py)



@dataclass(frozen=True)
class ModelChoice:
    preset: str = "tiny"
    clip: str | None = None
    t5: str | None = None
    musicgen: str | None = None
    rationale: str | None = None
    prior: str | None = None


@dataclass(frozen=True)
class SoundtrackConfig:
    """Everything that changes what the job writes (so it all goes into the hash)."""

    models: ModelChoice = field(default_factory=ModelChoice)
    window_s: float = 10.0
    windows: str = "fixed"  # fixed windows of window_s | "shots": boundaries on shot cuts (video/windows.py)
    frames_per_window: int = 8
    frame_reader: str = "pyav"
    mode: str = "continuous"
    prompt_s: float = 2.0
    crossfade_s: float = 0.25
    guidance_scale: float = 3.0
    top_k: int = 250
    temperature: float = 1.0
    decoder: str = "engine"  # MusicGen decoding: the slot engine, or transformers' generate (the reference)
    streams_per_video: int = 4  # continuous mode: a long video's stretches are composed side by side
    stream_min_s: float = 300.0  # ... each stretch at least this long (shorter videos: one stream)
    prior_steps: int | None = None  # None: the prior checkpoint's own default
    prior_sampler: str | None = None
    prior_guidance: float | None = None
    image_seconds: float = 10.0  # length of the music made for an image input
    image_video: bool = False  # also write a still-image video for an image input
    audio: str = "replace"  # replace the video's audio, or "duck": keep it quietly under the music
    duck_gain: float = 0.25
    loudness: float | None = None  # integrated LUFS of the output's audio (e.g. -14 social, -23 EBU R128)
    true_peak: float = -1.0  # dBTP ceiling with loudness
    seed: int = 0

    def validate(self) -> "SoundtrackConfig":
        if self.audio not in ("replace", "duck"):
            raise CotvtmError(f"--audio must be replace or duck, not {self.audio!r}")
        if not 0 < self.duck_gain <= 1:
            raise CotvtmError("--duck-gain must be in (0, 1]")
        if self.decoder not in DECODERS:
            raise CotvtmError(f"--decoder must be one of {', '.join(DECODERS)}, not {self.decoder!r}")
        if self.mode not in MODES:
            raise CotvtmError(f"--mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if not 0 < self.prompt_s < self.window_s:
            raise CotvtmError("--prompt-seconds must be positive and shorter than the window")
        if not 0 <= self.crossfade_s <= self.prompt_s:
            raise CotvtmError("--crossfade-seconds must be between 0 and the prompt length")
        if self.image_seconds <= 0:
            raise CotvtmError("--image-seconds must be positive")
        if self.loudness is not None and not -70 <= self.loudness <= -5:
            raise CotvtmError("--loudness must be between -70 and -5 LUFS (e.g. -14, or -23 for broadcast)")
        if not -9 <= self.true_peak <= 0:
            raise CotvtmError("--true-peak must be between -9 and 0 dBTP")
        if self.windows not in WINDOWS:
            raise CotvtmError(f"--windows must be one of {', '.join(WINDOWS)}, not {self.windows!r}")
        if self.streams_per_video < 1:
            raise CotvtmError("--streams-per-video must be at least 1")
        if self.stream_min_s <= 0:
            raise CotvtmError("--stream-min-seconds must be positive")
        if self.frames_per_window < 1:
            raise CotvtmError("--frames-per-window must be at least 1")
        return self

    def digest(self, models_fingerprint: str) -> str:
        """Output names are a pure function of input key + this digest (idempotent reruns)."""
        settings = {k: v for k, v in asdict(self).items() if k != "models"}  # models: by content, not path
        payload = json.dumps({"config": settings, "models": models_fingerprint}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:10]


def default_device() -> str:
    """cuda when this machine has one, else cpu."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class Place:
    """The actors of one Ray Data stage: how many, and what each reserves."""

    actors: int = 1
    cpus: float = 1.0
    gpus: float = 0.0
    calls: int = 1  # batches in flight per actor (async stages)


@dataclass(frozen=True)
class Resources:
    """How the Ray stages are sized. Not hashed: it changes how rows share batches, not what is
    asked for (every random draw belongs to a window, whatever its batch)."""

    decode_actors: int = 1
    mux_actors: int = 1
    model_actors: int = 1
    model_cpus: float = 0.25
    mux_cpus: float = 0.25
    gpus_per_model_actor: float = 0.0
    video_batch: int = 4  # windows MusicGen decodes at once (its slots); segments per CLIP/prior batch
    music_feed: str = "continuous"  # a free slot takes the video's next window | "batched": in lockstep
    segment_windows: int = 6  # windows per saved segment: the unit of memory and of resuming
    wave: int = 256  # inputs per wave: pass 1 of the next wave overlaps pass 2 of this one
    device: str = "cpu"
    max_input_bytes: int = 64 << 30  # a larger remote input is refused, not downloaded
    max_duration_s: float = MAX_DURATION_S  # a video declaring more is refused before planning (video/limits.py)

    def __post_init__(self):
        if not self.max_duration_s > 0:
            raise CotvtmError(f"--max-duration must be a positive number of seconds, not {self.max_duration_s}")

    def place(self, role: str) -> Place:
        """The actors of a stage of ``role``: decode (one CPU each), model (a GPU share when
        present), music (a model actor running many one-video batches at once) or mux (ffmpeg)."""
        if role == "decode":
            return Place(self.decode_actors, 1.0)
        if role == "mux":
            return Place(self.mux_actors, self.mux_cpus)
        if role == "music":  # continuously fed: two videos in flight per decoder slot
            return Place(self.model_actors, self.model_cpus, self.gpus_per_model_actor, calls=2 * self.video_batch)
        return Place(self.model_actors, self.model_cpus, self.gpus_per_model_actor)

    @classmethod
    def detect(cls, **overrides) -> "Resources":
        """GPU model actors when CUDA is present (three share one GPU), light CPU ones otherwise.

        An explicit ``device`` wins: on a cluster the driver may run on a CPU-only head while
        the model actors belong on GPU workers.
        """
        device = overrides.get("device") or default_device()
        if device.startswith("cuda"):  # the CPUs left beside the GPU stages decode, so the GPU waits for none
            decoders = max(1, min(16, (os.cpu_count() or 2) - 4))
            base = cls(model_cpus=1.0, gpus_per_model_actor=0.3, device="cuda", video_batch=16,
                       decode_actors=decoders, mux_actors=2)
        else:
            base = cls()
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})
