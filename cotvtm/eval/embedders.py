"""Pluggable evaluation models: one reference per metric, loaded by kind and location.

A reference is ``KIND:LOCATION`` (the location may itself contain colons, e.g. a URL):

    cnn14:URL|FILE.pth|DIR   PANNs CNN14: embedding (FD) and AudioSet logits (KL). A PANNs
                             checkpoint file is read as published (``{"model": state_dict}``);
                             "16k" in its name selects the 16 kHz front end.
    vggish:URL|FILE.pth|DIR  VGGish per-0.96 s embeddings (FAD), torchvggish's weights.
    hf:ID|DIR                a transformers audio encoder (HuBERT, wav2vec 2.0, ...): mean of
                             all hidden layers over time (P@10)
    hf-remote:ID|DIR         the same for checkpoints that ship their own modelling code (MERT):
                             loaded with trust_remote_code, so name only repositories you trust
    clip-va:ID|DIR           valence/arousal of frames by CLIP zero-shot prompts (EMS, visual side)
    clap-va:ID|DIR           valence/arousal of music by CLAP zero-shot prompts (EMS, music side)
    cnn14-va:DIR             a CNN14 regressor with two outputs, tanh -> (valence, arousal)
    imagebind:huge           ImageBind's vision and audio towers (IB score); needs the
                             ``imagebind`` package, which needs torchvision and torchaudio
    joint:DIR                a CNN14 audio tower and a small image net in one space (tiny IB)

Each loader returns an object with the methods its metric calls (``embed``, ``logits``,
``embed_audio``/``embed_visual``, ``audio_va``/``visual_va``) and a ``sample_rate``. Audio
comes in as mono float32 at that rate; frames as (F, H, W, 3) uint8 per item.

Presets: ``paper`` names the standard checkpoints (downloaded on a machine with hub access);
``tiny`` builds the same architectures at toy size with seeded random weights into the
model cache, so every metric's code path runs offline. Tiny numbers test the plumbing only:
random networks measure nothing about music.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from cotvtm.errors import ModelError
from cotvtm.eval.features import MelConfig
from cotvtm.eval.nets import Cnn14, Cnn14Config, VGGish, VGGishConfig, VisualConfig, VisualNet

PANNS_16K = "https://zenodo.org/record/3987831/files/Cnn14_16k_mAP%3D0.438.pth?download=1"
VGGISH_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
TINY_EVAL_VERSION = 3

# zero-shot prompt pairs: (positive, negative) for valence, then arousal
VISUAL_VA_PROMPTS = (("a photo with a pleasant, happy mood", "a photo with an unpleasant, sad mood"),
                     ("an exciting, energetic, intense photo", "a calm, still, relaxing photo"))
MUSIC_VA_PROMPTS = (("happy, cheerful, positive music", "sad, gloomy, negative music"),
                    ("energetic, intense, fast music", "calm, soft, slow music"))


@dataclass(frozen=True)
class EvalModels:
    """One reference per metric role."""

    fd: str
    fad: str
    kl: str
    ib: str
    p10: str
    ems_audio: str
    ems_visual: str


PAPER = EvalModels(
    fd=f"cnn14:{PANNS_16K}",  # audioldm_eval's PANNs at 16 kHz
    fad=f"vggish:{VGGISH_URL}",
    kl=f"cnn14:{PANNS_16K}",
    ib="imagebind:huge",
    p10="hf-remote:m-a-p/MERT-v1-95M",
    ems_audio="clap-va:laion/clap-htsat-unfused",
    ems_visual="clip-va:openai/clip-vit-base-patch32",
)


def resolve_eval_models(preset: str, cache_dir: Path, seed: int = 0, clip_ref: str | None = None,
                        **overrides: str | None) -> EvalModels:
    """The preset's references with per-role overrides; ``tiny`` is built into ``cache_dir`` first."""
    if preset == "tiny":
        root = build_tiny(cache_dir, seed)
        base = EvalModels(fd=f"cnn14:{root / 'cnn14'}", fad=f"vggish:{root / 'vggish'}", kl=f"cnn14:{root / 'cnn14'}",
                          ib=f"joint:{root / 'joint'}", p10=f"hf:{root / 'hubert'}",
                          ems_audio=f"clap-va:{root / 'clap'}", ems_visual=f"clip-va:{clip_ref}")
    elif preset in ("paper", "fast"):
        base = PAPER
    else:
        raise ModelError(f"unknown evaluation preset {preset!r}; choose tiny, fast or paper")
    return replace(base, **{k: v for k, v in overrides.items() if v})


