"""Stable Audio 3: an official checkpoint folder -> a folder ``StableAudio3Pipeline`` loads.

Stability AI publishes Stable Audio 3 (``stabilityai/stable-audio-3-medium``, distilled for 8
steps, and ``-medium-base``, 100 steps) in stable-audio-3's own layout: ``model_config.json``,
one ``model.safetensors`` holding the DiT (``model.model.``), the SAME autoencoder
(``pretransform.model.``) and the conditioners (``conditioner.conditioners.<id>.``), and the
T5Gemma text encoder and tokenizer in a subfolder (the prompt conditioner's ``subfolder``,
``t5gemma-b-b-ul2/``). diffusers wants one folder per component, other names for some tensors
and the differential self-attention's fused projection in another order.

The mapping is written once, diffusers' name -> the official one (``_official_name``), and
read both ways: ``convert`` inverts it over every tensor diffusers' classes hold (built on the
meta device, so only names and shapes exist) and refuses a file with a tensor it does not
know, without one diffusers needs, or with one of another shape, naming the file and the key.
Settings that no tensor shows (sampler, conditioning routes, attention window) are read from
the config and refused when diffusers would run them differently. Only safetensors are read:
a pickle (``.ckpt``, ``.bin``) can run code when loaded. ``to_official`` writes a diffusers
pipeline back in the official layout: the round trip is the converter's test.
"""

import json
import math
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cotvtm.errors import CotvtmError, printable

CONFIG = "model_config.json"
WEIGHTS = "model.safetensors"
PICKLES = (".ckpt", ".pt", ".pth", ".bin")  # torch.load formats: unpickling runs whatever the file says
TEXT_ENCODER_DIR = "t5gemma-b-b-ul2"  # where the official repos ship T5Gemma, when the config names no subfolder
# The official NumberEmbedder's Fourier width: a constant of stable-audio-3's code, not in the config.
NUMBER_FOURIER_DIM = 256
# stable-audio-3's TransformerResamplingBlock defaults, for a config that leaves them out.
TRB_DEFAULTS = {"dim_heads": 128, "differential": True, "ff_mult": 3}
# The objective names the sampler: the distilled model re-noises between its 8 steps (ping-pong),
# the base model takes 100 deterministic Euler steps (diffusers' pipeline picks the count).
STOCHASTIC = {"rf_denoiser": True, "rectified_flow": False}
INPAINT_IDS = ["inpaint_mask", "inpaint_masked_input"]  # the official inpainting model's local conditioners

_DIT, _VAE, _COND = "model.model.", "pretransform.model.", "conditioner.conditioners."
# Inside a SAME or DiT transformer block: diffusers' name -> the official one.
_BLOCK_RENAMES = ((r"\.norm_attn\.", ".pre_norm."), (r"\.attn\.", ".self_attn."), (r"\.norm_ff\.", ".ff_norm."),
                  (r"\.ff\.proj_in\.", ".ff.ff.0.proj."), (r"\.ff\.proj_out\.", ".ff.ff.2."))
_MODEL_CLASSES = {"transformer": "StableAudio3DiTModel", "vae": "AutoencoderSAME",
                  "duration_embedder": "StableAudio3DurationEmbedder"}


class ConversionError(CotvtmError):
    """A checkpoint that cannot be converted: the file, the key (or config field) and why."""

    def __init__(self, path, key: str, reason: str):
        super().__init__(f"{printable(path)}: {printable(key)}: {reason}" if key else f"{printable(path)}: {reason}")
        self.path, self.key, self.reason = str(path), key, reason


@dataclass
class Layout:
    """What the official config says, as diffusers' constructor arguments."""

    vae: dict
    dit: dict
    duration: dict
    stochastic: bool
    prompt_id: str
    seconds_id: str
    padding: str  # the prompt conditioner's padding_mode: learned, or zero
    auto_scale: bool  # whether the bottleneck stores its running_std
    inpaint: bool  # whether the DiT has its local (inpainting) conditioning layers
    text_encoder: str  # the text encoder's subfolder


