"""MusicGen driven by precomputed conditioning (E_m), with classifier-free guidance.

The prior emits T5 hidden states in MusicGen's own conditioning space, so no text is
needed: the states go in as ``encoder_outputs``. With guidance, transformers expects
the caller to supply the unconditional half itself: ``inputs`` of shape (B, 1) fixes
the batch size, and the encoder states and mask are stacked as [conditional; zeros].
Done this way, the output is bit-identical to prompting MusicGen with the text whose
T5 states were passed (tests/test_music.py holds that invariant).

Two decoders make windows of music behind one interface (``render``), each around one
``MusicGen`` (the model, its T5 text encoding, EnCodec decoding, the sidecar's words):

- ``engine`` (the default): ``DecodeEngine``, slots with static caches, batch-invariant
  sampling, CUDA graphs on a GPU (``engine.py``), fed by the scheduler (``scheduler.py``);
- ``generate``: transformers' ``generate``, one call per group of like windows, seeded per
  call (its draws depend on the batch). The reference the engine is tested against.

Both continue a window from the previous window's codes (no EnCodec re-encoding) and decode
each finished window with EnCodec on its own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable

import numpy as np
import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from cotvtm.models import load_musicgen
from cotvtm.music.choices import MUSICGEN_DECODERS
from cotvtm.music.musicgen_layers import input_dtype
from cotvtm.music.engine import DecodeEngine
from cotvtm.music.decoder import MusicRequest, WindowMusic
from cotvtm.music.sampling import SamplingConfig, with_unconditional
from cotvtm.music.scheduler import Scheduler
from cotvtm.music.step_runner import DecodeWindow, delay_pattern
from cotvtm.music.style import StyleStates

__all__ = ["MUSICGEN_DECODERS", "EngineBackend", "MusicGen", "MusicGenBackend", "MusicRequest",
           "SamplingConfig", "WindowMusic", "make_backend"]


class MusicGen:
    """One loaded MusicGen and what both decoders do with it besides decoding tokens: a text's T5
    states, the number of steps a window takes, EnCodec, the sidecar's words."""

    def __init__(self, ref: str | None, device: str = "cpu", model=None, dtype: str = "auto"):
        """``ref``: a checkpoint to load, its decoder in ``dtype`` (``models.decoder_dtype``); or
        ``model``, an already loaded one (benchmarks)."""
        self.model, self.processor = (model, None) if model is not None else load_musicgen(ref, device, dtype)
        self.device = device
        audio_cfg = self.model.config.audio_encoder
        self.sample_rate = int(audio_cfg.sampling_rate)
        self.frame_rate = int(audio_cfg.frame_rate)
        self.num_codebooks = int(self.model.config.decoder.num_codebooks)

    def encode_text(self, text: str) -> StyleStates:
        """A text's states from MusicGen's own T5, as ``generate`` computes them for a prompt."""
        return StyleStates.encode(text, self.processor.tokenizer, self.model.text_encoder, self.device)

    def tokens_for(self, seconds: float) -> int:
        """New decoder steps that yield at least ``seconds`` of audio (delay pattern included)."""
        return math.ceil(seconds * self.frame_rate) + self.num_codebooks

    @torch.inference_mode()
    def decode(self, codes: list[np.ndarray]) -> list[np.ndarray]:
        """EnCodec over each window's codes (codebooks, frames) on its own: a window's audio then
        depends on its codes alone, not on which windows happened to finish beside it (decoded
        together, they differ in the last bits), so a rerun or a resume gives the same samples."""
        audio = []
        for window in codes:
            batch = torch.as_tensor(window[None, None], dtype=torch.long, device=self.device)
            audio.append(self.model.audio_encoder.decode(batch, [None]).audio_values[0, 0].float().cpu().numpy())
        return audio

    def music(self, requests: list[MusicRequest], codes: list[np.ndarray]) -> list[WindowMusic]:
        """The windows' music from their codes, in order."""
        return [WindowMusic(a, c, r.prompt_frames) for r, c, a in zip(requests, codes, self.decode(codes))]

    def describe(self, name: str) -> dict:
        """The sidecar's decoder section: which decoder, in which precision, on what."""
        return {"name": name, "dtype": str(next(self.model.decoder.parameters()).dtype).removeprefix("torch."),
                "device": str(self.device)}


