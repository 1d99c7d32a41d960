"""The compared methods: each turns every test item into music of the item's length.

    cot-vtm        CLIP -> distilled prior (full) -> E_m -> MusicGen
    retrieval      CLIP -> nearest bank caption -> its description's T5 states (E_m) -> MusicGen
    mlp_mlp        the same with the MLP-MLP ablation prior
    no_rationale   the same with the no-rationale ablation prior
    caption2music  captioner -> caption as MusicGen's text prompt
    cot2music      captioner -> teacher with the CoT prompt -> music description -> MusicGen
    llm2music      captioner -> teacher with the direct prompt -> music description -> MusicGen

"Mapping" is everything from decoded frames to MusicGen's conditioning (CLIP and the prior,
or the captioner and the teacher); "decoding" is MusicGen. They are timed and their peak
memory measured separately, as in the paper's Table 5. Models are loaded and run once on one
item before the clock starts, so the first method timed does not pay for lazy initialisation.
For the text methods MusicGen's own T5 encoding falls inside decoding.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np
import torch

from cotvtm.eval.settings import PRIOR_METHODS, EvalConfig
from cotvtm.eval.measure import ResourceUsage, measure
from cotvtm.eval.priors import load_method_prior, parameters
from cotvtm.eval.testset import Item, fit


@dataclass
class Generated:
    method: str
    audio: list[np.ndarray]  # per item, exactly the item's length
    sample_rate: int
    mapping: ResourceUsage
    decoding: ResourceUsage
    mapping_params: int  # parameters of the local models in the mapping (a remote LLM is not counted)
    texts: list[str | None] = field(default_factory=list)  # what MusicGen was prompted with (text methods)
    notes: list[str] = field(default_factory=list)


class Toolkit:
    """Models shared by the methods, each loaded once."""

    def __init__(self, cfg: EvalConfig, refs):
        from cotvtm.encoders.clip import ClipEncoder
        from cotvtm.music.musicgen import MusicGenBackend, SamplingConfig

        self.cfg, self.refs = cfg, refs
        self.clip = ClipEncoder(refs.clip, cfg.device)
        self.music = MusicGenBackend(refs.musicgen, cfg.device,
                                     SamplingConfig(guidance_scale=cfg.guidance_scale, top_k=cfg.top_k))
        self._captioner = None
        self.music.generate_from_text(["warm-up"], seconds=0.2)  # untimed: first-call set-up

    @property
    def captioner(self):
        if self._captioner is None:
            from cotvtm.teacher.captioner import captioner_ref, load_captioner

            ref = captioner_ref(self.cfg.captioner, self.cfg.preset)
            self._captioner = load_captioner(ref, self.clip, self.cfg.device)
        return self._captioner

    def chunks(self, count: int):
        return [slice(s, min(s + self.cfg.batch_size, count)) for s in range(0, count, self.cfg.batch_size)]


def _decode(kit: Toolkit, items: list[Item], generate) -> tuple[list[np.ndarray], ResourceUsage]:
    """MusicGen over batches of items; ``generate(chunk, seconds, seed)`` -> (B, samples)."""
    rate, out, usage = kit.music.sample_rate, [], ResourceUsage()
    for index, chunk in enumerate(kit.chunks(len(items))):
        group = items[chunk]
        with measure(kit.cfg.device) as part:
            audio = generate(chunk, max(i.seconds for i in group), kit.cfg.seed + index)
        usage.add(part)
        out += [fit(a, int(round(i.seconds * rate))) for a, i in zip(audio, group)]
    return out, usage


def _mapped(kit: Toolkit, items: list[Item], condition) -> tuple[torch.Tensor, torch.Tensor, ResourceUsage]:
    """Every item's E_m and mask from its frames' mean CLIP embedding through
    ``condition(e_v, items)`` -> (E_m, mask), a chunk at a time, the mapping timed."""
    hidden, masks, mapping = [], [], ResourceUsage()
    for chunk in kit.chunks(len(items)):
        with measure(kit.cfg.device) as part:
            e_v = np.stack([kit.clip.embed_images(i.frames).mean(0) for i in items[chunk]])
            e_m, mask = condition(e_v, items[chunk])
        mapping.add(part)
        hidden.append(torch.as_tensor(e_m).float().cpu())
        masks.append(torch.as_tensor(mask).cpu())
    return torch.cat(hidden), torch.cat(masks), mapping


def _from_states(kit: Toolkit, items: list[Item], hidden: torch.Tensor, masks: torch.Tensor):
    """MusicGen conditioned on each item's E_m: the audio and the decoding's usage."""
    return _decode(kit, items, lambda c, s, seed: kit.music.generate(hidden[c], masks[c], s, seed=seed))


def run_prior(kit: Toolkit, items: list[Item], method: str, prior_dir: str | None) -> Generated:
    variant = PRIOR_METHODS[method]
    music_dim = int(kit.music.model.config.text_encoder.d_model)
    prior = load_method_prior(prior_dir, variant, kit.clip.dim, music_dim, kit.cfg.seed).to(kit.cfg.device)
    prior.sample(torch.from_numpy(kit.clip.embed_images(items[0].frames)[:1]), steps=1)  # untimed warm-up
    generator = torch.Generator().manual_seed(kit.cfg.seed)
    hidden, masks, mapping = _mapped(kit, items, lambda e_v, _: prior.sample(
        torch.from_numpy(e_v), steps=kit.cfg.prior_steps, generator=generator))
    audio, decoding = _from_states(kit, items, hidden, masks)
    notes = [] if prior.config.trained else ["untrained prior"]
    return Generated(method, audio, kit.music.sample_rate, mapping, decoding,
                     parameters(prior) + parameters(kit.clip.model.vision_model), [None] * len(items), notes)


def run_retrieval(kit: Toolkit, items: list[Item]) -> Generated:
    """The soundtrack job's default prior: each item conditioned on the music description of
    the bank caption nearest its frames (``cotvtm/prior/retrieval.py``); no training."""
    from cotvtm.encoders.music_text import MusicTextEncoder
    from cotvtm.prior.bank import SHIPPED, read_bank
    from cotvtm.prior.retrieval import TOKENS, RetrievalPrior
    from cotvtm.rng import stream_id

    bank = kit.cfg.bank or str(SHIPPED)
    t5 = MusicTextEncoder(kit.refs.t5, TOKENS, kit.cfg.device)
    prior = RetrievalPrior(read_bank(bank), kit.clip, t5, k=kit.cfg.retrieval_k)  # captions embedded untimed

    def condition(e_v: np.ndarray, chunk: list[Item]):
        return prior.sample(e_v, [stream_id(kit.cfg.seed, i.id, 0, "retrieval") for i in chunk])[:2]

    hidden, masks, mapping = _mapped(kit, items, condition)
    audio, decoding = _from_states(kit, items, hidden, masks)
    notes = [f"bank: {bank.rsplit('/', 1)[-1]} ({len(prior.entries)} captions)"]
    return Generated("retrieval", audio, kit.music.sample_rate, mapping, decoding,
                     parameters(kit.clip.model) + parameters(t5.model), [None] * len(items), notes)


def _captions(kit: Toolkit, items: list[Item]) -> list[str]:
    if kit.cfg.captions == "manifest" and all(i.caption for i in items):
        return [i.caption for i in items]
    made = kit.captioner([i.frames for i in items])
    if kit.cfg.captions == "manifest":
        return [i.caption or c for i, c in zip(items, made)]
    return made


def describe_music(captions: list[str], cot: bool, endpoint) -> tuple[list[str], list[str]]:
    """The teacher's music description per caption (offline rules, or an LLM endpoint), and notes."""
    from cotvtm.teacher.ingest import CaptionItem

    items = [CaptionItem(f"eval-{i}", c) for i, c in enumerate(captions)]
    if endpoint is None:
        from cotvtm.teacher.offline import OfflineTeacher

        teacher = OfflineTeacher(cot=cot)
        return [teacher.label(item).x_mt for item in items], []
    records = asyncio.run(_ask_llm(items, cot, endpoint))
    failed = [r for r in records if r.status != "ok"]
    notes = [f"{len(failed)} of {len(records)} teacher calls failed (first: {failed[0].reason}); their captions "
             "were used as prompts"] if failed else []
    return [r.x_mt if r.status == "ok" else r.caption for r in records], notes


