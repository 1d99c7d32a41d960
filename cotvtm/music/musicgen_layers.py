"""MusicGen's decoder over static caches, one row per slot and guidance half.

transformers' decoder keeps one cache position for the whole batch; the engine's slots are at
different positions (each window was admitted at its own step), so this module runs the same
layers with a per-row position: each row writes its keys and values at its own index of a
preallocated self-attention cache and attends to the positions at or before it, among the first
``upto`` (the step's cache-length bucket: attention reads the valid keys, not the whole cache).
Cross-attention keys and values are computed once per window when it is admitted. The weights
are the loaded transformers modules themselves (no conversion), so every MusicGen checkpoint
works; the arithmetic follows ``MusicgenDecoder.forward`` (sum of codebook embeddings +
sinusoidal positions, pre-norm self-attention, cross-attention and feed-forward, final norm, one
head per codebook), with ``scaled_dot_product_attention`` as transformers' "sdpa" attention
calls it. Every tensor is in the decoder's own dtype (half precision on a GPU); the logits are
returned as they come from the heads, and the caller takes them to float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Rows = slice | torch.Tensor  # a range of rows (a step) or row indices (windows being admitted)


def input_dtype(model) -> torch.dtype:
    """The dtype E_m must have to enter MusicGen: that of the projection it goes through first,
    or the decoder's when the sizes match and there is none."""
    first = getattr(model, "enc_to_dec_proj", None) or model.decoder
    return next(first.parameters()).dtype