class MusicGenBackend:
    """The ``generate`` decoder: windows through transformers' ``generate``."""

    continues = True  # a window continues the previous one's codes (its ``prompt``)
    channels = 1  # MusicGen is mono: audio is (samples,)

    name = "generate"

    def __init__(self, ref: str | None, device: str = "cpu", sampling: SamplingConfig = SamplingConfig(),
                 model=None, dtype: str = "auto", batch: int = 32):
        """``ref``, ``model`` and ``dtype``: the ``MusicGen`` to load; ``batch``: the most windows
        one ``generate`` call makes (``--slots``), so that memory is bounded whatever the call."""
        self.musicgen = musicgen = MusicGen(ref, device, model, dtype)
        self.batch = batch
        self.model, self.sample_rate, self.frame_rate = musicgen.model, musicgen.sample_rate, musicgen.frame_rate
        self.device, self.sampling = device, sampling
        self.input_dtype = input_dtype(self.musicgen.model)  # what E_m is given as

    def encode_text(self, text: str) -> StyleStates:
        return self.musicgen.encode_text(text)

    def describe(self) -> dict:
        return self.musicgen.describe(self.name)

    # -- windows ----------------------------------------------------------------------------

    def render(self, requests: list[MusicRequest]) -> list[WindowMusic]:
        """``batch`` windows at a time, one ``generate`` call per group of them with the same
        prompt length and length, seeded with the group's first stream (so its draws depend on
        how windows are grouped)."""
        codes: list[np.ndarray | None] = [None] * len(requests)
        for start in range(0, len(requests), self.batch):
            groups = defaultdict(list)
            for index in range(start, min(start + self.batch, len(requests))):
                groups[requests[index].prompt_frames, self.musicgen.tokens_for(requests[index].seconds)].append(index)
            for (_, new_tokens), members in groups.items():
                for index, found in zip(members, self._generate_codes([requests[i] for i in members], new_tokens)):
                    codes[index] = found
        return self.musicgen.music(requests, codes)

    @torch.inference_mode()
    def _generate_codes(self, requests: list[MusicRequest], new_tokens: int) -> list[np.ndarray]:
        hidden = torch.as_tensor(np.stack([r.hidden for r in requests]), dtype=self.input_dtype, device=self.device)
        mask = torch.as_tensor(np.stack([r.mask for r in requests]), dtype=torch.long, device=self.device)
        kwargs = self._conditioning(hidden, mask)
        if requests[0].prompt_frames:
            prompts = np.concatenate([r.prompt for r in requests])  # (B x codebooks, frames)
            kwargs["decoder_input_ids"] = torch.as_tensor(prompts, dtype=torch.long, device=self.device)
        recorder = _LastIds()
        torch.manual_seed(requests[0].stream)
        self.musicgen.model.generate(**kwargs, max_new_tokens=new_tokens, do_sample=self.sampling.do_sample,
                                     top_k=self.sampling.top_k, temperature=self.sampling.temperature,
                                     stopping_criteria=StoppingCriteriaList([recorder]))
        raw = recorder.ids.view(len(requests), self.musicgen.num_codebooks, -1)
        return [self._undelay(ids, request.prompt) for ids, request in zip(raw, requests)]

    def _undelay(self, ids: torch.Tensor, prompt: np.ndarray | None) -> np.ndarray:
        """Raw generated ids (codebooks, positions) -> codes, as ``generate`` post-processes them."""
        model = self.musicgen.model
        _, pattern = delay_pattern(model, prompt, ids.shape[1], ids.device)
        ids = model.decoder.apply_delay_pattern_mask(ids, pattern)
        return ids[ids != model.generation_config.pad_token_id].reshape(self.musicgen.num_codebooks, -1).cpu().numpy()

    # -- the audio-prompt path (evaluation, reference tests) ---------------------------------

    @torch.inference_mode()
    def generate(self, hidden, mask, seconds: float, prompt=None, seed: int = 0) -> np.ndarray:
        """Audio (B, samples) for E_m ``hidden`` (B, L, D) with ``mask`` (B, L).

        ``prompt`` (B, samples), if given, is continued: the result starts with the
        codec's re-decoding of the prompt and goes on for at least ``seconds`` more.
        """
        model = self.musicgen.model
        hidden = torch.as_tensor(hidden, dtype=self.input_dtype, device=self.device)
        mask = torch.as_tensor(mask, dtype=torch.long, device=self.device)
        kwargs = self._conditioning(hidden, mask)
        if prompt is not None:
            codec = next(model.audio_encoder.parameters()).dtype
            kwargs["input_values"] = torch.as_tensor(prompt, dtype=codec, device=self.device)[:, None, :]
        torch.manual_seed(seed)
        audio = model.generate(**kwargs, max_new_tokens=self.musicgen.tokens_for(seconds),
                               do_sample=self.sampling.do_sample, top_k=self.sampling.top_k,
                               temperature=self.sampling.temperature)
        return audio[:, 0, :].float().cpu().numpy()

    def _conditioning(self, hidden, mask) -> dict:
        batch = hidden.shape[0]
        scale = self.sampling.guidance_scale
        if self.sampling.guided:
            hidden, mask = with_unconditional(hidden, mask)
        return {"inputs": torch.zeros((batch, 1), dtype=torch.long, device=self.device),
                "encoder_outputs": (hidden,), "attention_mask": mask, "guidance_scale": scale}

    @torch.inference_mode()
    def generate_from_text(self, texts: list[str], seconds: float, seed: int = 0) -> np.ndarray:
        """The text-prompt path, kept as the reference the E_m path must match."""
        inputs = self.musicgen.processor(text=texts, padding=True, return_tensors="pt").to(self.device)
        torch.manual_seed(seed)
        audio = self.musicgen.model.generate(**inputs, max_new_tokens=self.musicgen.tokens_for(seconds),
                                             do_sample=self.sampling.do_sample, top_k=self.sampling.top_k,
                                             temperature=self.sampling.temperature,
                                             guidance_scale=self.sampling.guidance_scale)
        return audio[:, 0, :].float().cpu().numpy()


