"""CLIP image and text towers: E_v (frames) and E_vt (captions) in one shared space."""

import numpy as np
import torch

from cotvtm.models import load_clip


class ClipEncoder:
    """Loads CLIP once; embeds frames and captions as L2-normalised vectors."""

    def __init__(self, ref: str, device: str = "cpu", batch_size: int = 64, dtype=None):
        self.model, self.processor = load_clip(ref, device)
        if dtype is not None:
            self.model = self.model.to(dtype)
        self.device = device
        self.batch_size = batch_size
        self.dim = int(self.model.config.projection_dim)
        self.max_text_tokens = int(self.model.config.text_config.max_position_embeddings)

    @property
    def image_size(self) -> int:
        return int(self.model.config.vision_config.image_size)

    @torch.inference_mode()
    def embed_images(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 frames -> (N, dim) normalised embeddings."""
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = list(images[start: start + self.batch_size])
            pixels = self.processor(images=chunk, return_tensors="pt")["pixel_values"].to(self.device, self.model.dtype)
            out.append(self._normalise(self.model.get_image_features(pixel_values=pixels)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    @torch.inference_mode()
    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Captions -> (N, dim) normalised embeddings (E_vt stands in for E_v in training)."""
        out = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.processor(text=texts[start: start + self.batch_size], padding=True, truncation=True,
                                    max_length=self.max_text_tokens, return_tensors="pt").to(self.device)
            out.append(self._normalise(self.model.get_text_features(**tokens)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def embed_windows(self, frames: np.ndarray) -> np.ndarray:
        """(W, F, H, W', 3) sampled frames of W windows -> (W, dim): mean of normalised frames."""
        windows, per_window = frames.shape[:2]
        flat = self.embed_images(frames.reshape(windows * per_window, *frames.shape[2:]))
        return flat.reshape(windows, per_window, -1).mean(axis=1)

    @staticmethod
    def _normalise(features) -> np.ndarray:
        """transformers 5 returns an output object; the projected vector is pooler_output."""
        tensor = getattr(features, "pooler_output", features)
        return torch.nn.functional.normalize(tensor.float(), dim=-1).cpu().numpy()
