"""Stable Audio Open as the Music stage's decoder, conditioned on the prior's E_m.

Stable Audio conditions its diffusion transformer on the hidden states of T5-base (projected);
MusicGen cross-attends to the same T5-base's states, and the prior is distilled to predict
exactly those (E_m). So E_m and its mask go to diffusers' ``StableAudioPipeline`` as its
``prompt_embeds`` and ``attention_mask``: no text, no text encoder run, no retraining.

How windows map to generations: one generation per window, conditioned on that window's E_m
and as long as the window (plus the crossfade); the composer joins windows with its crossfade.
Stable Audio cannot continue the codes of the window before (MusicGen's prompt continuation), so
every window is made fresh, as in ``--mode independent``. One generation per window keeps the
music following what is on screen, window by window, which is what the prior was distilled to
do; one generation per short video would give a whole video one window's conditioning. The
model always denoises its full latent length (about 47 s for Stable Audio Open) and crops to the
seconds asked, so a window costs the same whatever its length.

Batch-invariant: each window is one pipeline call (guidance's two rows inside it), its initial
noise and the sampler's Brownian noise seeded from the window's own stream (seed, input, window);
the initial noise is drawn on the CPU. A window's audio is then a function of its E_m, its
length and its stream alone on a given kind of device: a rerun, a resume or another batch
gives the same samples. (Windows batched
together would run the transformer on other shapes, whose float sums may differ in the last bits.)

The pipeline makes stereo, kept as it is: windows are channels-last ``(samples, 2)``, and the
composition, saved progress, ending and mux carry both channels.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from cotvtm.errors import ModelError
from cotvtm.music.decoder import MusicRequest, WindowMusic
from cotvtm.music.steps import StepLines
from cotvtm.music.style import StyleStates
from cotvtm.models import load_stable_audio
from cotvtm.quiet import quiet_sampler


class StableAudioBackend:
    """Windows through ``StableAudioPipeline``, one generation each (see the module docstring)."""

    continues = False  # a window cannot continue the one before: each is fresh and crossfaded
    channels = 2  # Stable Audio Open is stereo

    def __init__(self, ref: str | None, device: str = "cpu", steps: int = 100, guidance_scale: float = 7.0,
                 width: int | None = None, pipeline=None):
        """``width``: E_m's width (the run's T5), checked against the pipeline's text projection;
        ``pipeline``: an already loaded one (benchmarks)."""
        self.pipeline = pipeline if pipeline is not None else load_stable_audio(ref, device)
        self.device, self.steps, self.guidance_scale = device, steps, guidance_scale
        vae, transformer = self.pipeline.vae, self.pipeline.transformer
        self.sample_rate = int(vae.config.sampling_rate)
        self.max_seconds = transformer.config.sample_size * vae.hop_length / self.sample_rate
        if int(vae.config.audio_channels) != self.channels:
            raise ModelError(f"Stable Audio {ref!r} makes {vae.config.audio_channels} audio channels, not the "
                             f"{self.channels} of Stable Audio Open")
        expects = int(self.pipeline.projection_model.config.text_encoder_dim)
        if width is not None and width != expects:
            raise ModelError(f"Stable Audio {ref!r} takes T5 states of width {expects}, but the run's E_m is "
                             f"{width} wide (--t5): its text encoder must be the T5 the prior predicts")

    def encode_text(self, text: str) -> StyleStates:
        """A text's states from the pipeline's T5 (the space E_m lives in)."""
        return StyleStates.encode(text, self.pipeline.tokenizer, self.pipeline.text_encoder, self.device)

    def render(self, requests: list[MusicRequest]) -> list[WindowMusic]:
        return [self.generate_window(request) for request in requests]

    def describe(self) -> dict:
        """The sidecar's decoder section."""
        dtype = str(self.pipeline.transformer.dtype).removeprefix("torch.")
        return {"name": "stable-audio", "dtype": dtype, "device": str(self.device), "steps": self.steps,
                "guidance_scale": self.guidance_scale}

    @torch.inference_mode()
    def generate_window(self, request: MusicRequest) -> WindowMusic:
        """One window: at least ``request.seconds`` of music for its E_m, drawn from its stream."""
        if request.seconds > self.max_seconds:
            raise ValueError(f"a window of {request.seconds:.2f} s (crossfade included) is longer than this Stable "
                             f"Audio model makes ({self.max_seconds:.2f} s); use shorter --window-seconds")
        dtype = self.pipeline.transformer.dtype
        hidden = torch.as_tensor(np.asarray(request.hidden)[None], device=self.device).to(dtype)
        mask = torch.as_tensor(np.asarray(request.mask)[None], dtype=torch.long, device=self.device)
        samples = math.ceil(request.seconds * self.sample_rate)
        with warnings.catch_warnings():
            quiet_sampler()
            audio = self.pipeline(prompt_embeds=hidden, attention_mask=mask, audio_start_in_s=0.0,
                                  audio_end_in_s=(samples + 0.5) / self.sample_rate,  # int() of it: `samples`
                                  num_inference_steps=self.steps, guidance_scale=self.guidance_scale,
                                  generator=torch.Generator("cpu").manual_seed(request.stream),
                                  callback=StepLines(f"stable-audio: a window of {request.seconds:.1f} s",
                                                     self.steps)).audios[0]
        return WindowMusic(np.ascontiguousarray(audio.float().T.cpu().numpy()), None, 0)  # channels-last
