"""The model registry: every model loads by Hugging Face id or local directory.

A preset names one reference per component. ``tiny`` is built locally (see
``cotvtm.tiny``) and then resolved to directories, so tests and the offline demo go
through exactly the ``from_pretrained`` calls a real checkpoint goes through.
"""

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from cotvtm.errors import ModelError, ModelRefError, one_line
from cotvtm.model_folders import file_digest, folder_digest, regular_files
from cotvtm.options import Checked, setting
from cotvtm.quiet import quiet_transformers

DEFAULT_CACHE = Path(os.environ.get("COTVTM_CACHE", Path.home() / ".cache" / "cotvtm"))


@dataclass(frozen=True)
class TinyBuild(Checked):
    """How the tiny preset is built: declared here, once, for every command that builds it."""

    tiny_seed: int = setting(0, help="the seed of the tiny models' random weights (apart from --seed, which draws "
                                     "the music)")


@dataclass(frozen=True)
class ModelRefs:
    """Where each component comes from: a hub id or a local directory."""

    clip: str
    t5: str
    musicgen: str
    rationale: str
    prior: str | None  # a distilled prior's folder; RETRIEVAL; None: an untrained prior sized from the other models
    stable_audio: str | None = None  # set with --decoder stable-audio, when musicgen is None
    stable_audio_3: str | None = None  # set with --decoder stable-audio-3, when musicgen is None (t5 is its folder)
    bank: str | None = None  # with the retrieval prior: its bank file (prior/bank.py)

    def fingerprint(self, **others: str | None) -> str:
        """A short hash of the references and, for local dirs, their contents (every file but the
        model card: ``model_folders``). A decoder the run does not use (None) is left out, so
        adding one kept every earlier output's name; so is each of ``others`` (option name ->
        reference: models loaded beside these, such as ``captioner``) that is None."""
        used = {**self.used(), **{name: ref for name, ref in others.items() if ref is not None}}
        described = {}  # Stable Audio 3's folder is its decoder and its text encoder (t5): hashed once
        for name, ref in used.items():
            if ref not in described:
                described[ref] = _describe(option_of(name), ref)
        parts = {name: described[ref] for name, ref in used.items()}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]

    def used(self) -> dict[str, str | None]:
        """component -> reference, for the components this run loads (the prior always; the
        rationale encoder only for a prior's sizes, so not with retrieval)."""
        return {name: ref for name, ref in asdict(self).items()
                if (ref is not None or name == "prior") and not (name == "rationale" and self.prior == RETRIEVAL)}


PRESETS = {
    "paper": ModelRefs(  # CoT-VTM Section 4.2: clip-vit-base-patch32, T5-base, musicgen-large, LLM2Vec
        clip="openai/clip-vit-base-patch32",
        t5="google-t5/t5-base",
        musicgen="facebook/musicgen-large",
        rationale="McGill-NLP/LLM2Vec-Meta-Llama-3-8B-Instruct-mntp",
        prior=None,
    ),
    "fast": ModelRefs(
        clip="openai/clip-vit-base-patch32",
        t5="google-t5/t5-base",
        musicgen="facebook/musicgen-small",
        rationale="McGill-NLP/LLM2Vec-Meta-Llama-3-8B-Instruct-mntp",
        prior=None,
    ),
}

RETRIEVAL, UNTRAINED = "retrieval", "untrained"  # --prior's two names; anything else is a folder
PRESET_NAMES = ("tiny", *PRESETS)  # tiny is built locally (cotvtm/tiny.py), the others load by hub id
# The decoder of every hub preset with --decoder stable-audio: its T5-base text encoder is the one
# MusicGen's E_m comes from, and its licence allows commercial use (see cotvtm/licences.py).
STABLE_AUDIO = "stabilityai/stable-audio-open-1.0"
# ... and with --decoder stable-audio-3: the distilled checkpoint (8 steps, no guidance), whose own T5Gemma
# encoder is the run's text space (t5); also allows commercial use.
STABLE_AUDIO_3 = "stabilityai/stable-audio-3-medium"
# The model component each decoder loads its music from; MusicGen's decoders (engine, generate): musicgen.
DECODER_MODELS = {"stable-audio": "stable_audio", "stable-audio-3": "stable_audio_3"}
_HUB_DECODERS = {"stable_audio": STABLE_AUDIO, "stable_audio_3": STABLE_AUDIO_3}


