"""The soundtrack job's settings, and the hash that names its outputs."""

import hashlib
import re
import json
import os
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

from cotvtm.models import DECODER_DTYPES, PRESET_NAMES, TinyBuild
from cotvtm.music.ducking import Ducking
from cotvtm.music.ending import ENDINGS
from cotvtm.music.style import STYLE_RULE, style_fault
from cotvtm.provenance import SigningFiles
from cotvtm.teacher.settings import EndpointConfig
from cotvtm.options import Checked, at_least, positive, same, setting, split
from cotvtm.video.delivery import CHANNEL_CHOICES, CODEC_RATES
from cotvtm.prior.architecture import SAMPLERS
from cotvtm.video.frames import READERS
from cotvtm.video.limits import MAX_DURATION_S

from cotvtm.music.choices import DECODERS, MODES
COMMERCIAL_DECODER = "stable-audio-3"  # what --commercial chooses when --decoder is not given
ENGINE_WIDTHS = ("full", "busy")  # what a decode engine step runs over (music/step_runner.py)
CONDITIONINGS = ("prior", "teacher")  # what conditions the music (pipelines/condition.py)
TEACHER_TERMS = ("commercial", "non-commercial")  # what a teacher's terms allow, as the user declares (licences.py)
WINDOWS = ("fixed", "shots")  # how a video is cut into windows (video/windows.py)
FEEDS = ("continuous", "batched")  # how windows enter MusicGen (pipelines/music.py)
TIMELINES = ("otio", "fcp-xml", "aaf")  # what an editor opens (video/timeline.py)
SYNCS = ("none", "cuts")  # whether the music is bent to put a beat on each shot cut (music/sync.py)
AUDIO_MODES = ("replace", "duck", "voice")  # what the output's audio is made of (pipelines/finish.py)

_DUCKING = Ducking()  # the bed's ducking under speech, its defaults and their reasons (music/ducking.py)
_PROMPT = "--prompt-seconds must be positive and shorter than the window"
_CROSSFADE = "--crossfade-seconds must be between 0 and the prompt length"
_LOUDNESS = "--loudness must be between -70 and -5 LUFS (e.g. -14, or -23 for broadcast)"
_NOT_NEGATIVE = (lambda v: v >= 0, "{flag} must not be negative")
_REF = "a local directory, an s3:// prefix or a hub id (owner/name); checked before any work"


@dataclass(frozen=True)
class ModelChoice(Checked):
    """Which models the job runs: a preset, and per-component references over it."""

    preset: str = setting("tiny", choices=PRESET_NAMES,
                          help="the set of models: tiny is built here from random weights (seconds, no download; "
                               "music that only tries the job out), fast and paper load from the Hugging Face hub "
                               "(MusicGen small or large); each component can be replaced by its own flag")
    clip: str | None = setting(None, metavar="REF", help=_REF)
    t5: str | None = setting(None, metavar="REF", help=_REF)
    musicgen: str | None = setting(None, metavar="REF", help=_REF)
    stable_audio: str | None = setting(None, metavar="REF", help="with --decoder stable-audio: a diffusers Stable "
                                                                 "Audio pipeline; " + _REF)
    stable_audio_3: str | None = setting(None, metavar="REF", help="with --decoder stable-audio-3: a diffusers Stable "
                                                                   "Audio 3 pipeline folder (see `cotvtm "
                                                                   "convert-stable-audio-3`); " + _REF)
    rationale: str | None = setting(None, metavar="REF", help=_REF)
    prior: str | None = setting(None, metavar="DIR", help="a prior from `cotvtm distill` (a local directory or an "
                                                          "s3:// prefix), retrieval (the default: each window "
                                                          "conditioned on the music description of the bank caption "
                                                          "nearest its frames, no training) or untrained")
    bank: str | None = setting(None, metavar="FILE", help="with the retrieval prior: a bank from `cotvtm bank` (a "
                                                          "local file or s3:// URI); default: the shipped scene bank")
    tiny_seed: int = same(TinyBuild, "tiny_seed", renamed=())