@dataclass
class Converted:
    """What ``convert`` wrote: the folder and the tensors in each component."""

    dst: Path
    tensors: dict = field(default_factory=dict)
    steps: int = 8


# ---------------------------------------------------------------------------------- the config


_REQUIRED = object()


def _field(config: dict, path: str, default=_REQUIRED):
    """The config's value at a dotted ``path``; a ConversionError naming it when it is missing."""
    value = config
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            if default is _REQUIRED:
                raise ConversionError(CONFIG, path, "missing")
            return default
        value = value[part]
    return value


def _require(ok: bool, path: str, reason: str) -> None:
    if not ok:
        raise ConversionError(CONFIG, path, reason)


def _read_config(src: Path) -> dict:
    path = src / CONFIG
    if not path.is_file():
        raise ConversionError(path, "", "missing: an official Stable Audio 3 folder has model_config.json "
                                        "next to model.safetensors")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConversionError(path, "", f"not JSON ({exc})") from None
    _require(isinstance(config, dict), "(top level)", "not a JSON object")
    return config


def _layout(config: dict) -> Layout:
    """The diffusers side of an official config, refusing what diffusers would run differently."""
    try:
        return _read_layout(config)
    except (AttributeError, TypeError, ValueError) as exc:  # a field of the wrong JSON type
        raise ConversionError(CONFIG, "", f"malformed ({exc})") from None


def _read_layout(config: dict) -> Layout:
    conditioners = _conditioners(config)
    prompt, seconds = conditioners["t5gemma"], conditioners["number"]
    diffusion = _field(config, "model.diffusion")
    objective = _field(config, "model.diffusion.diffusion_objective")
    _require(objective in STOCHASTIC, "model.diffusion.diffusion_objective",
             f"{objective!r}: diffusers' Stable Audio 3 samples {' or '.join(STOCHASTIC)} models only")
    _check_routes(diffusion, prompt["id"], seconds["id"])
    padding = prompt.get("config", {}).get("padding_mode", "zero")
    _require(padding in ("learned", "zero"), "model.conditioning.configs[prompt].config.padding_mode",
             f"{padding!r}: diffusers replaces padded text positions with an embedding (learned, or zero)")
    noise = _field(config, "model.pretransform.config.bottleneck.config.noise_augment_dim", 0)
    _require(not noise, "model.pretransform.config.bottleneck.config.noise_augment_dim",
             f"{noise}: diffusers' SAME decodes no noise channels")
    return Layout(vae=_vae(config), dit=_dit(config), duration=_duration(config, seconds),
                  stochastic=STOCHASTIC[objective],
                  prompt_id=prompt["id"], seconds_id=seconds["id"], padding=padding,
                  auto_scale=bool(_field(config, "model.pretransform.config.bottleneck.config.auto_scale", False)),
                  inpaint="local_add_cond_dim" in _field(config, "model.diffusion.config"),
                  text_encoder=_text_encoder_dir(prompt))


def _conditioners(config: dict) -> dict:
    """The text and the duration conditioner: exactly one of each, as diffusers' pipeline has."""
    found: dict = {}
    for entry in _field(config, "model.conditioning.configs"):
        kind = entry.get("type") if isinstance(entry, dict) else None
        _require(kind in ("t5gemma", "number") and kind not in found and "id" in entry,
                 "model.conditioning.configs", f"a {kind!r} conditioner: diffusers' Stable Audio 3 conditions "
                                               "on one T5Gemma prompt and one number (the duration)")
        found[kind] = entry
    _require(len(found) == 2, "model.conditioning.configs", "needs a t5gemma and a number conditioner")
    return found