def resolve(preset: str = "tiny", cache_dir: Path | None = None, seed: int = 0, endpoint_url: str | None = None,
            decoder: str = "engine", **overrides) -> ModelRefs:
    """Turn a preset name plus per-component overrides into concrete, checked references.

    Every reference is checked here, on the driver, before any input is touched (``check_ref``):
    a missing or unreadable one is a ``ModelRefError`` naming its option. ``s3://`` references
    are downloaded once into ``<cache>/s3`` and become local directories. With ``decoder``
    ``stable-audio`` (``stable-audio-3``) the music comes from ``stable_audio`` (``stable_audio_3``)
    and ``musicgen`` is None (not loaded). Stable Audio 3 reads its own text encoder's states, so
    with it ``t5`` is its pipeline folder (or hub id), whose ``text_encoder/`` gives E_m.
    """
    given = {name: _given(name, ref) for name, ref in overrides.items() if ref}
    given.update(_conditioning(given))
    music = DECODER_MODELS.get(decoder, "musicgen")
    own_text = music == "stable_audio_3"
    unused = {"musicgen", *DECODER_MODELS.values()} - {music} | ({"t5"} if own_text else set())
    for name in sorted(unused & given.keys()):
        why = " (its text encoder is the decoder's own)" if name == "t5" else ""
        raise ModelRefError(option_of(name), given[name], f"not used with --decoder {decoder}{why}")
    if preset == "tiny":
        refs = _tiny(Path(cache_dir or DEFAULT_CACHE), seed, music, given)
    elif preset in PRESETS:
        refs = replace(PRESETS[preset], **{name: ref for name, ref in _HUB_DECODERS.items() if name == music})
    else:
        raise ModelError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESET_NAMES)}")
    refs = replace(refs, **{"bank": None, "prior": None, **given})
    if music != "musicgen":
        refs = replace(refs, musicgen=None, **({"t5": None} if own_text else {}))  # t5: set once its folder is checked
    cache = Path(cache_dir or DEFAULT_CACHE) / "s3"
    checked = ModelRefs(**{f.name: _checked(f.name, getattr(refs, f.name), f.name in given, preset, cache,
                                            endpoint_url) for f in fields(ModelRefs)})
    return replace(checked, t5=checked.stable_audio_3) if own_text else checked


def _tiny(cache: Path, seed: int, music: str, given: dict) -> ModelRefs:
    """The tiny preset's references, with the Stable Audio decoder ``music`` names built when it
    is not given (on first use only: no other decoder needs it)."""
    from cotvtm import tiny

    built = tiny.build_all(cache, seed)
    refs = ModelRefs(**{k: str(v) for k, v in built.items()})
    if music == "stable_audio" and music not in given:
        refs = replace(refs, stable_audio=str(tiny.build_stable_audio(cache, built["t5"], seed)))
    if music == "stable_audio_3" and music not in given:
        refs = replace(refs, stable_audio_3=str(tiny.build_stable_audio_3(cache, seed)))
    return refs


# A Hugging Face hub id as the hub validates it: owner/name, letters, digits, '-', '_', '.'.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_MODEL_TYPES = {"clip": ("clip",), "t5": ("t5", "mt5", "umt5"), "musicgen": ("musicgen",)}  # what the loaders take
_WEIGHTS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")
# The diffusers pipelines the Stable Audio decoders load (the class model_index.json names), by component.
_PIPELINES = {"stable_audio": ("Stable Audio", ("StableAudioPipeline",)),
              "stable_audio_3": ("Stable Audio 3", ("StableAudio3Pipeline", "StableAudio3InpaintPipeline"))}