@dataclass(frozen=True)
class Access(Checked):
    """Where the job reads and writes (``source``, ``dest``), how it reaches its inputs, outputs
    and models, and which inputs it takes. Not hashed: it changes where things are read and
    written, not what is made of each input."""

    cache_dir: Path | None = setting(None, metavar="DIR", help="where the tiny preset is built")
    include_hidden: bool = setting(False, help="also soundtrack hidden media (names starting with '.'); the job's "
                                               "progress folder never")
    endpoint_url: str | None = setting(None, metavar="URL",
                                       help="S3-compatible endpoint for s3:// inputs, outputs and models (else "
                                            "AWS_ENDPOINT_URL)")
    commercial: bool = setting(False, help="refuse to start unless every model's licence allows commercial use "
                                           "(the fast and paper presets' MusicGen weights are CC-BY-NC-4.0)")
    sign_cert: str | None = setting(None, metavar="PATH",
                                    help="sign every output with a C2PA manifest: the signing certificate chain "
                                         "(PEM, signing certificate first), a local path or s3:// URI; with --sign-key")
    sign_key: str | None = setting(None, metavar="PATH",
                                   help="the private key (PEM) of --sign-cert, a local path or s3:// URI: tried "
                                        "where the job starts, read where the outputs are made, never logged or "
                                        "passed to Ray")
    resign: bool = setting(False, help="with --sign-cert: make again, signed, the existing outputs of this "
                                       "configuration that were made unsigned (the same music: every draw is "
                                       "seeded); without it they are skipped, and counted in the summary")

    teacher_terms: str | None = setting(None, choices=TEACHER_TERMS,
                                        help="with --conditioning teacher: what the endpoint provider's terms allow "
                                             "for its answers, as you read them (recorded per output; --commercial "
                                             "needs commercial)")

    source: str = ""  # the input folder, file or s3:// prefix (the command's INPUT)
    dest: str = ""  # the output folder or s3:// prefix (its OUTPUT)

    RELATIONS = (((lambda a: (a.sign_cert is None) == (a.sign_key is None)), "--sign-cert and --sign-key go together"),
                 ((lambda a: a.sign_cert is not None or not a.resign), "--resign needs --sign-cert and --sign-key"))

    def signing(self) -> SigningFiles | None:
        """Where the outputs' signer reads its certificate chain and key, when they are signed."""
        if self.sign_cert is None or self.sign_key is None:
            return None
        return SigningFiles(self.sign_cert, self.sign_key, self.endpoint_url)