def _check_routes(diffusion: dict, prompt: str, seconds: str) -> None:
    """diffusers' pipeline feeds the text and the duration to cross-attention and the duration to
    AdaLN, and nothing else: a model trained with other routes would be fed wrongly."""
    routes = {"cross_attention_cond_ids": [prompt, seconds], "global_cond_ids": [seconds],
              "input_concat_ids": [], "prepend_cond_ids": []}
    for name, wanted in routes.items():
        got = diffusion.get(name, [])
        _require(got == wanted, f"model.diffusion.{name}", f"{got}: diffusers' pipeline routes {wanted}")
    local = diffusion.get("local_add_cond_ids", [])
    _require(local in ([], INPAINT_IDS), "model.diffusion.local_add_cond_ids",
             f"{local}: diffusers' inpainting feeds {INPAINT_IDS}")
    dc = diffusion.get("config", {})
    _require(dc.get("global_cond_type", "prepend") == "adaLN", "model.diffusion.config.global_cond_type",
             "diffusers' DiT takes the global conditioning through AdaLN only")
    _require(not dc.get("timestep_features_logsnr", False), "model.diffusion.config.timestep_features_logsnr",
             "diffusers' DiT embeds the timestep itself, not its log-SNR")


def _dit(config: dict) -> dict:
    base = "model.diffusion.config"
    dc = _field(config, base)
    need = {name: _field(config, f"{base}.{name}") for name in
            ("io_channels", "embed_dim", "depth", "num_heads", "cond_token_dim", "global_cond_dim")}
    return {**need, "patch_size": dc.get("patch_size", 1),
            # without inpainting layers, diffusers' are filled with zeros: a no-op, as in the original
            "local_add_cond_dim": dc.get("local_add_cond_dim", need["io_channels"] + 1),
            "timestep_features_dim": dc.get("timestep_features_dim", 256),
            "ff_mult": float(dc.get("ff_kwargs", {}).get("mult", 4)),
            "num_memory_tokens": dc.get("num_memory_tokens", 0),
            "use_differential_attention": bool(dc.get("attn_kwargs", {}).get("differential", False))}


def _vae(config: dict) -> dict:
    """AutoencoderSAME's arguments: diffusers builds its decoder from the encoder's settings, so
    a decoder configured otherwise is refused."""
    base = "model.pretransform.config"
    enc, dec = _field(config, f"{base}.encoder.config"), _field(config, f"{base}.decoder.config")
    shared = ("channels", "c_mults", "strides", "transformer_depths", "latent_dim", "sliding_window", *TRB_DEFAULTS)
    for name in shared:
        _require(enc.get(name, TRB_DEFAULTS.get(name)) == dec.get(name, TRB_DEFAULTS.get(name)),
                 f"{base}.decoder.config.{name}", "differs from the encoder's: diffusers' SAME shares them")
    oversampling = _field(config, f"{base}.pretransform.config.oversampling", 1)
    _require(oversampling == 1, f"{base}.pretransform.config.oversampling",
             f"{oversampling}: diffusers resamples nothing")
    need = {name: _field(config, f"{base}.encoder.config.{name}") for name in
            ("channels", "c_mults", "strides", "transformer_depths", "latent_dim")}
    levels = len(need["strides"])
    return {"audio_channels": _field(config, f"{base}.io_channels"),
            "patch_size": _field(config, f"{base}.pretransform.config.patch_size"),
            "encoder_channels": need["channels"], "encoder_c_mults": list(need["c_mults"]),
            "encoder_strides": list(need["strides"]), "encoder_transformer_depths": list(need["transformer_depths"]),
            "latent_dim": need["latent_dim"], "use_differential_attention": bool(enc.get("differential", True)),
            "dim_heads": enc.get("dim_heads", TRB_DEFAULTS["dim_heads"]),
            "ff_mult": enc.get("ff_mult", TRB_DEFAULTS["ff_mult"]),
            "sliding_window": _half_window(enc.get("sliding_window"), f"{base}.encoder.config.sliding_window"),
            "encoder_sinusoidal_blocks": _per_level(enc.get("sinusoidal_blocks", 0), levels),
            "decoder_sinusoidal_blocks": _per_level(dec.get("sinusoidal_blocks", 0), levels),
            "sampling_rate": _field(config, "sample_rate")}


def _half_window(window, path: str) -> int:
    """diffusers' SAME attends within a symmetric band: the official [left, right] must be equal."""
    if isinstance(window, int):
        return window
    _require(isinstance(window, list) and len(window) == 2 and window[0] == window[1] and isinstance(window[0], int),
             path, f"{window}: diffusers' SAME needs a symmetric sliding window")
    return window[0]