async def _ask_llm(items, cot: bool, endpoint):
    from cotvtm.teacher.client import LLMTeacher

    teacher = LLMTeacher(endpoint, cot=cot)
    try:
        return [labelled.record for labelled in await asyncio.gather(*(teacher.label(i) for i in items))]
    finally:
        await teacher.close()


def run_text(kit: Toolkit, items: list[Item], method: str) -> Generated:
    captioner = kit.captioner  # loaded and warmed up outside the clock
    captioner([items[0].frames])
    texts, notes, mapping = [], [], ResourceUsage()
    for chunk in kit.chunks(len(items)):
        with measure(kit.cfg.device) as part:
            captions = _captions(kit, items[chunk])
            if method == "caption2music":
                described, why = captions, []
            else:
                described, why = describe_music(captions, method == "cot2music", kit.cfg.endpoint)
        mapping.add(part)
        texts += described
        notes += why
    audio, decoding = _decode(kit, items, lambda c, s, seed: kit.music.generate_from_text(texts[c], s, seed=seed))
    local = parameters(captioner.model) if hasattr(captioner, "model") else parameters(kit.clip.model)
    if method != "caption2music" and kit.cfg.endpoint is not None:
        notes.append(f"teacher: {kit.cfg.endpoint.teacher_model}")
    elif method != "caption2music":
        notes.append("teacher: offline rules" + ("" if method == "cot2music" else
                     " (they have no separate direct path: the same descriptions as cot2music)"))
    return Generated(method, audio, kit.music.sample_rate, mapping, decoding, local, texts, notes)


def run_method(kit: Toolkit, items: list[Item], method: str, prior_dirs: dict) -> Generated:
    if method in PRIOR_METHODS:
        return run_prior(kit, items, method, prior_dirs.get(PRIOR_METHODS[method]))
    if method == "retrieval":
        return run_retrieval(kit, items)
    return run_text(kit, items, method)