# ---- audio towers ---------------------------------------------------------------------------


def _padded(net, clip: np.ndarray, device) -> torch.Tensor:
    wave = torch.as_tensor(np.asarray(clip, np.float32), device=device)
    need = net.min_samples()
    if len(wave) < need:
        wave = torch.nn.functional.pad(wave, (0, need - len(wave)))
    return wave[None]


class Cnn14Audio:
    """FD embeddings and KL logits from one CNN14, one clip at a time (clips differ in length)."""

    def __init__(self, net: Cnn14, device: str):
        self.net, self.device = net.to(device).eval(), device
        self.sample_rate = net.cfg.mel.sample_rate

    @torch.inference_mode()
    def _run(self, clips):
        return [self.net(_padded(self.net, c, self.device)) for c in clips]

    def embed(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        return [e.float().cpu().numpy() for e, _ in self._run(clips)]

    def logits(self, clips: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([l.float().cpu().numpy() for _, l in self._run(clips)])

    def audio_va(self, clips: list[np.ndarray]) -> np.ndarray:
        return np.tanh(self.logits(clips)[:, :2])


class VGGishAudio:
    def __init__(self, net: VGGish, device: str):
        self.net, self.device = net.to(device).eval(), device
        self.sample_rate = VGGish.mel_config.sample_rate

    @torch.inference_mode()
    def embed(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        return [self.net(_padded(self.net, c, self.device)).float().cpu().numpy() for c in clips]


class HFAudio:
    """A transformers speech/music encoder; features = mean over layers and time."""

    def __init__(self, ref: str, device: str, remote: bool = False):
        from transformers import AutoFeatureExtractor, AutoModel

        from cotvtm.quiet import quiet_transformers

        quiet_transformers()
        try:
            self.extractor = AutoFeatureExtractor.from_pretrained(ref, trust_remote_code=remote)
            self.model = AutoModel.from_pretrained(ref, trust_remote_code=remote).to(device).eval()
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load audio encoder {ref!r}: {exc}") from exc
        self.device, self.sample_rate = device, int(self.extractor.sampling_rate)

    @torch.inference_mode()
    def embed(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for clip in clips:
            inputs = self.extractor(np.asarray(clip, np.float32), sampling_rate=self.sample_rate,
                                    return_tensors="pt").to(self.device)
            states = self.model(**inputs, output_hidden_states=True).hidden_states
            out.append(torch.stack(states).mean(dim=(0, 2)).float().cpu().numpy())
        return out


def _zero_shot_va(media: torch.Tensor, texts: torch.Tensor, scale: float) -> np.ndarray:
    """(N, D) media and (4, D) prompt embeddings (pos, neg, pos, neg) -> (N, 2) in [-1, 1]."""
    logits = scale * torch.nn.functional.normalize(media.float(), dim=-1) @ \
        torch.nn.functional.normalize(texts.float(), dim=-1).T
    valence = logits[:, :2].softmax(-1)
    arousal = logits[:, 2:].softmax(-1)
    return torch.stack([valence[:, 0] - valence[:, 1], arousal[:, 0] - arousal[:, 1]], -1).cpu().numpy()


class ClipVA:
    """Valence/arousal of frames: CLIP similarity to two antonym prompt pairs."""

    sample_rate = None

    def __init__(self, ref: str, device: str):
        from cotvtm.encoders.clip import ClipEncoder

        self.clip = ClipEncoder(ref, device)
        self.scale = float(self.clip.model.logit_scale.detach().exp())
        self.prompts = torch.from_numpy(self.clip.embed_texts([p for pair in VISUAL_VA_PROMPTS for p in pair]))

    def visual_va(self, frames: list[np.ndarray]) -> np.ndarray:
        media = torch.from_numpy(np.stack([self.clip.embed_images(f).mean(0) for f in frames]))
        return _zero_shot_va(media, self.prompts, self.scale)


class ClapVA:
    """Valence/arousal of music: CLAP similarity to two antonym prompt pairs."""

    def __init__(self, ref: str, device: str):
        from transformers import ClapModel, ClapProcessor

        from cotvtm.quiet import quiet_transformers

        quiet_transformers()
        try:
            self.model = ClapModel.from_pretrained(ref).to(device).eval()
            self.processor = ClapProcessor.from_pretrained(ref)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load CLAP from {ref!r}: {exc}") from exc
        self.device = device
        self.sample_rate = int(self.processor.feature_extractor.sampling_rate)
        self.scale = float(self.model.logit_scale_a.detach().exp())
        with torch.inference_mode():
            tokens = self.processor(text=[p for pair in MUSIC_VA_PROMPTS for p in pair], padding=True,
                                    return_tensors="pt").to(device)
            self.prompts = _pooled(self.model.get_text_features(**tokens))

    @torch.inference_mode()
    def audio_va(self, clips: list[np.ndarray]) -> np.ndarray:
        inputs = self.processor(audio=[np.asarray(c, np.float32) for c in clips], sampling_rate=self.sample_rate,
                                return_tensors="pt").to(self.device)
        return _zero_shot_va(_pooled(self.model.get_audio_features(**inputs)), self.prompts, self.scale)


def _pooled(features) -> torch.Tensor:
    """transformers 5 returns output objects from get_*_features; the projection is pooler_output."""
    return getattr(features, "pooler_output", features)


class JointTiny:
    """A CNN14 audio tower and a small image net projecting into one space (ImageBind-style)."""

    def __init__(self, audio: Cnn14, visual: VisualNet, device: str):
        self.audio, self.visual = Cnn14Audio(audio, device), visual.to(device).eval()
        self.device, self.sample_rate = device, self.audio.sample_rate

    def embed_audio(self, clips: list[np.ndarray]) -> np.ndarray:
        return self.audio.logits(clips)

    @torch.inference_mode()
    def embed_visual(self, frames: list[np.ndarray]) -> np.ndarray:
        return np.stack([self.visual(torch.tensor(f, device=self.device)).mean(0).float().cpu().numpy()
                         for f in frames])


class ImageBindJoint:
    """ImageBind (huge): vision and audio embeddings in its joint space, through its own loaders."""

    def __init__(self, variant: str, device: str):
        try:
            from imagebind import data
            from imagebind.models import imagebind_model
            from imagebind.models.imagebind_model import ModalityType
        except ImportError as exc:
            raise ModelError("the IB score needs ImageBind: pip install imagebind-packaged (it needs torchvision "
                             f"and torchaudio builds matching your torch); or pass --ib joint:DIR ({exc})") from exc
        if variant != "huge":
            raise ModelError(f"unknown ImageBind variant {variant!r}; the published one is 'huge'")
        self.data, self.types, self.device = data, ModalityType, device
        self.model = imagebind_model.imagebind_huge(pretrained=True).to(device).eval()
        self.sample_rate = 16000

    @torch.inference_mode()
    def _run(self, kind: str, paths: list[str]) -> np.ndarray:
        loader = {"audio": self.data.load_and_transform_audio_data,
                  "vision": self.data.load_and_transform_vision_data}[kind]
        key = getattr(self.types, kind.upper())
        return self.model({key: loader(paths, self.device)})[key].float().cpu().numpy()

    def embed_audio(self, clips: list[np.ndarray]) -> np.ndarray:
        import soundfile as sf

        with tempfile.TemporaryDirectory() as tmp:
            paths = [os.path.join(tmp, f"{i}.wav") for i in range(len(clips))]
            for path, clip in zip(paths, clips):
                sf.write(path, clip, self.sample_rate)
            return self._run("audio", paths)

    def embed_visual(self, frames: list[np.ndarray]) -> np.ndarray:
        from PIL import Image

        with tempfile.TemporaryDirectory() as tmp:
            out = []
            for i, item in enumerate(frames):
                paths = [os.path.join(tmp, f"{i}-{j}.png") for j in range(len(item))]
                for path, frame in zip(paths, item):
                    Image.fromarray(frame).save(path)
                out.append(self._run("vision", paths).mean(0))
            return np.stack(out)


# ---- loading ---------------------------------------------------------------------------------


def _state_dict(location: str) -> dict:
    """A published checkpoint from a URL or a .pth file; PANNs nests it under ``model``."""
    try:
        if "://" in location:
            state = torch.hub.load_state_dict_from_url(location, map_location="cpu", weights_only=True)
        else:
            state = torch.load(location, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as exc:  # the last: code refused
        raise ModelError(f"cannot read checkpoint {location!r}: {exc}") from exc
    return state.get("model", state)


def _load_dir(location: str, kind: str) -> tuple[dict, dict]:
    from safetensors.torch import load_file

    path = Path(location)
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise ModelError(f"{location}: not a {kind} checkpoint (expected config.json and model.safetensors)")
    return json.loads((path / "config.json").read_text()), load_file(str(path / "model.safetensors"))


def _into(net: torch.nn.Module, state: dict, location: str) -> torch.nn.Module:
    wanted = set(net.state_dict())
    state = {k: v for k, v in state.items() if k in wanted}  # PANNs files also carry their STFT/mel buffers
    missing = sorted(wanted - set(state))
    if missing:
        raise ModelError(f"{location}: checkpoint lacks {len(missing)} weights (first: {missing[0]})")
    net.load_state_dict(state, strict=True)
    return net.eval()


def load_cnn14(location: str) -> Cnn14:
    if Path(location).is_dir():
        config, state = _load_dir(location, "CNN14")
        return _into(Cnn14(Cnn14Config.from_dict(config["cnn14"])), state, location)
    rate = 16000 if "16k" in location else 32000
    return _into(Cnn14(Cnn14Config(mel=MelConfig.panns(rate))), _state_dict(location), location)


def load_vggish(location: str) -> VGGish:
    if Path(location).is_dir():
        config, state = _load_dir(location, "VGGish")
        return _into(VGGish(VGGishConfig.from_dict(config["vggish"])), state, location)
    return _into(VGGish(), _state_dict(location), location)


def load_joint(location: str, device: str) -> JointTiny:
    config, state = _load_dir(location, "joint")
    audio = _into(Cnn14(Cnn14Config.from_dict(config["cnn14"])),
                  {k[6:]: v for k, v in state.items() if k.startswith("audio.")}, location)
    visual = _into(VisualNet(VisualConfig.from_dict(config["visual"])),
                   {k[7:]: v for k, v in state.items() if k.startswith("visual.")}, location)
    return JointTiny(audio, visual, device)


LOADERS = {
    "cnn14": lambda loc, dev: Cnn14Audio(load_cnn14(loc), dev),
    "cnn14-va": lambda loc, dev: Cnn14Audio(load_cnn14(loc), dev),
    "vggish": lambda loc, dev: VGGishAudio(load_vggish(loc), dev),
    "hf": HFAudio,
    "hf-remote": lambda loc, dev: HFAudio(loc, dev, remote=True),
    "clip-va": ClipVA,
    "clap-va": ClapVA,
    "imagebind": ImageBindJoint,
    "joint": load_joint,
}


def split_ref(ref: str) -> tuple[str, str]:
    kind, sep, location = ref.partition(":")
    if not sep or kind not in LOADERS or not location:
        raise ModelError(f"bad evaluation model reference {ref!r}: expected KIND:LOCATION with KIND one of "
                         f"{', '.join(LOADERS)}")
    return kind, location


def load(ref: str, device: str = "cpu"):
    """Load the evaluation model ``ref`` (``KIND:LOCATION``) onto ``device``."""
    kind, location = split_ref(ref)
    return LOADERS[kind](location, device)


# ---- the tiny preset -------------------------------------------------------------------------


def _save(out: Path, config: dict, net: torch.nn.Module) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out / "model.safetensors"))


def _spread(net: torch.nn.Module) -> torch.nn.Module:
    """He-normal weights and zero biases: PyTorch's default init shrinks the signal ~0.6x per
    layer, which leaves a deep random net's output almost constant whatever the input."""
    for module in net.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
    return net


def _tiny_cnn14(classes: int, embed_dim: int = 32) -> Cnn14:
    mel = MelConfig(16000, 512, 512, 160, 32, 50.0, 8000.0)
    net = _spread(Cnn14(Cnn14Config(mel=mel, widths=(4, 8, 8, 16, 16, 32), embed_dim=embed_dim, classes=classes)))
    net.bn0.running_mean.fill_(-40.0)  # centre the dB log-mel, as trained statistics would
    net.bn0.running_var.fill_(400.0)
    return net


def _tiny_hubert(out: Path) -> None:
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    config = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          conv_dim=(16, 16, 16), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2),
                          num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=4)
    HubertModel(config).save_pretrained(out)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(out)


def _byte_level_vocab() -> dict[str, int]:
    """RoBERTa's byte-level alphabet (GPT-2's bytes_to_unicode) with no merges: one token per byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    rest = [b for b in range(256) if b not in printable]
    chars = [chr(b) for b in printable] + [chr(256 + i) for i in range(len(rest))]
    return {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>", *chars])}


def _tiny_clap(out: Path) -> None:
    """CLAP (HTSAT audio tower, RoBERTa text tower) at toy size, for the EMS music side."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizer

    vocab = _byte_level_vocab()
    text = dict(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64, max_position_embeddings=80, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    audio = dict(depths=[1, 1], num_attention_heads=[2, 2], patch_embeds_hidden_size=16, hidden_size=32,
                 num_hidden_layers=2)
    ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=16)).save_pretrained(out)
    # clips longer than 10 s are cut at a random offset (rand_trunc), as for laion/clap-htsat-unfused
    ClapProcessor(feature_extractor=ClapFeatureExtractor(truncation="rand_trunc"),
                  tokenizer=RobertaTokenizer(vocab=vocab, merges=[])).save_pretrained(out)