# The text encoders E_m may come from, by config model_type: the transformers class that loads each.
TEXT_ENCODERS = {"t5": "T5EncoderModel", "mt5": "T5EncoderModel", "umt5": "T5EncoderModel",
                 "t5gemma": "T5GemmaEncoderModel"}


def option_of(component: str) -> str:
    """The command-line option of a model component: ``stable_audio`` -> ``--stable-audio``."""
    return "--" + component.replace("_", "-")


def looks_like_hub_id(ref: str) -> bool:
    """Whether ``ref``, not being an existing path, may be read as a hub id.

    A hub id is ``owner/name``: exactly one ``/`` between two parts of letters, digits, ``-``,
    ``_`` and ``.``, each starting with a letter or digit, no ``--`` or ``..``, at most 96
    characters. Anything else is taken for a local path: a leading ``/``, ``./``, ``../`` or
    ``~``, a backslash or a drive letter (``C:``), more than one ``/``, a trailing ``/``, a space,
    and a bare name such as ``distilled`` (far more often a folder that is not there than one of
    the hub's legacy ids without an owner, which all have an ``owner/name`` form now). An
    ``owner/name`` that exists as a folder is that folder; one that does not is only checked
    for its shape here, and fails where it is loaded when it is not on the hub (or, offline, not
    in the hub's cache). A prior has no hub form: it is always a directory.
    """
    return (len(ref) <= 96 and _HUB_ID.fullmatch(ref) is not None and "--" not in ref and ".." not in ref)


def check_ref(option: str, ref: str, component: str) -> None:
    """Raise ``ModelRefError`` unless ``ref`` can be handed to ``component``'s loader.

    A local directory must be readable, hold only regular files and folders (``model_folders``:
    checked with ``stat`` before anything is opened), and hold the loader's files: ``config.json``
    (or, for the rationale encoder, a PEFT ``adapter_config.json``) that parses and names a model
    type the loader takes, and weights; a prior its own ``config.json`` (``model_type``
    ``cotvtm-prior``) and ``model.safetensors``. What only loading shows (weights that do not
    fit the config) fails in the stage's actors, which stops the run once (``SetupError``).
    """
    path = Path(ref)
    if not path.exists():
        raise ModelRefError(option, ref, _why_missing(ref, component))
    if not path.is_dir():
        raise ModelRefError(option, ref, "not a directory (a model is a folder holding config.json and its weights)")
    if not os.access(path, os.R_OK | os.X_OK):
        raise ModelRefError(option, ref, "cannot read this directory (permission denied)")
    regular_files(option, path)  # before any file in it is opened: a FIFO would block the read
    if component in _PIPELINES:
        what, classes = _PIPELINES[component]
        _check_files(option, path, ("model_index.json",), f"a diffusers {what} pipeline")
        kind = _config(option, path / "model_index.json").get("_class_name")
        if kind not in classes:
            raise ModelRefError(option, ref, f"model_index.json says {kind!r}, not a {classes[0]}")
        if component == "stable_audio_3":
            _check_text_encoder(option, path)
        return
    if component == "prior":
        _check_files(option, path, ("config.json", "model.safetensors"), "a cotvtm prior (from `cotvtm distill`)")
        kind = _config(option, path / "config.json").get("model_type")
        if kind != "cotvtm-prior":
            raise ModelRefError(option, ref, f"config.json says model_type {kind!r}, not a cotvtm prior "
                                             "(expected 'cotvtm-prior', from `cotvtm distill`)")
        return
    config = "adapter_config.json" if component == "rationale" and (path / "adapter_config.json").exists() \
        else "config.json"
    _check_files(option, path, (config,), f"a Hugging Face {component} model")
    kind = _config(option, path / config).get("model_type")
    if kind not in _MODEL_TYPES.get(component, (kind,)) or kind == "cotvtm-prior":
        raise ModelRefError(option, ref, f"config.json says model_type {kind!r}, not a {component} model")
    if not any(next(path.glob(pattern), None) for pattern in _WEIGHTS):
        raise ModelRefError(option, ref, "no weights (*.safetensors or *.bin) in this directory")


