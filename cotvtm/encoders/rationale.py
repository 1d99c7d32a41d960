"""The rationale encoder: E_r from the teacher's rationale text X_rt.

The paper uses LLM2Vec (Llama-3-8B-Instruct made bidirectional, MNTP-trained, mean-pooled).
The `llm2vec` package pins transformers <= 4.44 and does not import on transformers 5, so
this module loads the same checkpoints with current transformers itself:

- bidirectional attention: every decoder layer gets ``is_causal = False`` and the model is
  given a 4-D padding mask (B, 1, T, T), so no causal mask is built;
- right padding, so position ids of real tokens do not depend on the batch;
- mean pooling over the text tokens only, excluding the instruction prefix and padding;
- an LLM2Vec directory that holds a PEFT adapter (``adapter_config.json``) is loaded on its
  base model and merged (needs the optional ``peft`` package).
"""

import json
from pathlib import Path

import numpy as np
import torch

from cotvtm.errors import ModelError
from cotvtm.quiet import quiet_transformers

INSTRUCTION = "Given a description of a scene and its music, retrieve the music it calls for: "


class RationaleEncoder:
    def __init__(self, ref: str, device: str = "cpu", dtype=None, instruction: str = INSTRUCTION,
                 max_length: int = 512, batch_size: int = 32):
        quiet_transformers()
        self.model, self.tokenizer = _load_bidirectional(ref, device, dtype)
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device, self.instruction = device, instruction
        self.max_length, self.batch_size = max_length, batch_size
        self.dim = int(self.model.config.hidden_size)
        self._prefix = len(self.tokenizer(instruction)["input_ids"]) if instruction else 0

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> np.ndarray:
        """(N, dim) float32 mean-pooled embeddings of the texts (instruction excluded)."""
        out = [self._encode_batch(texts[i: i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        tokens = self.tokenizer([self.instruction + t for t in texts], padding=True, truncation=True,
                                max_length=self.max_length, return_tensors="pt").to(self.device)
        keep = tokens.attention_mask.clone()
        keep[:, : self._prefix] = 0  # pool over the text, not the instruction
        keep[keep.sum(1) == 0] = tokens.attention_mask[keep.sum(1) == 0]  # text truncated away
        hidden = self.model(input_ids=tokens.input_ids, attention_mask=_bidirectional_mask(
            tokens.attention_mask, self.model.dtype)).last_hidden_state
        pooled = (hidden * keep[..., None]).sum(1) / keep.sum(1, keepdim=True)
        return pooled.float().cpu().numpy()


def _bidirectional_mask(attention_mask: torch.Tensor, dtype) -> torch.Tensor:
    """(B, T) padding mask -> additive (B, 1, T, T) mask that hides padded keys only."""
    blocked = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
    return blocked.expand(-1, 1, attention_mask.shape[1], -1)


def _load_bidirectional(ref: str, device: str, dtype):
    from transformers import AutoModel, AutoTokenizer

    adapter = Path(ref) / "adapter_config.json"
    try:
        if adapter.exists():
            base = json.loads(adapter.read_text())["base_model_name_or_path"]
            model = _merge_adapter(AutoModel.from_pretrained(base, dtype=dtype), ref)
        else:
            model = AutoModel.from_pretrained(ref, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(ref)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load rationale encoder from {ref!r}: {exc}") from exc
    for layer in model.layers:
        layer.self_attn.is_causal = False
    return model.to(device).eval(), tokenizer


def _merge_adapter(model, ref: str):
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ModelError(f"{ref} is a PEFT adapter (LLM2Vec); install the optional extra: "
                         "pip install 'cotvtm[llm2vec]'") from exc
    return PeftModel.from_pretrained(model, ref).merge_and_unload()
