"""Captioners for the caption-based baselines (caption2music, CoT2music, LLM2music).

``blip:REF`` runs an image-captioning model (BLIP; the paper's setting uses
``Salesforce/blip-image-captioning-large``) on the middle sampled frame of each item.
``retrieval`` needs no captioning model: it picks, for each item, the candidate caption whose
CLIP text embedding is nearest to the item's CLIP image embedding. Its candidates are the
generated scene descriptions of the teacher package, so it works offline; with real CLIP it is
a zero-shot captioner, with the tiny preset's random CLIP the choice is arbitrary.
"""

from __future__ import annotations

import numpy as np
import torch

from cotvtm.errors import ModelError

BLIP_PAPER = "blip:Salesforce/blip-image-captioning-large"
CANDIDATES = 400


def candidate_captions(count: int = CANDIDATES, seed: int = 0) -> list[str]:
    from cotvtm.teacher.scenes import sample_scenes, write_description

    return list(dict.fromkeys(write_description(scene) for scene in sample_scenes(count, seed)))


class RetrievalCaptioner:
    def __init__(self, clip, captions: list[str] | None = None):
        self.clip = clip
        self.captions = captions or candidate_captions()
        self.bank = clip.embed_texts(self.captions)

    def __call__(self, frames: list[np.ndarray]) -> list[str]:
        visual = np.stack([self.clip.embed_images(f).mean(0) for f in frames])
        return [self.captions[i] for i in (visual @ self.bank.T).argmax(axis=1)]


class BlipCaptioner:
    def __init__(self, ref: str, device: str, max_new_tokens: int = 40):
        from transformers import BlipForConditionalGeneration, BlipProcessor

        from cotvtm.quiet import quiet_transformers

        quiet_transformers()
        try:
            self.processor = BlipProcessor.from_pretrained(ref)
            self.model = BlipForConditionalGeneration.from_pretrained(ref).to(device).eval()
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load captioner {ref!r}: {exc}") from exc
        self.device, self.max_new_tokens = device, max_new_tokens

    @torch.inference_mode()
    def __call__(self, frames: list[np.ndarray]) -> list[str]:
        middle = [f[len(f) // 2] for f in frames]
        inputs = self.processor(images=middle, return_tensors="pt").to(self.device)
        tokens = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens)
        return [t.strip() for t in self.processor.batch_decode(tokens, skip_special_tokens=True)]


def captioner_ref(choice: str | None, preset: str) -> str:
    """``--captioner``, else the default: retrieval with the tiny preset (no captioning model
    exists at toy size), BLIP-large, the paper's, otherwise."""
    return choice or ("retrieval" if preset == "tiny" else BLIP_PAPER)


def captioner_model(ref: str) -> str | None:
    """The model a captioner loads (``REF`` of ``blip:REF``); None for ``retrieval``, which uses the
    run's CLIP and texts made here."""
    kind, _, location = ref.partition(":")
    return location if kind == "blip" and location else None


def load_captioner(ref: str, clip, device: str):
    """``retrieval`` or ``blip:REF``."""
    if ref == "retrieval":
        return RetrievalCaptioner(clip)
    kind, _, location = ref.partition(":")
    if kind == "blip" and location:
        return BlipCaptioner(location, device)
    raise ModelError(f"bad captioner {ref!r}: use 'retrieval' or 'blip:HUB_ID_OR_DIR'")