def captioner_folder(captioner: str | None) -> str | None:
    """The local folder ``--captioner blip:DIR`` names, checked like any model folder (a hub id or
    ``retrieval``: None), so that its content counts in the fingerprint and a FIFO in it is
    refused on the driver, not met by the actors that load it."""
    kind, _, location = (captioner or "").partition(":")
    path = Path(location).expanduser()
    if kind != "blip" or not location or not path.is_dir():
        return None
    regular_files("--captioner", path)
    return str(path.absolute())


def _conditioning(given: dict) -> dict:
    """``prior`` and ``bank`` as the run uses them: without ``--prior``, the retrieval prior over
    the shipped bank; ``--prior untrained``: None (an untrained prior); ``--bank`` only with retrieval."""
    from cotvtm.prior.bank import SHIPPED

    prior = given.get("prior", RETRIEVAL)
    if "bank" in given and prior != RETRIEVAL:
        raise ModelRefError("--bank", given["bank"], "a bank is only used with the retrieval prior (--prior "
                                                     f"{RETRIEVAL}, the default), not with --prior {prior}")
    if prior == UNTRAINED:
        return {"prior": None}
    return {"prior": prior, "bank": given.get("bank", str(SHIPPED))} if prior == RETRIEVAL else {}


def _given(name: str, ref) -> str:
    """An override as the user wrote it, ``~`` expanded; an existing path made absolute. A path
    that does not exist fails here, before the tiny preset is built or anything fetched."""
    ref = str(ref)
    if ref.startswith("s3://") or (name == "prior" and ref in (RETRIEVAL, UNTRAINED)):
        return ref
    path = Path(ref).expanduser()
    if path.exists():
        return str(path.absolute())
    if name in ("prior", "bank") or not looks_like_hub_id(ref):
        raise ModelRefError(option_of(name), ref, _why_missing(ref, name))
    return ref


def _checked(name: str, ref: str | None, given: bool, preset: str, cache: Path, endpoint_url: str | None):
    """``ref`` fetched when it is an ``s3://`` prefix, then checked (``check_ref``)."""
    if ref is None or (name == "prior" and ref == RETRIEVAL):
        return ref
    option = option_of(name) if given else f"{name} (preset {preset})"
    if name == "bank":
        return _checked_bank(option, ref, cache, endpoint_url)
    local = _fetched(option, ref, cache, endpoint_url)
    if local == ref and not Path(ref).is_absolute() and looks_like_hub_id(ref):
        return ref  # a hub id: loaded where it is used
    try:
        check_ref(option, local, name)
    except ModelRefError as exc:
        if local == ref:
            raise
        raise ModelRefError(option, ref, f"{exc.reason} (fetched to {local})") from None
    return local


def _checked_bank(option: str, ref: str, cache: Path, endpoint_url: str | None) -> str:
    """A bank file, local or ``s3://`` (copied into the cache under its content's hash), read
    and checked entry by entry."""
    from cotvtm.jsonl import TextError, read_bounded
    from cotvtm.prior.bank import MAX_BANK_BYTES, BankError, read_bank

    if ref.startswith("s3://"):
        try:
            data = read_bounded(ref, endpoint_url, MAX_BANK_BYTES)
        except TextError as exc:
            raise ModelRefError(option, ref, exc.reason) from None
        local = cache / "banks" / f"{hashlib.sha256(data).hexdigest()[:16]}.jsonl"
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        ref = str(local)
    try:
        read_bank(ref)
    except BankError as exc:
        raise ModelRefError(option, ref, exc.reason) from None
    return ref