def _per_level(value, levels: int) -> list:
    return [value] * levels if isinstance(value, int) else list(value)[:levels]


def _duration(config: dict, seconds: dict) -> dict:
    options = seconds.get("config", {})
    return {"output_dim": _field(config, "model.conditioning.cond_dim"), "fourier_dim": NUMBER_FOURIER_DIM,
            "min_val": float(options.get("min_val", 0)), "max_val": float(options.get("max_val", 1))}


def _text_encoder_dir(prompt: dict) -> str:
    options = prompt.get("config", {})
    name = options.get("subfolder") or str(options.get("model_name", TEXT_ENCODER_DIR)).rsplit("/", 1)[-1]
    _require(name not in ("", ".", "..") and "/" not in name and "\\" not in name,
             "model.conditioning.configs[prompt].config.subfolder", f"{name!r}: not a folder name")
    return name


# ------------------------------------------------------------------------------------ the names


def _renamed(key: str) -> str:
    for pattern, official in _BLOCK_RENAMES:
        key = re.sub(pattern, official, key)
    return key


def _official_name(component: str, key: str, layout: Layout) -> str:
    """Where the official checkpoint keeps diffusers' ``component``.``key``."""
    if component == "duration_embedder":
        return f"{_COND}{layout.seconds_id}.embedder.embedding.1.{key.removeprefix('linear.')}"
    if component == "transformer":
        if key == "prompt_padding_embedding":
            return f"{_COND}{layout.prompt_id}.padding_embedding"
        key = re.sub(r"^proj_(in|out)\.", r"transformer.project_\1.", key)
        key = re.sub(r"^(memory_tokens$|rotary_pos_emb\.|global_cond_embedder\.)", r"transformer.\1", key)
        return _DIT + _renamed(re.sub(r"^transformer_blocks\.", "transformer.layers.", key))
    levels = len(layout.vae["encoder_strides"])  # encoder: blocks, Transpose, Linear; decoder: Transpose, Linear, ...
    key = re.sub(r"^encoder\.blocks\.(\d+)\.", r"encoder.layers.\1.", key)
    key = re.sub(r"^encoder\.proj\.", f"encoder.layers.{levels + 1}.", key)
    key = re.sub(r"^decoder\.proj\.", "decoder.layers.1.", key)
    key = re.sub(r"^decoder\.blocks\.(\d+)\.", lambda m: f"decoder.layers.{int(m[1]) + 3}.", key)
    return _VAE + _renamed("bottleneck.scaling_factor" if key == "bottleneck.scale" else key)


def _models(layout: Layout) -> dict:
    """diffusers' modules on the meta device: every tensor's name and shape, no memory."""
    from diffusers import AutoencoderSAME, StableAudio3DiTModel, StableAudio3DurationEmbedder

    try:
        with torch.device("meta"):
            return {"transformer": StableAudio3DiTModel(**layout.dit), "vae": AutoencoderSAME(**layout.vae),
                    "duration_embedder": StableAudio3DurationEmbedder(**layout.duration)}
    except (TypeError, ValueError, RuntimeError, ZeroDivisionError) as exc:  # sizes no model can have
        raise ConversionError(CONFIG, "", f"describes a model diffusers cannot build ({exc})") from None


def _fills(layout: Layout, models: dict) -> dict:
    """diffusers' tensors the official file does not hold, and their values: computed buffers,
    and what an official model without the part does (no running std, zero padding, no inpainting)."""
    from diffusers import StableAudio3DurationEmbedder

    fills = {("duration_embedder", "freqs"): StableAudio3DurationEmbedder(**layout.duration).freqs}
    if not layout.auto_scale:
        fills[("vae", "bottleneck.running_std")] = torch.ones(1)
    if layout.padding == "zero":
        fills[("transformer", "prompt_padding_embedding")] = torch.zeros(layout.dit["cond_token_dim"])
    if not layout.inpaint:
        fills.update({("transformer", key): torch.zeros(value.shape)
                      for key, value in models["transformer"].state_dict().items() if ".to_local_embed." in key})
    return fills


