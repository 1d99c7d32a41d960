"""MusicGen driven by precomputed conditioning (E_m), with classifier-free guidance.

The prior emits T5 hidden states in MusicGen's own conditioning space, so no text is
needed: the states go in as ``encoder_outputs``. With guidance, transformers expects
the caller to supply the unconditional half itself: ``inputs`` of shape (B, 1) fixes
the batch size, and the encoder states and mask are stacked as [conditional; zeros].
Done this way, the output is bit-identical to prompting MusicGen with the text whose
T5 states were passed (tests/test_music.py holds that invariant).
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from cotvtm.models import load_musicgen


@dataclass(frozen=True)
class SamplingConfig:
    guidance_scale: float = 3.0
    top_k: int = 250
    temperature: float = 1.0
    do_sample: bool = True


class MusicGenBackend:
    """Loads MusicGen once; turns batches of E_m sequences into audio."""

    def __init__(self, ref: str, device: str = "cpu", sampling: SamplingConfig = SamplingConfig()):
        self.model, self.processor = load_musicgen(ref, device)
        self.device = device
        self.sampling = sampling
        audio_cfg = self.model.config.audio_encoder
        self.sample_rate = int(audio_cfg.sampling_rate)
        self.frame_rate = int(audio_cfg.frame_rate)
        self.num_codebooks = int(self.model.config.decoder.num_codebooks)

    def tokens_for(self, seconds: float) -> int:
        """New decoder steps that yield at least ``seconds`` of audio (delay pattern included)."""
        return math.ceil(seconds * self.frame_rate) + self.num_codebooks

    @torch.inference_mode()
    def generate(self, hidden, mask, seconds: float, prompt=None, seed: int = 0) -> np.ndarray:
        """Audio (B, samples) for E_m ``hidden`` (B, L, D) with ``mask`` (B, L).

        ``prompt`` (B, samples), if given, is continued: the result starts with the
        codec's re-decoding of the prompt and goes on for at least ``seconds`` more.
        """
        hidden = torch.as_tensor(hidden, dtype=self.model.dtype, device=self.device)
        mask = torch.as_tensor(mask, dtype=torch.long, device=self.device)
        kwargs = self._conditioning(hidden, mask)
        if prompt is not None:
            kwargs["input_values"] = torch.as_tensor(prompt, dtype=self.model.dtype, device=self.device)[:, None, :]
        torch.manual_seed(seed)
        audio = self.model.generate(**kwargs, max_new_tokens=self.tokens_for(seconds),
                                    do_sample=self.sampling.do_sample, top_k=self.sampling.top_k,
                                    temperature=self.sampling.temperature)
        return audio[:, 0, :].float().cpu().numpy()

    def _conditioning(self, hidden, mask) -> dict:
        batch = hidden.shape[0]
        scale = self.sampling.guidance_scale
        if scale and scale > 1:
            hidden = torch.cat([hidden, torch.zeros_like(hidden)])
            mask = torch.cat([mask, torch.zeros_like(mask)])
        return {"inputs": torch.zeros((batch, 1), dtype=torch.long, device=self.device),
                "encoder_outputs": (hidden,), "attention_mask": mask, "guidance_scale": scale}

    @torch.inference_mode()
    def generate_from_text(self, texts: list[str], seconds: float, seed: int = 0) -> np.ndarray:
        """The text-prompt path, kept as the reference the E_m path must match."""
        inputs = self.processor(text=texts, padding=True, return_tensors="pt").to(self.device)
        torch.manual_seed(seed)
        audio = self.model.generate(**inputs, max_new_tokens=self.tokens_for(seconds),
                                    do_sample=self.sampling.do_sample, top_k=self.sampling.top_k,
                                    temperature=self.sampling.temperature,
                                    guidance_scale=self.sampling.guidance_scale)
        return audio[:, 0, :].float().cpu().numpy()