def _fetched(option: str, ref: str, cache: Path, endpoint_url: str | None) -> str:
    from cotvtm.storage import resolve_model_dir
    from cotvtm.storage.errors import StorageError

    try:
        return resolve_model_dir(ref, cache, endpoint_url)
    except StorageError as exc:
        raise ModelRefError(option, ref, exc.reason) from None
    except OSError as exc:  # the cache folder cannot be written
        raise ModelRefError(option, ref, f"cannot fetch into the cache {cache}: {exc.strerror or exc}") from None


def _why_missing(ref: str, component: str) -> str:
    if "://" in ref:
        return "unsupported location (a model is a local directory, an s3:// prefix or a hub id owner/name)"
    if component == "prior":
        return (f"no such directory (a prior is the folder `cotvtm distill` writes, an s3:// prefix, {RETRIEVAL} "
                f"or {UNTRAINED})")
    if component == "bank":
        return "no such file (a bank is a file `cotvtm bank` writes, or an s3:// URI)"
    return "no such directory (and not a hub id, which looks like owner/name)"


def _check_text_encoder(option: str, path: Path) -> None:
    """A pipeline's ``text_encoder/`` and ``tokenizer/``, which give the run's E_m (``load_t5``)."""
    _check_files(option, path, ("text_encoder/config.json", "tokenizer/tokenizer_config.json"),
                 "a pipeline with its text encoder and tokenizer")
    encoder = path / "text_encoder"
    kind = _config(option, encoder / "config.json").get("model_type")
    if kind not in TEXT_ENCODERS:
        raise ModelRefError(option, str(path), f"text_encoder/config.json says model_type {kind!r}, not a T5 or "
                                               "T5Gemma encoder")
    if not any(next(encoder.glob(pattern), None) for pattern in _WEIGHTS):
        raise ModelRefError(option, str(path), "no weights (*.safetensors or *.bin) in text_encoder/")


def _check_files(option: str, path: Path, names: tuple[str, ...], what: str) -> None:
    missing = [name for name in names if not (path / name).is_file()]
    if missing:
        raise ModelRefError(option, str(path), f"no {' and no '.join(missing)}: not {what}")