def _derived(layout: Layout, models: dict) -> dict:
    """Official tensors diffusers computes instead of storing: each SAME block's rotary
    frequencies, and the bottleneck's (empty) noise scale."""
    derived = {f"{_VAE}bottleneck.noise_scaling_factor": torch.ones(1, 0, 1)}
    for name, module in models["vae"].named_modules():
        attn = getattr(module, "attn", None)
        if attn is not None:  # a SAME transformer block: the official keeps its RoPE on the block
            rope = type(attn.rope)(attn.dim_heads // 2)
            derived[_official_name("vae", f"{name}.rope.inv_freq", layout)] = rope.inv_freq
    return derived


def _table(layout: Layout, models: dict) -> dict:
    """Official name -> (component, diffusers name, shape) for every tensor the file must hold."""
    fills = _fills(layout, models)
    return {_official_name(component, key, layout): (component, key, tuple(value.shape))
            for component, model in models.items() for key, value in model.state_dict().items()
            if (component, key) not in fills}


def _is_qkv(key: str, tensor) -> bool:
    """A differential self-attention's fused projection: five blocks of rows."""
    shape = tuple(tensor.shape)
    return key.endswith("to_qkv.weight") and len(shape) == 2 and shape[0] == 5 * shape[1]


def _qkv_to_diffusers(weight: torch.Tensor) -> torch.Tensor:
    q, k, v, q2, k2 = weight.chunk(5)  # official: [q | k | v | q2 | k2]
    return torch.cat([q, q2, k, k2, v])  # diffusers: [q1 | q2 | k1 | k2 | v]


def _qkv_to_official(weight: torch.Tensor) -> torch.Tensor:
    q, q2, k, k2, v = weight.chunk(5)
    return torch.cat([q, k, v, q2, k2])


# ---------------------------------------------------------------------------------- conversion


def convert(src_dir, dst_dir) -> Converted:
    """Convert the official folder ``src_dir`` into the diffusers folder ``dst_dir``. Every input is
    checked (config, both weight files' headers, the tokenizer) before anything is written; the
    folder is written beside ``dst_dir`` and renamed into place: complete, or absent."""
    from cotvtm.model_folders import regular_files
    from cotvtm.quiet import quiet_diffusers

    quiet_diffusers()
    src, dst = Path(src_dir), Path(dst_dir)
    if not src.is_dir():
        raise ConversionError(src, "", "not a folder (the official checkpoint's local copy)")
    _check_destination(dst)
    regular_files("SRC", src)  # a FIFO or device named in a config would block the reads below
    layout, models = _described(src)
    text = _TextEncoder(src / layout.text_encoder, layout)
    weights = _weights(src)
    table = _checked_table(weights, layout, models)
    done = Converted(dst, steps=8 if layout.stochastic else 100)
    with _staging(dst) as staging:
        done.tensors = _write_models(weights, layout, models, table, staging)
        done.tensors["text_encoder"] = text.write(staging)
        _scheduler(layout.stochastic).save_pretrained(staging / "scheduler")
        _write_index(staging, text.tokenizer)
    return done


def _described(src: Path) -> tuple:
    """The layout and the (meta) models ``src``'s config describes; its errors name the config's path."""
    try:
        layout = _layout(_read_config(src))
        return layout, _models(layout)
    except ConversionError as exc:
        if exc.path != CONFIG:
            raise
        raise ConversionError(src / CONFIG, exc.key, exc.reason) from None


def _check_destination(dst: Path) -> None:
    if dst.exists() and not (dst.is_dir() and not any(dst.iterdir())):
        raise ConversionError(dst, "", "exists and is not an empty folder; name a new one")


@contextmanager
def _staging(dst: Path):
    """A private folder beside ``dst``, renamed to it when the body succeeds, removed otherwise."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}-", dir=dst.parent))
    try:
        yield staging
        try:
            os.rename(staging, dst)  # replaces an empty folder; fails on one filled meanwhile
        except OSError as exc:
            raise ConversionError(dst, "", f"cannot be written ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _weights(folder: Path) -> Path:
    """The folder's ``model.safetensors``; a pickle in its place is refused, never opened."""
    path = folder / WEIGHTS
    if path.is_file():
        return path
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLES)
    if pickles:
        raise ConversionError(folder / pickles[0], "", f"a pickle (it can run code when loaded) is not read: "
                                                       f"download the safetensors form, {WEIGHTS}")
    raise ConversionError(path, "", "missing")