class EngineBackend:
    """The ``engine`` decoder (the default): windows through the slot engine, queued and admitted
    by the scheduler. ``full``: every step over all slots (``step_runner.py``)."""

    continues = True
    channels = 1

    name = "engine"

    def __init__(self, ref: str | None, device: str = "cpu", sampling: SamplingConfig = SamplingConfig(),
                 model=None, *, slots: int, graphs: bool | None = None, dtype: str = "auto", full: bool = True):
        """``ref``, ``model`` and ``dtype``: the ``MusicGen`` to load; ``slots``: windows decoded at once."""
        self.musicgen = musicgen = MusicGen(ref, device, model, dtype)
        self.model, self.sample_rate, self.frame_rate = musicgen.model, musicgen.sample_rate, musicgen.frame_rate
        self.engine = DecodeEngine(self.musicgen.model, slots, sampling, device, graphs=graphs, full=full)

    def encode_text(self, text: str) -> StyleStates:
        return self.musicgen.encode_text(text)

    def describe(self) -> dict:
        return {**self.musicgen.describe(self.name), **self.engine.describe()}

    def render(self, requests: list[MusicRequest]) -> list[WindowMusic]:
        """The requests' music, in order, through a scheduler's queue (``Scheduler.render``)."""
        return Scheduler(self).render(requests)

    def window(self, tag: Hashable, request: MusicRequest) -> DecodeWindow:
        """What the engine decodes for ``request``, under ``tag``."""
        return DecodeWindow(tag, request.hidden, request.mask, self.musicgen.tokens_for(request.seconds),
                            request.stream, request.prompt if request.prompt_frames else None)

    def music(self, requests: list[MusicRequest], codes: list[np.ndarray]) -> list[WindowMusic]:
        """The finished windows' music from their codes (``MusicGen.music``)."""
        return self.musicgen.music(requests, codes)


def make_backend(name: str, ref: str, device: str = "cpu", sampling: SamplingConfig = SamplingConfig(), *,
                 slots: int, dtype: str = "auto", full: bool = True) -> MusicGenBackend | EngineBackend:
    """The MusicGen decoder ``name`` (``MUSICGEN_DECODERS``); ``slots``: the windows it makes at
    once (the engine's slots, or the windows of one ``generate`` call)."""
    if name not in MUSICGEN_DECODERS:
        raise ValueError(f"unknown music decoder {name!r}; choose one of {MUSICGEN_DECODERS}")
    if name == "engine":
        return EngineBackend(ref, device, sampling, slots=slots, dtype=dtype, full=full)
    return MusicGenBackend(ref, device, sampling, dtype=dtype, batch=slots)


class _LastIds(StoppingCriteria):
    """A stopping criterion that never stops: it keeps the ids ``generate`` has so far, which
    after the last step are the whole raw sequence (``generate`` returns only audio)."""

    ids: torch.Tensor

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        self.ids = input_ids
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
