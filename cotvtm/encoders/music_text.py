"""E_m: the decoder's own text encoder states for a music description, fixed length, with mask.

MusicGen cross-attends to the T5 encoder's last hidden states, not to a pooled vector, so the
prior's target is the whole state sequence, padded or cut to ``length`` tokens. Padded
positions are zero, which is also how the prior marks them at inference. Stable Audio 3 reads
its own T5Gemma encoder's states the same way: ``ref`` is then its pipeline (``models.load_t5``).
"""

import numpy as np
import torch

from cotvtm import text_space
from cotvtm.models import load_t5


class MusicTextEncoder:
    def __init__(self, ref: str, length: int, device: str = "cpu", dtype=None, batch_size: int = 64):
        self.model, self.tokenizer = load_t5(ref, device)
        if dtype is not None:
            self.model = self.model.to(dtype)
        self.length, self.device, self.batch_size = length, device, batch_size
        self.dim = text_space.width(self.model.config)

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(N, length, dim) float32 states (zeros at padding) and (N, length) int64 mask."""
        states, masks = [], []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(texts[start: start + self.batch_size], padding="max_length", truncation=True,
                                    max_length=self.length, return_tensors="pt").to(self.device)
            hidden = self.model(**tokens).last_hidden_state * tokens.attention_mask[..., None]
            states.append(hidden.float().cpu().numpy())
            masks.append(tokens.attention_mask.cpu().numpy().astype(np.int64))
        if not states:
            return np.zeros((0, self.length, self.dim), np.float32), np.zeros((0, self.length), np.int64)
        return np.concatenate(states), np.concatenate(masks)

    def encode_alone(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One text's (length, dim) states and (length,) mask, encoded in a batch of its own, so
        that they do not depend on which texts another caller encodes beside it."""
        states, mask = self.encode([text])
        return states[0], mask[0]