@dataclass(frozen=True)
class SoundtrackConfig(Checked):
    """Everything that changes what the job writes (so it all goes into the hash)."""

    models: ModelChoice = field(default_factory=ModelChoice)
    teacher: EndpointConfig = field(default_factory=EndpointConfig)  # with --conditioning teacher: its endpoint
    window_s: float = setting(10.0, flag="--window-seconds", check=positive("--window-seconds must be positive"),
                              help="window length")
    windows: str = setting("fixed", choices=WINDOWS,
                           help="fixed windows of --window-seconds, or shots: window boundaries on the video's shot "
                                "cuts (4 to 14 s per window; a long shot split evenly, short shots merged)")
    frames_per_window: int = setting(8, check=at_least(1), help="frames sampled per window for CLIP")
    frame_reader: str = setting("pyav", choices=READERS, help="frame decoder")
    mode: str = setting("continuous", choices=MODES,
                        help="window i+1 continues window i, or all windows of a segment at once")
    prompt_s: float = setting(2.0, flag="--prompt-seconds", check=positive(_PROMPT),
                              help="continuous mode: the last seconds of the track that prompt the next window")
    crossfade_s: float = setting(0.25, flag="--crossfade-seconds", check=(lambda v: v >= 0, _CROSSFADE),
                                 help="the crossfade joining one window's music to the next")
    conditioning: str = setting("prior", choices=CONDITIONINGS,
                                help="prior: what --prior gives (retrieval by default); teacher: each window's "
                                     "frames captioned, the caption described by the chain-of-thought teacher "
                                     "at an OpenAI-compatible endpoint (--teacher-model, --teacher-url), and that description's "
                                     "T5 states condition the music (paid and slower; no prior needed)")
    captioner: str | None = setting(None, metavar="REF",
                                    help="with --conditioning teacher: retrieval (the scene description nearest the "
                                         "frames by CLIP) or blip:REF (default: retrieval with the tiny preset, "
                                         "BLIP-large otherwise)")
    retrieval_k: int = setting(1, check=at_least(1),
                               help="with the retrieval prior: draw each window's caption among this many nearest, "
                                    "weighted by similarity (1: the nearest)")
    guidance_scale: float = setting(3.0, help="MusicGen's classifier-free guidance (1 or less: none)")
    top_k: int = setting(250, help="tokens sampled from (0: all)", check=(lambda v: v >= 0, "--top-k must not be "
                                                                                             "negative"))
    temperature: float = setting(1.0, help="MusicGen's sampling temperature", check=positive())
    decoder: str | None = setting(None, choices=DECODERS,
                                  help="engine (the default): MusicGen through the slot engine (batch-invariant "
                                       "sampling, CUDA graphs on a GPU); generate: MusicGen through transformers' "
                                       "generate (the reference); stable-audio-3 (the default with --commercial): "
                                       "Stable Audio 3, stereo, 8 steps, each window continuing the one before; "
                                       "stable-audio: Stable Audio Open, each window made fresh and crossfaded")
    decoder_dtype: str = setting("auto", choices=DECODER_DTYPES,
                                 help="MusicGen's decoder precision (auto: float16 on a GPU, float32 on the CPU); T5, "
                                      "EnCodec, the logits, guidance and sampling noise stay float32")
    stable_audio_steps: int = setting(100, check=at_least(1), help="with --decoder stable-audio: denoising steps")
    stable_audio_guidance: float = setting(7.0, help="with --decoder stable-audio: classifier-free guidance scale "
                                                     "(1 or less: none)")
    stable_audio_3_steps: int = setting(8, check=at_least(1),
                                        help="with --decoder stable-audio-3: sampling steps (the distilled model's 8; "
                                             "a -base checkpoint wants about 100)")
    stable_audio_3_guidance: float = setting(1.0, help="with --decoder stable-audio-3: classifier-free guidance scale "
                                                       "(1: none, as the distilled model is made to run; a -base "
                                                       "checkpoint wants about 7)")
    streams_per_video: int = setting(4, check=at_least(1),
                                     help="continuous mode: up to this many stretches of a long video are composed "
                                          "side by side, joined by a crossfade")
    stream_min_s: float = setting(300.0, flag="--stream-min-seconds", check=positive(),
                                  help="the shortest stretch a video is split into (a shorter video is one stream)")
    prior_steps: int | None = setting(None, check=at_least(1),
                                      help="the prior's sampling steps (default: its checkpoint's own)")
    prior_sampler: str | None = setting(None, choices=SAMPLERS, help="the prior's sampler (default: its checkpoint's)")
    prior_guidance: float | None = setting(None, help="the prior's guidance scale (default: its checkpoint's)")
    image_seconds: float = setting(10.0, check=positive(), help="music length for image inputs")
    image_video: bool = setting(False, help="also write a still-image video for image inputs")
    audio: str = setting("replace", choices=AUDIO_MODES,
                         help="replace: the music alone; duck: the video's audio kept quietly (--duck-gain) under "
                              "the music; voice: the video's audio kept as it is, the music a bed under it "
                              "(--bed-level), lowered further while someone speaks (--duck-depth)")
    duck_gain: float = setting(0.25, check=(lambda v: 0 < v <= 1, "--duck-gain must be in (0, 1]"),
                               help="gain of the original audio with --audio duck")
    bed_level: float = setting(-4.0, metavar="LU", check=(lambda v: -40 <= v <= 0, "--bed-level must be between "
                                                                                   "-40 and 0 LU"),
                               help="with --audio voice: the music's loudness between sentences, relative to the "
                                    "speech's (-4: just under the voice, so the programme does not jump in loudness "
                                    "between speech and music)")
    duck_depth: float = setting(_DUCKING.depth_db, metavar="DB",
                                check=(lambda v: 0 <= v <= 40, "--duck-depth must be between 0 and 40 dB"),
                                help="with --audio voice: how much further the music goes down while someone "
                                     "speaks (14: the music 18 LU under the voice with the default --bed-level, "
                                     "within the 15 to 20 dB that broadcast intelligibility guidance asks for)")
    duck_attack: float = setting(_DUCKING.attack_s, metavar="S",
                                 check=(lambda v: 0 <= v <= 5, "--duck-attack must be between 0 and 5 seconds"),
                                 help="with --audio voice: the music's fall, ending as the speech starts (speech is "
                                      "found ahead, so the first syllable is never under full music)")
    duck_release: float = setting(_DUCKING.release_s, metavar="S",
                                  check=(lambda v: 0 <= v <= 10, "--duck-release must be between 0 and 10 seconds"),
                                  help="with --audio voice: the music's rise after the speech ends (slower than the "
                                       "fall, as an editor rides a fader, so the music does not jump in)")
    audio_rate: int | None = setting(None, metavar="HZ", check=(lambda v: v in CODEC_RATES["aac"],
                                                                "--audio-rate must be one of "
                                                                + ", ".join(map(str, CODEC_RATES["aac"]))),
                                     help="every output's sample rate", shown_default="48000; with --audio duck or "
                                                                                      "voice the original's")
    audio_channels: int | None = setting(None, choices=CHANNEL_CHOICES,
                                         help="every output's channels: 1 (mono) or 2 (stereo)",
                                         shown_default="2; with --audio duck or voice the original's layout "
                                                       "(5.1 stays 5.1)")
    audio_bitrate: str | None = setting(None, metavar="RATE", check=(lambda v: _bitrate_ok(v), "--audio-bitrate "
                                        "must be kilobits per second such as 256k, between 32k and 1024k"),
                                        help="the audio encoder's bitrate", shown_default="128k per channel, at "
                                                                                          "most 512k")
    loudness: float | None = setting(None, metavar="LUFS", check=(lambda v: -70 <= v <= -5, _LOUDNESS),
                                     help="normalise each output's audio (the music, or the mix; with --audio voice, "
                                          "as measured over the speech) to this integrated loudness: -14 for social "
                                          "platforms, -23 for EBU R128 broadcast")
    true_peak: float = setting(-1.0, metavar="DBTP", help="the true-peak ceiling with --loudness",
                               check=(lambda v: -9 <= v <= 0, "--true-peak must be between -9 and 0 dBTP"))
    seed: int = setting(0, help="with the input and the window, where every random draw comes from")
    variants: int = setting(1, check=(lambda v: 1 <= v <= 10, "--variants must be between 1 and 10"),
                            help="tracks made per input, each its own draws (the first is the track of a run "
                                 "without --variants); the video's conditioning is made once for all")
    ending: str = setting("beat", choices=ENDINGS,
                          help="beat: fade out from a beat near the end; fade: a 2 s fade-out; cut: stop at the last "
                               "frame as it is. The music always ends exactly on the video's last frame")
    style: str | None = setting(None, metavar="TEXT", check=(lambda v: style_fault(v) is None,
                                                             f"--style must be {STYLE_RULE}"),
                                help="a description of the music every input should have (e.g. 'warm acoustic "
                                     "guitar, no drums'), steering it beside the picture")
    styles: str | None = setting(None, metavar="FILE",
                                 help="per-input styles: a .csv (key,style) or .jsonl ({\"key\", \"style\"}) "
                                      "file, local or s3://; inputs it does not name get --style")
    style_weight: float = setting(1.0, check=(lambda v: 0 < v <= 10, "--style-weight must be in (0, 10]"),
                                  help="how strongly the style steers against the picture")

    timeline: tuple[str, ...] = setting(factory=tuple, choices=TIMELINES, metavar="KIND",
                                        help="also write a timeline an editor opens, beside each video output: otio "
                                             "(DaVinci Resolve), fcp-xml (Premiere, Final Cut 7 XML) or aaf (Avid); "
                                             "repeat for several. The music and the original audio are written as "
                                             "48 kHz WAVs beside it", shown_default="none")
    sync: str = setting("none", choices=SYNCS,
                        help="cuts (with --windows shots): bend the music, a few percent at most, so that a beat "
                             "lands on each shot cut")

    def __post_init__(self):
        """``timeline`` as one tuple in a fixed order, whatever order or repeats it was given in
        (it names the outputs): ``"otio"`` or a list is taken too."""
        given = (self.timeline,) if isinstance(self.timeline, str) else self.timeline
        if isinstance(given, (list, tuple)) and set(given) <= set(TIMELINES):
            object.__setattr__(self, "timeline", tuple(kind for kind in TIMELINES if kind in given))
        super().__post_init__()

    RELATIONS = ((lambda c: c.prompt_s < c.window_s, _PROMPT),
                 (lambda c: c.crossfade_s <= c.prompt_s, _CROSSFADE),
                 (lambda c: c.sync == "none" or c.windows == "shots",
                  "--sync cuts needs --windows shots (the cuts it puts beats on)"))

    def recorded(self) -> dict:
        """The settings as every sidecar records them: the teacher by its model alone (where it
        is and how long to wait for it change no answer, and its URL may carry credentials)."""
        recorded = {}
        for name, value in asdict(self).items():
            if name != "teacher":
                recorded[name] = value
            if name == "conditioning":  # where the teacher's model stood before the endpoint was one class
                recorded["teacher_model"] = self.teacher.teacher_model
        return recorded

    def digest(self, models_fingerprint: str, styles: str | None = None) -> str:
        """Output names are a pure function of input key + this digest (idempotent reruns).
        ``styles``: the styles file's content digest (the file counts by content, not path).
        Settings added since the first release count only when they differ from what reproduces
        the earlier behaviour (``_DEFAULTS``), so that using none of them keeps the names of a
        library made before them. ``--ending``'s default, ``beat``, changes the music, so it
        counts: ``--ending cut`` keeps an earlier library's names."""
        # models: by content, not path; variants: each variant is named on its own (``names.py``)
        settings = {k: v for k, v in self.recorded().items() if k not in ("models", "variants")}
        for name in _ADDED:
            if settings[name] == _DEFAULTS[name] or (name in _VOICE_ONLY and self.audio != "voice"):
                del settings[name]
        if self.styles:
            settings["styles"] = styles
        payload = json.dumps({"config": settings, "models": models_fingerprint}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:10]