def build_tiny(cache_dir: Path, seed: int = 0) -> Path:
    """Write the tiny evaluation models under ``cache_dir`` (atomically, once); returns their folder."""
    from cotvtm.tiny import build_once

    def build(staging: Path) -> None:
        torch.manual_seed(seed)
        net = _tiny_cnn14(classes=16)
        _save(staging / "cnn14", {"cnn14": net.cfg.to_dict()}, net)
        vggish = _spread(VGGish(VGGishConfig(widths=(4, 8, 16, 16), fc=(64, 64, 16))))
        _save(staging / "vggish", {"vggish": vggish.cfg.to_dict()}, vggish)
        va = _tiny_cnn14(classes=2)
        _save(staging / "va", {"cnn14": va.cfg.to_dict()}, va)
        audio, visual = _tiny_cnn14(classes=16), _spread(VisualNet(VisualConfig(dim=16)))
        joint = torch.nn.ModuleDict({"audio": audio, "visual": visual})
        _save(staging / "joint", {"cnn14": audio.cfg.to_dict(), "visual": visual.cfg.to_dict()}, joint)
        _tiny_hubert(staging / "hubert")
        _tiny_clap(staging / "clap")

    return build_once(Path(cache_dir) / f"eval-tiny-v{TINY_EVAL_VERSION}-seed{seed}", build)
