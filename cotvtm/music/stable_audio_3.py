"""Stable Audio 3 as the Music stage's decoder: stereo, each window continuing the track's audio.

Conditioning: Stable Audio 3 cross-attends to its own T5Gemma encoder's states, and with this
decoder the run's text encoder is that one (``models.resolve``), so the prior's E_m and its mask
go to the transformer as its prompt embeddings and mask: no text, no text encoder run. E_m is
padded (mask 0) to the 256 tokens the pipeline pads a text prompt to, because the transformer
attends to padded positions too (as its learned padding embedding): E_m then conditions exactly
as the text whose states it holds. The window's length is the duration conditioning, and the
latent is as long as the window, not a fixed maximum. The distilled model is sampled in 8 steps
of its ping-pong sampler, guidance off (distilled into its weights).

Continuation: a request's ``context`` (the track's last seconds) is kept as the window's start.
Its SAME latents are the inpainting condition (mask and masked latents, ``local_add_cond``, as
``StableAudio3InpaintPipeline`` builds it), and after every step the kept latents are set to
the context's at the sampler's next noise level: the new music is made beside the real context,
and the last step leaves exactly its encoding. The window's audio starts with the context's
re-rendering (``prompt_samples``), where the composer joins it to the track.

The loop is the inpainting pipeline's own (``__call__``: the same schedule, transformer calls
and scheduler steps, from the pipeline's helpers), written out for that hold and for
classifier-free guidance (a ``-base`` checkpoint's), which the inpainting pipeline lacks.

Batch-invariant: windows of one shape (E_m length, context length, duration) are made together
at a fixed batch shape (``batch`` rows, padded with copies whose music is dropped), each row's
noise drawn from its own generator seeded with its stream (the initial latents, the sampler's
re-noise and the hold all draw per row). A window's samples are then a function of its own
request on a given kind of device, whichever windows are made beside it, and wherever in the
batch. At this fixed shape torch's fused attention gives a row the same bits at every place, on
the CPU too (tests/test_stable_audio_3.py holds it), so the pipeline's attention is kept as it
is (MusicGen's engine needs plain products instead: ``musicgen_layers.py``).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch

from cotvtm.counted import counted
from cotvtm.errors import ModelError
from cotvtm.models import decoder_dtype, load_stable_audio_3
from cotvtm.music.decoder import MusicRequest, WindowMusic
from cotvtm.music.steps import StepLines
from cotvtm.music.style import StyleStates

PROMPT_TOKENS = 256  # what the pipelines pad a text prompt to (the model's training length); E_m is padded as far
LOGSNR = (-6.2, 2.0)  # the pipelines' schedule: log-SNR at the first and the last step, the distilled model's


class StableAudio3Backend:
    """Windows through Stable Audio 3's components, in batches of like windows (module docstring)."""

    continues = "audio"  # a window continues the track's last audio (``MusicRequest.context``)
    channels = 2  # Stable Audio 3 is stereo

    def __init__(self, ref: str | None, device: str = "cpu", steps: int = 8, guidance_scale: float = 1.0,
                 batch: int = 8, width: int | None = None, pipeline=None):
        """``width``: E_m's width (the run's text encoder), checked against the transformer's;
        ``pipeline``: an already loaded one (tests, benchmarks)."""
        self.pipeline = pipeline if pipeline is not None else \
            load_stable_audio_3(ref, device, decoder_dtype("auto", device))
        self.device, self.steps, self.guidance_scale, self.batch = device, steps, guidance_scale, batch
        vae, transformer = self.pipeline.vae, self.pipeline.transformer
        self.sample_rate, self.hop = int(vae.config.sampling_rate), int(vae.downsampling_ratio)
        self.max_seconds = float(self.pipeline.duration_embedder.config.max_val)  # what its duration can say
        if int(vae.config.audio_channels) != self.channels:
            raise ModelError(f"Stable Audio 3 {ref!r} makes {vae.config.audio_channels} audio channels, not 2")
        expects = int(transformer.config.cond_token_dim)
        if width is not None and width != expects:
            raise ModelError(f"Stable Audio 3 {ref!r} takes text states of width {expects}, but the run's E_m is "
                             f"{width} wide: its text encoder must be the pipeline's own")
        self._empty = None  # the unconditional prompt's states, for guidance

    def encode_text(self, text: str) -> StyleStates:
        """A text's states from the pipeline's own T5Gemma (the space E_m lives in)."""
        return StyleStates.encode(text, self.pipeline.tokenizer, self.pipeline.text_encoder, self.device)

    def describe(self) -> dict:
        """The sidecar's decoder section."""
        dtype = str(self.pipeline.transformer.dtype).removeprefix("torch.")
        return {"name": "stable-audio-3", "dtype": dtype, "device": str(self.device), "steps": self.steps,
                "guidance_scale": self.guidance_scale, "channels": self.channels, "batch": self.batch}

    def render(self, requests: list[MusicRequest]) -> list[WindowMusic]:
        """Each request's window, in order: like windows together, ``batch`` at a time."""
        groups = defaultdict(list)
        for index, request in enumerate(requests):
            groups[self._shape(request)].append(index)
        made: list[WindowMusic | None] = [None] * len(requests)
        for members in groups.values():
            for start in range(0, len(members), self.batch):
                chunk = members[start: start + self.batch]
                for index, window in zip(chunk, self._generate([requests[i] for i in chunk])):
                    made[index] = window
        return made

    def _shape(self, request: MusicRequest) -> tuple[int, int, int]:
        """(E_m tokens as padded, context samples, window samples): what a batch's windows share."""
        context = 0 if request.context is None else len(request.context)
        if request.context is not None and (np.ndim(request.context) != 2 or request.context.shape[1] != 2):
            raise ValueError(f"a context must be channels-last stereo (samples, 2), not {np.shape(request.context)}")
        if context and context < self.hop:
            raise ValueError(f"a context of {context} samples is shorter than one latent ({self.hop} samples)")
        total = context + math.ceil(request.seconds * self.sample_rate)
        if total > self.max_seconds * self.sample_rate:
            raise ValueError(f"a window of {total / self.sample_rate:.2f} s (context included) is longer than this "
                             f"Stable Audio 3 model makes ({self.max_seconds:.2f} s); use shorter --window-seconds")
        return max(len(request.hidden), PROMPT_TOKENS), context, total

    @torch.inference_mode()
    def _generate(self, requests: list[MusicRequest]) -> list[WindowMusic]:
        """Windows of one shape, at most ``batch``: one batch of ``batch`` rows."""
        pipe, device, dtype = self.pipeline, self.device, self.pipeline.transformer.dtype
        tokens, context, total = self._shape(requests[0])
        rows = requests + [requests[0]] * (self.batch - len(requests))  # copies: their music is dropped
        generators = [torch.Generator("cpu").manual_seed(request.stream) for request in rows]
        hidden, mask = zip(*(_padded(np.asarray(r.hidden, np.float32), np.asarray(r.mask), tokens) for r in rows))
        text = torch.as_tensor(np.stack(hidden), device=device).to(dtype)
        text_mask = torch.as_tensor(np.stack(mask), dtype=torch.long, device=device)
        duration = pipe.encode_duration(total / self.sample_rate, device, 1, len(rows))
        text, text_mask = pipe.prepare_cross_attention(text, text_mask, duration)
        length = math.ceil(total / self.hop)
        kept, local = self._context(rows, context, length) if context else (None, None)
        latents = pipe.prepare_latents(len(rows), pipe.vae.config.latent_dim, length, dtype, device, generators)
        inputs = self._guided(text, text_mask, duration, local)
        timesteps, _ = _timesteps(pipe, self.steps, device)
        said = StepLines(f"stable-audio-3: {counted(len(requests), 'window')} together", len(timesteps))
        for index, t in enumerate(timesteps):
            velocity = self._velocity(latents, t, *inputs)
            latents = pipe.scheduler.step(velocity, t, latents, generator=generators).prev_sample
            if kept is not None:
                latents = self._hold(latents, kept, generators)
            said(index)
        audio = pipe.vae.decode(latents.to(pipe.vae.dtype)).sample[:, :, :total].clamp(-1.0, 1.0)
        return [WindowMusic(np.ascontiguousarray(a.float().T.cpu().numpy()), None, 0, prompt_samples=context)
                for a in audio[:len(requests)]]

    def _context(self, rows: list[MusicRequest], context: int, length: int):
        """The contexts' latents (rows, channels, kept), encoded over the whole latents they
        cover, and the inpainting condition over the window's ``length`` latents."""
        pipe, kept = self.pipeline, context // self.hop
        audio = np.stack([np.asarray(r.context[: kept * self.hop], np.float32).T for r in rows])
        latents = pipe.vae.encode(torch.as_tensor(audio, device=self.device).to(pipe.vae.dtype)).latents
        mask = torch.zeros((len(rows), 1, length), device=self.device)
        mask[:, :, :kept] = 1.0
        local = pipe._build_local_add_cond(latents, mask, length).to(pipe.transformer.dtype)
        return latents, local

    def _hold(self, latents: torch.Tensor, kept: torch.Tensor, generators) -> torch.Tensor:
        """``latents`` with the kept ones set to the context's at the sampler's next noise level
        (its own re-noise: the context's latents and fresh noise from each row's generator)."""
        scheduler = self.pipeline.scheduler
        sigma = float(scheduler.sigmas[scheduler.step_index])
        noise = _noise(kept.shape, generators, latents.device)
        latents = latents.clone()
        latents[:, :, :kept.shape[2]] = ((1.0 - sigma) * kept.float() + sigma * noise).to(latents.dtype)
        return latents

    def _guided(self, text, text_mask, duration, local) -> tuple:
        """The transformer's conditioning: as it is, or with guidance the unconditional rows (the
        empty prompt, as the pipeline makes them) first and these after."""
        if self.guidance_scale <= 1.0:
            return text, text_mask, duration, local
        if self._empty is None:
            self._empty = self.pipeline.encode_prompt([""], self.device, 1)
        rows = text.shape[0]
        empty, empty_mask = self.pipeline.prepare_cross_attention(
            self._empty[0].to(text.dtype).expand(rows, -1, -1), self._empty[1].expand(rows, -1), duration)
        if empty.shape[1] != text.shape[1]:
            raise ValueError(f"with guidance E_m may hold at most {PROMPT_TOKENS} tokens, not {text.shape[1] - 1}")
        both = None if local is None else torch.cat([local, local])
        return (torch.cat([empty, text]), torch.cat([empty_mask, text_mask]), torch.cat([duration, duration]), both)

    def _velocity(self, latents, t, text, text_mask, duration, local) -> torch.Tensor:
        """The transformer's velocity for ``latents`` at ``t``, guided when its inputs are doubled."""
        doubled = text.shape[0] != latents.shape[0]
        rows = torch.cat([latents, latents]) if doubled else latents
        velocity = self.pipeline.transformer(rows, t.expand(rows.shape[0]), encoder_hidden_states=text,
                                             global_hidden_states=duration, encoder_attention_mask=text_mask,
                                             local_add_cond=local, return_dict=False)[0]
        if not doubled:
            return velocity
        unconditional, conditional = velocity.chunk(2)
        return unconditional + self.guidance_scale * (conditional - unconditional)


def _padded(hidden: np.ndarray, mask: np.ndarray, tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """E_m (L, D) and its mask (L,) padded with masked zeros to ``tokens``."""
    extra = tokens - len(hidden)
    return np.pad(hidden, ((0, extra), (0, 0))), np.pad(mask, (0, extra))


def _timesteps(pipe, steps: int, device):
    """The pipelines' schedule (``logsnr_sigma_schedule``), set on the pipeline's scheduler."""
    from diffusers.pipelines.stable_audio_3.pipeline_stable_audio_3 import logsnr_sigma_schedule, retrieve_timesteps

    return retrieve_timesteps(pipe.scheduler, sigmas=logsnr_sigma_schedule(steps, *LOGSNR), device=device)


def _noise(shape, generators, device) -> torch.Tensor:
    """Standard normal float32 noise, row ``i`` from ``generators[i]`` (diffusers' ``randn_tensor``)."""
    from diffusers.utils.torch_utils import randn_tensor

    return randn_tensor(shape, generator=generators, device=torch.device(device), dtype=torch.float32)