_ADDED = ("conditioning", "teacher_model", "captioner", "retrieval_k", "decoder_dtype", "stable_audio_steps", "stable_audio_guidance",
          "stable_audio_3_steps", "stable_audio_3_guidance", "ending", "style", "styles", "style_weight",
          "bed_level", "duck_depth", "duck_attack", "duck_release", "audio_rate", "audio_channels", "audio_bitrate",
          "timeline", "sync")
_VOICE_ONLY = ("bed_level", "duck_depth", "duck_attack", "duck_release")  # they change nothing of other modes
# What each added setting was before it existed: --ending cut is how every track ended, and the
# audio carried the music's own rate and channels (no value of the delivery settings gives that
# back, so a library made before them is made again at 48 kHz stereo).
_DEFAULTS = {**{f.name: f.default_factory() if f.default is MISSING else f.default for f in fields(SoundtrackConfig)
                if f.default is not MISSING or f.default_factory is not MISSING}, "ending": "cut", "teacher_model": None,
             "audio_rate": "the music's", "audio_channels": "the music's"}


def _bitrate_ok(value: str) -> bool:
    return bool(re.fullmatch(r"\d{2,4}k", value)) and 32 <= int(value[:-1]) <= 1024


def default_device() -> str:
    """cuda when this machine has one, else cpu."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# What a CUDA machine changes of the resources' defaults (Resources.detect), and so what --help
# says of them. The GPU's shares: MusicGen holds its weights and a KV cache per slot, CLIP and the
# prior are small, so Music takes the largest share; the three add up to 0.9 of one GPU. The CPUs
# left beside the GPU stages decode, so the GPU waits for none.
ON_CUDA = dict(embed_cpus=1.0, prior_cpus=1.0, music_cpus=1.0, embed_gpus=0.15, prior_gpus=0.15, music_gpus=0.6,
               slots=16, embed_batch=16, prior_batch=16, videos_in_flight=32, mux_actors=2)


def _machine(name: str, default) -> str:
    """What --help says of a resource's default: this default, and what a CUDA machine makes it."""
    return f"by the machine: {default:g}; {ON_CUDA[name]:g} with cuda"