def _config(option: str, path: Path) -> dict:
    """A model's JSON config, which must be readable and a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelRefError(option, str(path.parent), f"cannot read {path.name}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ModelRefError(option, str(path.parent), f"{path.name} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelRefError(option, str(path.parent), f"{path.name} is not a JSON object")
    return data


def _describe(option: str, ref: str | None) -> str | None:
    """Local directories and files are identified by their content, hub ids by name."""
    path = Path(ref) if ref is not None else None
    if path is not None and path.is_file():
        return f"{path.name}:{file_digest(option, path.parent, path, path.name).hex()[:16]}"
    if path is None or not path.is_dir():
        return ref
    return f"{path.name}:{folder_digest(option, path)[:16]}"


def _load(loader, ref: str, what: str, **kwargs):
    quiet_transformers()
    try:
        return loader.from_pretrained(ref, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load {what} from {ref!r}: {exc}") from exc


def load_clip(ref: str, device: str = "cpu"):
    """CLIP model (both towers) and its processor."""
    from transformers import CLIPModel, CLIPProcessor

    model = _load(CLIPModel, ref, "CLIP").to(device).eval()
    return model, _load(CLIPProcessor, ref, "CLIP processor")


def load_t5(ref: str, device: str = "cpu"):
    """The decoder's text encoder and its tokenizer, which give E_m: MusicGen's T5 (a transformers
    folder or hub id), or a diffusers pipeline's own ``text_encoder/`` and ``tokenizer/`` (Stable
    Audio 3's T5Gemma), loaded with the class its config names. Padding goes on the right: T5Gemma's
    rotary positions count from the first token, so a text's states then do not depend on how
    far it is padded (T5 pads on the right already)."""
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    ref = diffusers_folder(ref)
    encoder, tokenizer = text_encoder_folders(ref)
    config = _load(AutoConfig, ref, "text encoder config", **encoder)
    loader = getattr(transformers, TEXT_ENCODERS.get(config.model_type, "T5EncoderModel"))
    model = _load(loader, ref, "text encoder", **encoder).to(device).eval()
    tokens = _load(AutoTokenizer, ref, "text tokenizer", **tokenizer)
    tokens.padding_side = "right"
    return model, tokens


# Stability AI publishes Stable Audio 3 in its own layout (model_config.json, model.safetensors, the T5Gemma
# encoder in a subfolder), not diffusers': these hub ids are converted once per machine (diffusers_folder).
OFFICIAL_LAYOUT = {STABLE_AUDIO_3, "stabilityai/stable-audio-3-medium-base"}


def diffusers_folder(ref: str, cache_dir: Path | None = None, hub_cache: str | None = None) -> str:
    """``ref``, or for a hub id published in Stability AI's own layout its diffusers folder: the
    official checkpoint downloaded (weights as safetensors only) and converted once into
    ``<cache>/stable-audio-3/`` (``sa3_convert.py``), on whichever machine first loads it."""
    if ref not in OFFICIAL_LAYOUT:
        return ref
    target = Path(cache_dir or DEFAULT_CACHE) / "stable-audio-3" / ref.replace("/", "--")
    if not (target / "model_index.json").is_file():
        from huggingface_hub import snapshot_download

        from cotvtm.sa3_convert import convert

        try:
            source = snapshot_download(ref, cache_dir=hub_cache, allow_patterns=["*.json", "*.safetensors", "*.model",
                                                                                 "*/*.json", "*/*.safetensors",
                                                                                 "*/*.model"])
        except Exception as exc:  # offline, gated (accept the licence on the hub first), or missing
            raise ModelError(f"cannot download {ref} to convert it: {one_line(str(exc))}") from None
        if not (target / "model_index.json").is_file():  # another process may have converted it meanwhile
            convert(source, target)
    return str(target)


def text_encoder_config(ref: str):
    """The config of the text encoder at ``ref`` (whose states E_m is): a transformers folder or
    hub id, or a diffusers pipeline's ``text_encoder/`` (where Stable Audio keeps it)."""
    from transformers import AutoConfig

    ref = diffusers_folder(ref)  # a Stable Audio 3 hub id, converted once
    return AutoConfig.from_pretrained(ref, **text_encoder_folders(ref)[0])


def text_encoder_folders(ref: str) -> tuple[dict, dict]:
    """``from_pretrained``'s arguments for the text encoder and the tokenizer at ``ref``: the
    ``text_encoder`` and ``tokenizer`` subfolders of a diffusers pipeline (a folder or hub id
    with ``model_index.json``), else none."""
    from transformers.utils import cached_file

    index = cached_file(ref, "model_index.json", _raise_exceptions_for_missing_entries=False,
                        _raise_exceptions_for_connection_errors=False)
    return ({"subfolder": "text_encoder"}, {"subfolder": "tokenizer"}) if index else ({}, {})


def load_stable_audio_3(ref: str, device: str = "cpu", dtype=None):
    """Stable Audio 3's pipeline (diffusers' ``StableAudio3InpaintPipeline``: its SAME autoencoder,
    transformer, duration embedder and T5Gemma encoder), without its progress bars. ``dtype``: the
    transformer's and duration embedder's (half precision on a GPU); the autoencoder and the
    text encoder stay float32: Stability AI ships the autoencoder so, and Gemma's activations may
    overflow float16 (as T5's do)."""
    from diffusers import StableAudio3InpaintPipeline

    from cotvtm.quiet import quiet_diffusers

    quiet_diffusers()
    pipeline = _load(StableAudio3InpaintPipeline, diffusers_folder(ref), "Stable Audio 3")
    pipeline.set_progress_bar_config(disable=True)
    if dtype is not None:
        pipeline.transformer.to(dtype)
        pipeline.duration_embedder.to(dtype)
    return pipeline.to(device)


