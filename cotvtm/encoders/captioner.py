"""BLIP, the one image captioner run on this machine: the teacher's captions of a soundtrack's
windows and of the evaluation's items (``--captioner blip:REF``), and of the media a labels run
finds without a caption (``--captioner-local``)."""

import numpy as np
import torch

from cotvtm.errors import ModelError
from cotvtm.quiet import quiet_transformers

WINDOW_TOKENS = 40  # a window's caption: a sentence or two


class BlipCaptioner:
    """BLIP loaded once; a window is captioned from its middle frame."""

    def __init__(self, ref: str, device: str = "cpu"):
        from transformers import BlipForConditionalGeneration, BlipProcessor

        quiet_transformers()
        try:
            self.processor = BlipProcessor.from_pretrained(ref)
            self.model = BlipForConditionalGeneration.from_pretrained(ref).to(device).eval()
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load captioner {ref!r}: {exc}") from exc
        self.device = device

    @torch.inference_mode()
    def caption(self, pictures: list[np.ndarray], max_new_tokens: int, prefix: str | None = None,
                **generate) -> list[str]:
        """BLIP's text for each picture (RGB uint8), begun with ``prefix`` where one is given (a
        conditional caption)."""
        inputs = self.processor(images=pictures, text=prefix, return_tensors="pt").to(self.device)
        tokens = self.model.generate(**inputs, max_new_tokens=max_new_tokens, **generate)
        return self.processor.batch_decode(tokens, skip_special_tokens=True)

    def __call__(self, frames: list[np.ndarray]) -> list[str]:
        """One caption per window (its sampled frames)."""
        return [text.strip() for text in self.caption([f[len(f) // 2] for f in frames], WINDOW_TOKENS)]