def _placed(stage: str, what: str, part: str):
    """One of a model stage's own placement settings: its ``actors``, the ``cpus`` or the GPU
    share (``gpus``) of each."""
    if part == "actors":
        return setting(1, check=at_least(1), help=f"{what} actors")
    default = 0.25 if part == "cpus" else 0.0
    what_each = "CPUs" if part == "cpus" else "the GPU share"
    return setting(default, check=_NOT_NEGATIVE, help=f"{what_each} each {what} actor reserves",
                   shown_default=_machine(f"{stage}_{part}", default))


@dataclass(frozen=True)
class Resources(Checked):
    """How the Ray stages are sized, each setting one thing. Not hashed: it changes how rows share
    batches, not what is asked for (every random draw belongs to a window, whatever its batch)."""

    decode_actors: int = setting(1, check=at_least(1), help="CPU actors probing and decoding frames",
                                 shown_default="by the machine: 1; with cuda the CPUs beyond 4, up to 16")
    mux_actors: int = setting(1, check=at_least(1), help="CPU actors running ffmpeg",
                              shown_default=_machine("mux_actors", 1))
    mux_cpus: float = setting(0.25, check=_NOT_NEGATIVE, help="CPUs each ffmpeg actor reserves")
    embed_actors: int = _placed("embed", "Embed (CLIP)", "actors")
    embed_cpus: float = _placed("embed", "Embed (CLIP)", "cpus")
    embed_gpus: float = _placed("embed", "Embed (CLIP)", "gpus")
    embed_batch: int = setting(4, check=at_least(1), help="segments per CLIP batch",
                               shown_default=_machine("embed_batch", 4))
    prior_actors: int = _placed("prior", "Prior", "actors")
    prior_cpus: float = _placed("prior", "Prior", "cpus")
    prior_gpus: float = _placed("prior", "Prior", "gpus")
    prior_batch: int = setting(4, check=at_least(1), help="segments per prior batch",
                               shown_default=_machine("prior_batch", 4))
    music_actors: int = _placed("music", "Music (the decoder)", "actors")
    music_cpus: float = _placed("music", "Music (the decoder)", "cpus")
    music_gpus: float = _placed("music", "Music (the decoder)", "gpus")
    slots: int = setting(4, check=at_least(1),
                         help="windows the decoder makes at once: the MusicGen engine's slots, the windows of one "
                              "generate call, Stable Audio 3's batch",
                         shown_default=_machine("slots", 4))
    engine_width: str = setting("full", choices=ENGINE_WIDTHS,
                                help="full: every decode engine step runs over all --slots, so a window's music does "
                                     "not depend on which windows share the engine, on a GPU too; busy: over the "
                                     "smallest power of two of slots covering the busy ones (faster while the engine "
                                     "is partly empty; on a GPU a rerun may differ in the last bits)")
    videos_in_flight: int = setting(8, check=at_least(1),
                                    help="videos a Music actor works on at once: with --music-feed continuous each a "
                                         "one-video call, with batched the videos of one lockstep call",
                                    shown_default=_machine("videos_in_flight", 8))
    music_feed: str = setting("continuous", choices=FEEDS,
                              help="continuous: each video's next window enters the decoder as soon as its previous "
                                   "one is done; batched: the videos of a batch go window by window in lockstep")
    segment_windows: int = setting(6, check=at_least(1),
                                   help="windows per saved segment: memory per worker and how far a "
                                        "resume goes back")
    wave: int = setting(256, check=at_least(1),
                        help="inputs per wave: the next wave is prepared while this one gets its music")
    device: str = setting("cpu", help="cpu or cuda", shown_default="by the machine: cuda when present, else cpu")
    max_input_bytes: int = setting(64 << 30, check=at_least(1), metavar="BYTES",
                                   help="a larger remote input is refused, not downloaded", shown_default="64 GiB")
    max_duration_s: float = setting(MAX_DURATION_S, flag="--max-duration", metavar="SECONDS",
                                    check=positive("--max-duration must be a positive number of seconds, not {value}"),
                                    help="refuse a video that declares a longer duration, before planning it",
                                    shown_default=f"{MAX_DURATION_S:g}: {MAX_DURATION_S / 3600:g} h")

    # Earlier flags that sized several things at once: each now sets the settings it stood for.
    RENAMED: typing.ClassVar[dict] = {"--model-actors": ("embed_actors", "prior_actors", "music_actors"),
                                      "--model-cpus": ("embed_cpus", "prior_cpus", "music_cpus"),
                                      "--gpus-per-model-actor": ("embed_gpus", "prior_gpus", "music_gpus"),
                                      "--segments-per-batch": ("embed_batch", "prior_batch")}

    @classmethod
    def detect(cls, **given) -> "Resources":
        """GPU model actors when CUDA is present (``ON_CUDA``: the three stages share one GPU),
        light CPU ones otherwise; what is ``given`` (and not None) over that.

        An explicit ``device`` wins: on a cluster the driver may run on a CPU-only head while
        the model actors belong on GPU workers.
        """
        given = {k: v for k, v in given.items() if v is not None}
        device = given.get("device") or default_device()
        base = {}
        if device.startswith("cuda"):
            base = {**ON_CUDA, "device": "cuda", "decode_actors": max(1, min(16, (os.cpu_count() or 2) - 4))}
        return cls(**{**base, **given})

    def stage(self, name: str) -> tuple[int, float, float]:
        """Model stage ``name``'s (actors, CPUs per actor, GPU share per actor)."""
        return getattr(self, f"{name}_actors"), getattr(self, f"{name}_cpus"), getattr(self, f"{name}_gpus")