def _open(path: Path):
    from safetensors import safe_open

    try:
        return safe_open(str(path), framework="pt")
    except Exception as exc:  # safetensors raises its own error type for a corrupt header
        raise ConversionError(path, "", f"not a readable safetensors file ({exc})") from None


def _shapes(f) -> dict:
    """Each tensor's shape, from the file's header alone."""
    return {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}


def _check_names(path: Path, shapes: dict, table: dict, unused) -> None:
    """Every key known (in ``table`` or ``unused``), none missing, every shape diffusers'."""
    for key in sorted(shapes):
        if key in table:
            component, name, wanted = table[key]
            if shapes[key] != wanted:
                raise ConversionError(path, key, f"shape {list(shapes[key])} where diffusers' {component} "
                                                 f"{name} is {list(wanted)}")
        elif key not in unused:
            raise ConversionError(path, key, "unknown key: nothing in diffusers' Stable Audio 3 takes it")
    missing = sorted(table.keys() - shapes.keys())
    if missing:
        component, name, _ = table[missing[0]]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ConversionError(path, missing[0], f"missing: diffusers' {component} needs it as {name}{more}")


def _checked_table(weights: Path, layout: Layout, models: dict) -> dict:
    """The mapping, once the file's header has every tensor it names and no other; the tensors
    diffusers computes itself must equal its values."""
    table, derived = _table(layout, models), _derived(layout, models)
    with _open(weights) as f:
        _check_names(weights, _shapes(f), table, derived)
        for key in derived.keys() & set(f.keys()):
            found, computed = f.get_tensor(key), derived[key]
            # compared at the file's precision: a half-precision checkpoint rounds them too
            if found.shape != computed.shape or not torch.allclose(found.float(), computed.to(found.dtype).float()):
                raise ConversionError(weights, key, "differs from what diffusers computes in its place "
                                                    "(a variant diffusers does not implement)")
    return table


def _write_models(weights: Path, layout: Layout, models: dict, table: dict, staging: Path) -> dict:
    """The DiT, the autoencoder and the duration embedder out of the one official file, one at a
    time: the largest component bounds the memory, not the file."""
    fills, counts = _fills(layout, models), {}
    with _open(weights) as f:
        for component, model in models.items():
            state = {key: value for (part, key), value in fills.items() if part == component}
            for official, (part, key, _) in table.items():
                if part == component:
                    tensor = f.get_tensor(official)
                    state[key] = _qkv_to_diffusers(tensor) if _is_qkv(key, tensor) else tensor
            _save(state, staging / component, "diffusion_pytorch_model.safetensors", model.save_config)
            counts[component] = len(state)
    return counts


def _save(state: dict, folder: Path, name: str, write_config) -> None:
    from safetensors.torch import save_file

    folder.mkdir()
    write_config(folder)
    save_file({key: value.contiguous() for key, value in state.items()}, folder / name, metadata={"format": "pt"})