def load_stable_audio(ref: str, device: str = "cpu", dtype=None):
    """Stable Audio's pipeline (diffusers' ``StableAudioPipeline``: its autoencoder, transformer,
    projection and T5), without its progress bars."""
    from diffusers import StableAudioPipeline

    from cotvtm.quiet import quiet_diffusers

    quiet_diffusers()
    kwargs = {"torch_dtype": dtype} if dtype is not None else {}
    pipeline = _load(StableAudioPipeline, ref, "Stable Audio", **kwargs)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device)


DECODER_DTYPES = ("auto", "float32", "float16", "bfloat16")  # MusicGen's decoder precision (--decoder-dtype)

# The half precision each model runs in on a GPU: float16 where its activations stay in range (CLIP;
# MusicGen's decoder, trained in it under autocast, with more mantissa than bfloat16), bfloat16 where
# float16 overflows (the rationale LLM; the prior's sampler, under autocast). On the CPU every model
# stays float32 (half precision saves no time there), and so does T5 everywhere (small, and known to
# overflow in float16).
HALF = {"clip": "float16", "musicgen": "float16", "rationale": "bfloat16", "prior": "bfloat16"}


def half_dtype(device: str, model: str):
    """The torch dtype ``model`` (a key of ``HALF``) runs in on ``device``; None: float32."""
    import torch

    return getattr(torch, HALF[model]) if str(device).startswith("cuda") else None


def decoder_dtype(name: str, device: str):
    """The dtype ``--decoder-dtype`` names; ``auto``: MusicGen's half precision on a GPU (half the
    bytes per step of float32, and tensor cores), float32 on the CPU."""
    import torch

    if name not in DECODER_DTYPES:
        raise ValueError(f"unknown decoder dtype {name!r}; choose one of {DECODER_DTYPES}")
    if name == "auto":
        return half_dtype(device, "musicgen") or torch.float32
    return getattr(torch, name)


def load_musicgen(ref: str, device: str = "cpu", dtype: str = "float32"):
    """MusicGen and its processor; the decoder and the projection into it in ``dtype``
    (``decoder_dtype``), T5 and EnCodec in float32: T5 overflows in float16, and EnCodec runs
    once per window, not once per step, so its precision costs little."""
    from transformers import AutoProcessor, MusicgenForConditionalGeneration

    model = _load(MusicgenForConditionalGeneration, ref, "MusicGen").to(device).eval()
    half = decoder_dtype(dtype, device)
    model.decoder.to(half)
    if getattr(model, "enc_to_dec_proj", None) is not None:
        model.enc_to_dec_proj.to(half)
    return model, _load(AutoProcessor, ref, "MusicGen processor")


def embedding_dims(refs: ModelRefs, rationale: bool = True) -> dict:
    """The sizes of E_v, E_m and E_r, from the encoders' configs: what a prior must match. Without
    ``rationale`` E_r's is None (retrieval needs no rationale encoder, which may be gated)."""
    from transformers import AutoConfig

    from cotvtm import text_space

    rationale = AutoConfig.from_pretrained(refs.rationale).hidden_size if rationale else None
    music = text_encoder_config(refs.t5)
    return {"clip_dim": AutoConfig.from_pretrained(refs.clip).projection_dim,
            "music_dim": text_space.width(music), "rationale_dim": rationale}


def load_prior(ref: str | None, clip_dim: int, music_dim: int, rationale_dim: int):
    """The distilled prior; an untrained one of the right shape when ``ref`` is None."""
    from cotvtm.prior import PriorConfig, TwoStagePrior

    if ref is None:
        base = PriorConfig.paper()
        return TwoStagePrior(replace(base, clip_dim=clip_dim, music_dim=music_dim, rationale_dim=rationale_dim))
    if not (Path(ref) / "config.json").exists():
        raise ModelError(f"no prior checkpoint at {ref!r} (expected config.json and model.safetensors)")
    return TwoStagePrior.from_pretrained(ref).eval()