class StaticDecoder:
    """Caches for ``rows`` rows of ``positions`` self-attention and ``text`` cross positions."""

    def __init__(self, model, rows: int, positions: int, text: int, device):
        decoder = model.decoder.model.decoder
        self.model, self.decoder, self.heads = model, decoder, model.decoder.lm_heads
        self.layers = list(decoder.layers)
        config = decoder.config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // self.num_heads
        self.rows, self.positions, self.text = rows, positions, text
        self.device = device
        self.dtype = dtype = next(model.decoder.parameters()).dtype
        # The CPU's fused attention rounds a row differently by where it sits in the batch; the
        # plain products (as the GPU's kernels) give a row the same bits wherever it sits.
        self.attend = F.scaled_dot_product_attention if torch.device(device).type == "cuda" else _attention
        shape = (rows, self.num_heads, positions, self.head_dim)
        self.self_k = [torch.zeros(shape, device=device, dtype=dtype) for _ in self.layers]
        self.self_v = [torch.zeros(shape, device=device, dtype=dtype) for _ in self.layers]
        shape = (rows, self.num_heads, text, self.head_dim)
        self.cross_k = [torch.zeros(shape, device=device, dtype=dtype) for _ in self.layers]
        self.cross_v = [torch.zeros(shape, device=device, dtype=dtype) for _ in self.layers]
        self.cross_mask = torch.zeros((rows, 1, 1, text), dtype=torch.bool, device=device)
        if positions > decoder.embed_positions.weights.shape[0]:
            decoder.embed_positions.make_weights(positions, config.hidden_size)
        self.sinusoids = decoder.embed_positions.weights.to(device=device, dtype=dtype)

    def buffers(self) -> dict[str, torch.Tensor]:
        """Every tensor a step reads or writes besides the weights, by name."""
        named = {"cross_mask": self.cross_mask, "sinusoids": self.sinusoids}
        for kind in ("self_k", "self_v", "cross_k", "cross_v"):
            named.update({f"{kind}.{n}": t for n, t in enumerate(getattr(self, kind))})
        return named

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """(rows, seq, hidden) -> (rows, heads, seq, head_dim)."""
        return x.view(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)

    def encoder_states(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """E_m as the decoder sees it: projected when the sizes differ, zero where masked
        (``MusicgenForConditionalGeneration.forward``)."""
        config = self.model.config
        hidden = hidden.to(input_dtype(self.model))
        if (config.text_encoder.hidden_size != config.decoder.hidden_size
                and config.decoder.cross_attention_hidden_size is None):
            hidden = self.model.enc_to_dec_proj(hidden)
        return (hidden * mask[..., None].to(hidden.dtype)).to(self.dtype)

    def set_cross(self, rows: Rows, hidden: torch.Tensor, mask: torch.Tensor) -> None:
        """Cross-attention keys and values of ``rows`` from E_m ``hidden`` (r, text, D) and its
        ``mask`` (r, text), both padded to the caches' ``text`` positions."""
        states = self.encoder_states(hidden, mask)
        for layer, keys, values in zip(self.layers, self.cross_k, self.cross_v):
            keys[rows] = self._split(layer.encoder_attn.k_proj(states))
            values[rows] = self._split(layer.encoder_attn.v_proj(states))
        seen = mask.bool()
        # guidance's unconditional rows have no E_m: they see all of their zero states (attention
        # over nothing is NaN in some fused kernels; over zeros through bias-free projections it is 0)
        self.cross_mask[rows] = (seen | ~seen.any(-1, keepdim=True))[:, None, None, :]

    def forward(self, rows: Rows, tokens: torch.Tensor, positions: torch.Tensor, upto: int) -> torch.Tensor:
        """Logits (r, codebooks, vocab) at the last of ``tokens`` (r, codebooks, seq) placed at
        ``positions`` (r, seq); their keys and values go into the caches of ``rows``. A row
        attends to cache positions at or before its own, among the first ``upto``."""
        if isinstance(rows, slice):
            index = torch.arange(rows.start, rows.stop, device=self.device)[:, None]
        else:
            index = rows[:, None]
        hidden = sum(embed(tokens[:, k]) for k, embed in enumerate(self.decoder.embed_tokens))
        hidden = hidden + self.sinusoids[positions]
        visible = torch.arange(upto, device=self.device)[None, None, :] <= positions[:, :, None]  # (r, seq, upto)
        bias = _bias(visible[:, None], self.dtype)  # once per step, for every layer; position 0 is always seen
        cross_mask = self.cross_mask[rows]
        for number, layer in enumerate(self.layers):
            hidden = hidden + self._self_attention(number, layer, rows, index, hidden, positions, bias, upto)
            hidden = hidden + self._cross_attention(number, layer, rows, hidden, cross_mask)
            hidden = hidden + layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(hidden))))
        last = self.decoder.layer_norm(hidden[:, -1])
        return torch.stack([head(last) for head in self.heads], dim=1)

    def _self_attention(self, number, layer, rows, index, hidden, positions, bias, upto) -> torch.Tensor:
        attn = layer.self_attn
        x = layer.self_attn_layer_norm(hidden)
        query = self._split(attn.q_proj(x))
        keys, values = self.self_k[number], self.self_v[number]
        keys[index, :, positions] = self._split(attn.k_proj(x)).transpose(1, 2)
        values[index, :, positions] = self._split(attn.v_proj(x)).transpose(1, 2)
        out = self.attend(query, keys[rows, :, :upto], values[rows, :, :upto], attn_mask=bias, scale=attn.scaling)
        return attn.out_proj(self._merge(out))

    def _cross_attention(self, number, layer, rows, hidden, mask) -> torch.Tensor:
        attn = layer.encoder_attn
        query = self._split(attn.q_proj(layer.encoder_attn_layer_norm(hidden)))
        out = self.attend(query, self.cross_k[number][rows], self.cross_v[number][rows], attn_mask=mask,
                          scale=attn.scaling)
        return attn.out_proj(self._merge(out))


def _bias(visible: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An additive attention bias: 0 where a key is visible, -inf where not."""
    return torch.zeros(visible.shape, dtype=dtype, device=visible.device).masked_fill(~visible, float("-inf"))


def _attention(query, keys, values, attn_mask, scale) -> torch.Tensor:
    """``scaled_dot_product_attention``'s arithmetic in plain products, in float32 as the CPU's
    fused kernel accumulates half precision. Every row sees at least one key (position 0 in
    self-attention; in cross-attention ``set_cross`` lets guidance's unconditional rows see
    their zero states)."""
    scores = (query.float() @ keys.float().transpose(-1, -2)) * scale
    if attn_mask.dtype == torch.bool:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    else:
        scores = scores + attn_mask
    weights = torch.softmax(scores, dim=-1)
    return (weights @ values.float()).to(values.dtype)