class _TextEncoder:
    """T5Gemma's folder, checked on creation: its config, its weights' header, its tokenizer. The
    official folder holds the whole encoder-decoder (keys under ``model.``); the decoder and its
    head are left out, as the pipeline never runs them."""

    def __init__(self, folder: Path, layout: Layout):
        from transformers import T5GemmaEncoderModel

        if not folder.is_dir():
            raise ConversionError(folder, "", "missing: the text encoder's folder (the prompt conditioner's "
                                              "subfolder)")
        self.config = _text_config(folder, layout)
        with torch.device("meta"):
            self.model = T5GemmaEncoderModel(self.config)
        self.weights = _weights(folder)
        self.table = {f"model.{key}": ("text_encoder", key, tuple(value.shape))
                      for key, value in self.model.state_dict().items()}
        with _open(self.weights) as f:
            shapes = _shapes(f)
        unused = {key for key in shapes if re.match(r"^(model\.)?decoder\.|^lm_head\.", key)}
        # saved alone, T5Gemma's encoder has no "model." before its keys
        self.names = {key if key in self.table or key in unused else f"model.{key}": key for key in shapes}
        _check_names(self.weights, {name: shapes[key] for name, key in self.names.items()}, self.table, unused)
        self.loaded = _tokenizer(folder)
        self.tokenizer = type(self.loaded).__name__

    def write(self, staging: Path) -> int:
        with _open(self.weights) as f:
            state = {key: f.get_tensor(self.names[name]) for name, (_, key, _) in self.table.items()}
        _save(state, staging / "text_encoder", WEIGHTS, self.config.save_pretrained)
        self.loaded.save_pretrained(staging / "tokenizer")
        return len(state)


def _text_config(folder: Path, layout: Layout):
    """T5Gemma's config as diffusers' pipeline loads it: the encoder alone."""
    from transformers import T5GemmaConfig

    path = folder / "config.json"
    if not path.is_file():
        raise ConversionError(path, "", "missing: the text encoder's config (T5Gemma)")
    try:
        config = T5GemmaConfig.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # transformers raises several types for a config it cannot read
        raise ConversionError(path, "", f"not a T5Gemma config ({exc})") from None
    config.is_encoder_decoder, config.architectures = False, ["T5GemmaEncoderModel"]
    width = config.encoder.hidden_size
    if width != layout.dit["cond_token_dim"]:
        raise ConversionError(path, "encoder.hidden_size", f"{width}: the DiT's text width is "
                                                           f"{layout.dit['cond_token_dim']}")
    return config


def _tokenizer(folder: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # a missing or unreadable tokenizer file, whatever transformers calls it
        raise ConversionError(folder, "tokenizer", f"cannot be loaded ({exc})") from None


def _scheduler(stochastic: bool):
    from diffusers import FlowMatchEulerDiscreteScheduler

    # timesteps in [0, 1] as the DiT was trained with; no shift: the pipeline warps by log-SNR itself
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0, stochastic_sampling=stochastic)


