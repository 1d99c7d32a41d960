"""MusicGen's decoder over static caches, one row per slot and guidance half.

transformers' decoder keeps one cache position for the whole batch; the engine's slots are at
different positions (each window was admitted at its own step), so this module runs the same
layers with a per-row position: each row writes its keys and values at its own index of a
preallocated self-attention cache and attends to the positions at or before it. Cross-attention
keys and values are computed once per window when it is admitted. The weights are the loaded
transformers modules themselves (no conversion), so every MusicGen checkpoint works; the
arithmetic follows ``MusicgenDecoder.forward`` (sum of codebook embeddings + sinusoidal
positions, pre-norm self-attention, cross-attention and feed-forward, final norm, one head per
codebook), with ``scaled_dot_product_attention`` as transformers' "sdpa" attention calls it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class StaticDecoder:
    """Caches for ``rows`` rows of ``positions`` self-attention and ``text`` cross positions."""

    def __init__(self, model, rows: int, positions: int, text: int, device, dtype):
        decoder = model.decoder.model.decoder
        self.model, self.decoder, self.heads = model, decoder, model.decoder.lm_heads
        self.layers = list(decoder.layers)
        config = decoder.config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // self.num_heads
        self.num_codebooks = config.num_codebooks
        self.rows, self.positions, self.text = rows, positions, text
        self.device, self.dtype = device, dtype
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

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """(rows, seq, hidden) -> (rows, heads, seq, head_dim)."""
        return x.view(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)

    def encoder_states(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """E_m as the decoder sees it: projected when the sizes differ, zero where masked
        (``MusicgenForConditionalGeneration.forward``)."""
        config = self.model.config
        if (config.text_encoder.hidden_size != config.decoder.hidden_size
                and config.decoder.cross_attention_hidden_size is None):
            hidden = self.model.enc_to_dec_proj(hidden)
        return hidden * mask[..., None].to(hidden.dtype)

    def set_cross(self, rows: slice, hidden: torch.Tensor, mask: torch.Tensor) -> None:
        """Cross-attention keys and values of ``rows`` from E_m ``hidden`` (r, L, D), ``mask`` (r, L)."""
        length = hidden.shape[1]
        states = self.encoder_states(hidden.to(self.dtype), mask)
        for layer, keys, values in zip(self.layers, self.cross_k, self.cross_v):
            keys[rows] = 0
            values[rows] = 0
            keys[rows, :, :length] = self._split(layer.encoder_attn.k_proj(states))
            values[rows, :, :length] = self._split(layer.encoder_attn.v_proj(states))
        self.cross_mask[rows] = False
        self.cross_mask[rows, 0, 0, :length] = mask.bool()

    def forward(self, rows: slice, tokens: torch.Tensor, positions: torch.Tensor, upto: int) -> torch.Tensor:
        """Logits (r, codebooks, vocab) at the last of ``tokens`` (r, codebooks, seq) placed at
        ``positions`` (r, seq); their keys and values go into the caches of ``rows`` (a range of
        rows). A row attends to cache positions at or before its own, among the first ``upto``."""
        index = torch.arange(rows.start, rows.stop, device=self.device)[:, None]
        hidden = sum(embed(tokens[:, k]) for k, embed in enumerate(self.decoder.embed_tokens))
        hidden = hidden + self.sinusoids[positions]
        visible = torch.arange(upto, device=self.device)[None, None, :] <= positions[:, :, None]  # (r, seq, upto)
        visible = visible[:, None]
        for number, layer in enumerate(self.layers):
            hidden = hidden + self._self_attention(number, layer, rows, index, hidden, positions, visible, upto)
            hidden = hidden + self._cross_attention(number, layer, rows, hidden)
            hidden = hidden + layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(hidden))))
        last = self.decoder.layer_norm(hidden[:, -1])
        return torch.stack([head(last) for head in self.heads], dim=1)

    def _self_attention(self, number, layer, rows, index, hidden, positions, visible, upto) -> torch.Tensor:
        attn = layer.self_attn
        x = layer.self_attn_layer_norm(hidden)
        query = self._split(attn.q_proj(x))
        keys, values = self.self_k[number], self.self_v[number]
        keys[index, :, positions] = self._split(attn.k_proj(x)).transpose(1, 2)
        values[index, :, positions] = self._split(attn.v_proj(x)).transpose(1, 2)
        out = F.scaled_dot_product_attention(query, keys[rows, :, :upto], values[rows, :, :upto],
                                             attn_mask=visible, scale=attn.scaling)
        return attn.out_proj(self._merge(out))

    def _cross_attention(self, number, layer, rows, hidden) -> torch.Tensor:
        attn = layer.encoder_attn
        query = self._split(attn.q_proj(layer.encoder_attn_layer_norm(hidden)))
        out = F.scaled_dot_product_attention(query, self.cross_k[number][rows], self.cross_v[number][rows],
                                             attn_mask=self.cross_mask[rows], scale=attn.scaling)
        return attn.out_proj(self._merge(out))
