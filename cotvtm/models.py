"""The model registry: every model loads by Hugging Face id or local directory.

A preset names one reference per component. ``tiny`` is built locally (see
``cotvtm.tiny``) and then resolved to directories, so tests and the offline demo go
through exactly the ``from_pretrained`` calls a real checkpoint goes through.
"""

import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from cotvtm.errors import ModelError
from cotvtm.quiet import quiet_transformers

DEFAULT_CACHE = Path(os.environ.get("COTVTM_CACHE", Path.home() / ".cache" / "cotvtm"))


@dataclass(frozen=True)
class ModelRefs:
    """Where each component comes from: a hub id or a local directory."""

    clip: str
    t5: str
    musicgen: str
    rationale: str
    prior: str | None  # None: an untrained prior sized from the other models

    def fingerprint(self) -> str:
        """A short hash of the references and, for local dirs, their configs."""
        parts = {name: _describe(ref) for name, ref in asdict(self).items()}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


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

PRESET_NAMES = ("tiny", *PRESETS)  # tiny is built locally (cotvtm/tiny.py), the others load by hub id


def resolve(preset: str = "tiny", cache_dir: Path | None = None, seed: int = 0, endpoint_url: str | None = None,
            **overrides) -> ModelRefs:
    """Turn a preset name plus per-component overrides into concrete references.

    ``s3://`` references are downloaded once into ``<cache>/s3`` and become local directories.
    """
    if preset == "tiny":
        from cotvtm import tiny

        refs = ModelRefs(**{k: str(v) for k, v in tiny.build_all(cache_dir or DEFAULT_CACHE, seed).items()})
    elif preset in PRESETS:
        refs = PRESETS[preset]
    else:
        raise ModelError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESET_NAMES)}")
    given = {k: str(Path(v).absolute()) if Path(str(v)).exists() else str(v) for k, v in overrides.items() if v}
    refs = replace(refs, **given)
    from cotvtm.storage import resolve_model_dir

    cache = Path(cache_dir or DEFAULT_CACHE) / "s3"
    return ModelRefs(**{k: resolve_model_dir(v, cache, endpoint_url) if v else v for k, v in asdict(refs).items()})


def _describe(ref: str | None) -> str | None:
    """Local directories are identified by their content, hub ids by name."""
    if ref is None or not Path(ref).is_dir():
        return ref
    digest = hashlib.sha256()
    for path in sorted(Path(ref).glob("*.json")) + sorted(Path(ref).glob("*.safetensors")):
        digest.update(path.name.encode())
        digest.update(_tensor_bytes_digest(path) if path.suffix == ".safetensors" else path.read_bytes())
    return f"{Path(ref).name}:{digest.hexdigest()[:16]}"


def _tensor_bytes_digest(path: Path, limit: int = 256 << 20) -> bytes:
    """Hash of the tensor data (not the header, whose metadata order varies between saves).

    Files over ``limit`` are identified by size and modification time instead of content.
    """
    size = path.stat().st_size
    if size > limit:
        return f"{size}:{path.stat().st_mtime_ns}".encode()
    with open(path, "rb") as handle:
        header = int.from_bytes(handle.read(8), "little")
        handle.seek(8 + header)
        return hashlib.sha256(handle.read()).digest()


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
    """MusicGen's text encoder (T5) and its tokenizer: gives E_m."""
    from transformers import AutoTokenizer, T5EncoderModel

    model = _load(T5EncoderModel, ref, "T5 encoder").to(device).eval()
    return model, _load(AutoTokenizer, ref, "T5 tokenizer")


def load_musicgen(ref: str, device: str = "cpu", dtype=None):
    """MusicGen (text encoder, Encodec, decoder) and its processor."""
    from transformers import AutoProcessor, MusicgenForConditionalGeneration

    kwargs = {"dtype": dtype} if dtype is not None else {}
    model = _load(MusicgenForConditionalGeneration, ref, "MusicGen", **kwargs).to(device).eval()
    return model, _load(AutoProcessor, ref, "MusicGen processor")


def embedding_dims(refs: ModelRefs) -> dict:
    """The sizes of E_v, E_m and E_r, from the encoders' configs: what a prior must match."""
    from transformers import AutoConfig

    return {"clip_dim": AutoConfig.from_pretrained(refs.clip).projection_dim,
            "music_dim": AutoConfig.from_pretrained(refs.t5).d_model,
            "rationale_dim": AutoConfig.from_pretrained(refs.rationale).hidden_size}


def load_prior(ref: str | None, clip_dim: int, music_dim: int, rationale_dim: int):
    """The distilled prior; an untrained one of the right shape when ``ref`` is None."""
    from cotvtm.prior import PriorConfig, TwoStagePrior

    if ref is None:
        base = PriorConfig.paper()
        return TwoStagePrior(replace(base, clip_dim=clip_dim, music_dim=music_dim, rationale_dim=rationale_dim))
    if not (Path(ref) / "config.json").exists():
        raise ModelError(f"no prior checkpoint at {ref!r} (expected config.json and model.safetensors)")
    return TwoStagePrior.from_pretrained(ref).eval()