def _write_index(staging: Path, tokenizer: str) -> None:
    import diffusers

    index = {"_class_name": "StableAudio3Pipeline", "_diffusers_version": diffusers.__version__,
             **{component: ["diffusers", name] for component, name in _MODEL_CLASSES.items()},
             "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
             "text_encoder": ["transformers", "T5GemmaEncoderModel"], "tokenizer": ["transformers", tokenizer]}
    (staging / "model_index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------- and back again


def to_official(pipeline, dst_dir) -> Path:
    """Write a diffusers ``StableAudio3Pipeline`` in the official layout (config, one weights file,
    the text encoder's folder): the inverse of ``convert``, which it documents and tests."""
    from safetensors.torch import save_file

    config = official_config(pipeline)
    layout = _layout(config)
    models = {component: getattr(pipeline, component) for component in _MODEL_CLASSES}
    states = {component: model.state_dict() for component, model in models.items()}
    tensors = dict(_derived(layout, models))
    for official, (component, key, _) in _table(layout, models).items():
        tensor = states[component][key]
        tensors[official] = _qkv_to_official(tensor) if _is_qkv(key, tensor) else tensor
    dst = Path(dst_dir)
    with _staging(dst) as staging:
        (staging / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, staging / WEIGHTS,
                  metadata={"format": "pt"})
        _official_text_encoder(pipeline, staging / layout.text_encoder)
    return dst


def _official_text_encoder(pipeline, folder: Path) -> None:
    """T5Gemma as the official folder holds it: an encoder-decoder config, keys under ``model.``."""
    from safetensors.torch import save_file

    folder.mkdir()
    config = pipeline.text_encoder.config.__class__.from_dict(pipeline.text_encoder.config.to_dict())
    config.is_encoder_decoder, config.architectures = True, ["T5GemmaForConditionalGeneration"]
    config.save_pretrained(folder)
    state = {f"model.{key}": value.detach().contiguous() for key, value in pipeline.text_encoder.state_dict().items()}
    save_file(state, folder / WEIGHTS, metadata={"format": "pt"})
    pipeline.tokenizer.save_pretrained(folder)


def official_config(pipeline) -> dict:
    """The official ``model_config.json`` of a diffusers pipeline (what ``_layout`` reads back)."""
    vae, dit, duration = pipeline.vae.config, pipeline.transformer.config, pipeline.duration_embedder.config
    if (duration.fourier_dim, duration.min_freq, duration.max_freq) != (NUMBER_FOURIER_DIM, 0.5, 10000.0):
        raise ConversionError("duration_embedder", "config", "the official NumberEmbedder has 256 "
                                                             "Fourier features from 0.5 to 10000")
    prompt = {"id": "prompt", "type": "t5gemma",
              "config": {"max_length": 256, "padding_mode": "learned", "subfolder": TEXT_ENCODER_DIR}}
    seconds = {"id": "seconds_total", "type": "number",
               "config": {"min_val": duration.min_val, "max_val": duration.max_val, "fourier_features_type": "expo"}}
    return {"model_type": "diffusion_cond_inpaint", "sample_rate": vae.sampling_rate,
            "audio_channels": vae.audio_channels,
            "model": {"io_channels": dit.io_channels, "pretransform": _official_vae(vae),
                      "conditioning": {"configs": [prompt, seconds], "cond_dim": duration.output_dim},
                      "diffusion": _official_dit(dit, pipeline.scheduler.config.stochastic_sampling)}}


def _official_vae(vae) -> dict:
    shared = {"channels": vae.encoder_channels, "c_mults": list(vae.encoder_c_mults),
              "strides": list(vae.encoder_strides), "transformer_depths": list(vae.encoder_transformer_depths),
              "latent_dim": vae.latent_dim, "dim_heads": vae.dim_heads, "differential": vae.use_differential_attention,
              "ff_mult": vae.ff_mult, "sliding_window": [vae.sliding_window] * 2, "variable_stride": True}
    patched, sinusoidal = vae.audio_channels * vae.patch_size, set(vae.encoder_sinusoidal_blocks)
    if len(sinusoidal) != 1:
        raise ConversionError("vae", "encoder_sinusoidal_blocks", "the official encoder takes one count for all levels")
    return {"type": "autoencoder", "config": {
        "encoder": {"type": "same", "config": {**shared, "in_channels": patched,
                                               "sinusoidal_blocks": sinusoidal.pop()}},
        "decoder": {"type": "same", "config": {**shared, "out_channels": patched,
                                               "sinusoidal_blocks": list(vae.decoder_sinusoidal_blocks)}},
        "bottleneck": {"type": "soft_norm", "config": {"dim": vae.latent_dim, "auto_scale": True}},
        "pretransform": {"type": "patched", "config": {"channels": vae.audio_channels, "patch_size": vae.patch_size}},
        "latent_dim": vae.latent_dim, "io_channels": vae.audio_channels,
        "downsampling_ratio": vae.patch_size * math.prod(vae.encoder_strides)}}


def _official_dit(dit, stochastic: bool) -> dict:
    objective = next(name for name, value in STOCHASTIC.items() if value == bool(stochastic))
    names = ("io_channels", "patch_size", "embed_dim", "depth", "num_heads", "cond_token_dim", "global_cond_dim",
             "local_add_cond_dim", "num_memory_tokens", "timestep_features_dim")
    return {"type": "dit", "diffusion_objective": objective,
            "cross_attention_cond_ids": ["prompt", "seconds_total"], "global_cond_ids": ["seconds_total"],
            "local_add_cond_ids": INPAINT_IDS,
            "config": {**{name: dit[name] for name in names}, "global_cond_type": "adaLN",
                       "timestep_features_type": "expo", "transformer_type": "continuous_transformer",
                       "norm_type": "rms_norm", "norm_kwargs": {"force_fp32": True}, "ff_kwargs": {"mult": dit.ff_mult},
                       "attn_kwargs": {"qk_norm": "rms", "differential": dit.use_differential_attention}}}
