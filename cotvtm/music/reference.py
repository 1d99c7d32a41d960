"""The engine's logits against transformers' own MusicGen forward, for one window.

The engine runs MusicGen's layers its own way (per-row positions, static caches, its own
attention), so its numbers are checked against the model's ``forward`` teacher-forced over the
same tokens: equal to float rounding in float32, within half precision's rounding in float16,
and greedy tokens equal wherever the best token leads the next by more than that rounding.
Used by the tests and by the GPU check (``bench/gpu_check.py``).
"""

from __future__ import annotations

import torch

from cotvtm.music.musicgen_layers import input_dtype
from cotvtm.music.engine import DecodeEngine
from cotvtm.music.sampling import guide, with_unconditional
from cotvtm.music.step_runner import DecodeWindow


@torch.inference_mode()
def engine_scores(engine: DecodeEngine, window: DecodeWindow) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Admit ``window`` alone and run it to the end: the engine's guided float32 scores at every
    step (steps, codebooks, vocab), its raw tokens (codebooks, positions) and its prefix length."""
    [slot] = engine.admit(window)
    start, scores = engine.length[slot], []
    while engine.windows[slot] is not None:
        runner = engine.runner
        shape = runner.bucket(max(engine.busy) + 1, max(engine.length[s] for s in engine.busy))
        scores.append(runner.scores(*shape)[slot].float().cpu())
        engine.step()
    return torch.stack(scores), runner.tokens[slot, :, : window.positions].cpu(), start


@torch.inference_mode()
def forward_scores(model, window: DecodeWindow, tokens: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """transformers' forward over ``tokens`` (codebooks, n): the guided float32 scores of the
    token after each position (n, codebooks, vocab), E_m given as the engine gets it."""
    device = next(model.decoder.parameters()).device
    hidden = torch.as_tensor(window.hidden, dtype=input_dtype(model), device=device)[None]
    mask = torch.as_tensor(window.mask, dtype=torch.long, device=device)[None]
    if guidance_scale and guidance_scale > 1:
        hidden, mask = with_unconditional(hidden, mask)
    rows, (codebooks, n) = hidden.shape[0], tokens.shape
    ids = tokens.to(device)[None].expand(rows, -1, -1).reshape(rows * codebooks, n)
    logits = model(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=ids).logits
    logits = logits.view(rows, codebooks, n, -1).permute(2, 0, 1, 3)  # (n, rows, codebooks, vocab)
    return guide(logits, guidance_scale).cpu()


def compare(model, engine: DecodeEngine, window: DecodeWindow, guidance_scale: float) -> dict:
    """The engine's scores at each step against the forward's at the same position: the largest
    difference, and how many greedy choices differ where the forward's best token leads by more
    than twice that (0 when the two agree to their own rounding)."""
    ours, tokens, start = engine_scores(engine, window)
    theirs = forward_scores(model, window, tokens[:, :-1], guidance_scale)[start - 1:]
    gap = float((ours - theirs).abs().max())
    top = theirs.topk(2, dim=-1).values
    clear = (top[..., 0] - top[..., 1]) > 2 * gap
    differ = (ours.argmax(-1) != theirs.argmax(-1)) & clear
    return {"max_abs_diff": gap, "choices": int(clear.numel()), "clear": int(clear.sum()),
            "clear_differ": int(differ.sum())}