# The soundtrack job's settings classes, in the order ``configure`` shares settings out among them.
SETTINGS = (ModelChoice, EndpointConfig, SoundtrackConfig, Resources, Access)


def _nested(chosen: dict, config: SoundtrackConfig | None, name: str, given: dict):
    """``SoundtrackConfig``'s nested ``name`` (its models or its teacher): one given whole, else
    ``config``'s, else the default, with the settings ``given`` for it over that."""
    base = chosen.pop(name, None) or (getattr(config, name) if config is not None else None)
    cls = dict(models=ModelChoice, teacher=EndpointConfig)[name]
    return cls(**given) if base is None else replace(base, **given) if given else base


def configure(config: SoundtrackConfig | None = None, resources: Resources | None = None, **settings):
    """The soundtrack job's ``(SoundtrackConfig, Resources, Access)`` from settings by field
    name, over ``config`` and ``resources`` when given (else the defaults, and the resources
    this machine suggests). Each is made, and so checked, once; an unknown name is an error."""
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}  # timeline=["otio"]
    choice, endpoint, chosen, sizes, access = split(settings, *SETTINGS)
    models = _nested(chosen, config, "models", choice)
    teacher = _nested(chosen, config, "teacher", endpoint)
    cfg = SoundtrackConfig(models=models, teacher=teacher, **chosen) if config is None else \
        replace(config, models=models, teacher=teacher, **chosen)
    res = Resources.detect(**sizes) if resources is None else replace(resources, **sizes) if sizes else resources
    return cfg, res, Access(**access)
