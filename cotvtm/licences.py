"""Which licence each model of a run comes under, and whether it allows commercial use.

Every reference resolves to a ``Licence`` without the network:

- a folder the tiny preset built (``<cache>/tiny[-stable-audio[-3]]-v<N>-seed<S>/<component>`` beside the
  ``COMPLETE`` marker ``tiny.build_once`` writes last): random weights made here, no
  third-party weights, so commercial use is fine;
- a prior from ``cotvtm distill`` (``config.json`` with ``model_type`` ``cotvtm-prior``): the
  user's own (trained on the encoders' embeddings, whose weights it does not contain);
- any other local folder: the ``license:`` of its ``README.md`` front matter (a hub model
  card, or one the user writes), ``license_name:`` when that says ``other``; else unknown;
- a hub id: ``HUB`` below (the presets' ids, Stable Audio Open and Meta's
  ``facebook/musicgen-*``, from their model cards), else the model card in the hub's local
  cache when it was downloaded; else unknown.

- a run's other sources of what it makes: the captioner of ``--conditioning teacher`` (its model,
  as above) and the teacher itself, whose answers come under its provider's terms, which no file
  here can know: the user declares them (``--teacher-terms``), else they are unknown; with
  ``--audio voice`` the speech detector (``SPEECH_DETECTOR``), whose weights ship in its wheel.

``commercial`` is True, False or None (unknown); ``--commercial`` accepts only True.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from cotvtm.errors import CotvtmError
from cotvtm.models import RETRIEVAL as RETRIEVAL_PRIOR, ModelRefs, option_of
from cotvtm.prior.bank import SHIPPED


@dataclass(frozen=True)
class Licence:
    id: str  # e.g. "CC-BY-NC-4.0"
    commercial: bool | None  # None: not known
    source: str  # a model card URL, "model card README.md front matter in <path>", ...
    note: str | None = None  # conditions worth knowing (e.g. Llama 3's)

    def record(self) -> dict:
        """The sidecar's form: id, commercial, source (and note when there is one)."""
        return {k: v for k, v in asdict(self).items() if k != "note" or v}

    def label(self) -> str:
        return "licence unknown" if self.id == "unknown" else self.id


SPEECH_DETECTOR = Licence("MIT", True, "https://github.com/snakers4/silero-vad (the silero-vad wheel's licence; its "
                                        "weights ship inside the wheel)")


def _card(hub_id: str) -> str:
    return f"https://huggingface.co/{hub_id}"


_LLAMA3 = ("commercial use allowed under the Meta Llama 3 Community License's conditions (attribution 'Built "
           "with Meta Llama 3', the acceptable use policy, a separate licence above 700M monthly users); the "
           "LLM2Vec adapter itself is MIT")
_MUSICGEN = ("Meta's MusicGen weights are for research only: their training music was licensed for research "
             "(audiocraft issues #98, #198, #510)")
_STABILITY = ("free for commercial use by individuals and organisations with under US$1M annual revenue; above "
              "that an Enterprise licence from Stability AI; outputs are the user's; credit 'Powered by Stability AI'")
_GEMMA = ("commercial use allowed under Google's Gemma Terms of Use (https://ai.google.dev/gemma/terms) and its "
          "prohibited use policy, which pass on to anyone the weights are shared with")
_STABILITY_3 = f"{_STABILITY}; its T5Gemma text encoder and tokenizer come under the Gemma Terms of Use: {_GEMMA}"

# id, commercial, note: the licence each model card names.
HUB = {
    "openai/clip-vit-base-patch32": ("MIT", True, None),
    "openai/clip-vit-base-patch16": ("MIT", True, None),
    "openai/clip-vit-large-patch14": ("MIT", True, None),
    "google-t5/t5-base": ("Apache-2.0", True, None),
    "t5-base": ("Apache-2.0", True, None),
    "facebook/musicgen-small": ("CC-BY-NC-4.0", False, _MUSICGEN),
    "facebook/musicgen-medium": ("CC-BY-NC-4.0", False, _MUSICGEN),
    "facebook/musicgen-large": ("CC-BY-NC-4.0", False, _MUSICGEN),
    "McGill-NLP/LLM2Vec-Meta-Llama-3-8B-Instruct-mntp": ("Llama-3-Community-License", True, _LLAMA3),
    "stabilityai/stable-audio-open-1.0": ("Stability-AI-Community-License", True, _STABILITY),
    "stabilityai/stable-audio-3-medium": ("Stability-AI-Community-License", True, _STABILITY_3),
    "stabilityai/stable-audio-3-medium-base": ("Stability-AI-Community-License", True, _STABILITY_3),
    "google/t5gemma-b-b-ul2": ("Gemma-Terms-of-Use", True, _GEMMA),  # Stable Audio 3's text encoder
    "Salesforce/blip-image-captioning-large": ("BSD-3-Clause", True, None),  # the teacher's default captioner
    "Salesforce/blip-image-captioning-base": ("BSD-3-Clause", True, None),
}
_META_MUSICGEN = re.compile(r"facebook/musicgen-[A-Za-z0-9._-]+")  # melody, stereo-*: the same licence

# Hub licence tags (a model card's ``license:``) as SPDX-style ids, and whether they allow commercial use.
_TAGS = {
    "apache-2.0": ("Apache-2.0", True), "mit": ("MIT", True), "bsd-3-clause": ("BSD-3-Clause", True),
    "bsd-2-clause": ("BSD-2-Clause", True), "cc0-1.0": ("CC0-1.0", True), "cc-by-4.0": ("CC-BY-4.0", True),
    "cc-by-sa-4.0": ("CC-BY-SA-4.0", True), "openrail": ("OpenRAIL", True), "openrail++": ("OpenRAIL++", True),
    "creativeml-openrail-m": ("CreativeML-OpenRAIL-M", True), "llama2": ("Llama-2-Community-License", True),
    "llama3": ("Llama-3-Community-License", True), "llama3.1": ("Llama-3.1-Community-License", True),
    "llama3.2": ("Llama-3.2-Community-License", True), "llama3.3": ("Llama-3.3-Community-License", True),
    "stabilityai-ai-community": ("Stability-AI-Community-License", True),
    "cc-by-nc-4.0": ("CC-BY-NC-4.0", False), "cc-by-nc-sa-4.0": ("CC-BY-NC-SA-4.0", False),
    "cc-by-nc-nd-4.0": ("CC-BY-NC-ND-4.0", False), "cc-by-nc-2.0": ("CC-BY-NC-2.0", False),
    "cc-by-nc-3.0": ("CC-BY-NC-3.0", False), "cc-by-nc-sa-3.0": ("CC-BY-NC-SA-3.0", False),
}
_TINY_ROOT = re.compile(r"tiny(-[a-z0-9-]+)?-v\d+-seed-?\d+")  # the folders of tiny.build_all, build_stable_audio(_3)
UNTRAINED = Licence("none (untrained prior)", True, "built locally with random weights",
                    "an untrained prior of the encoders' sizes, made at run time")


def licences(refs: ModelRefs) -> dict[str, Licence]:
    """component -> the licence of its reference, for the components the run uses (see the
    module's docstring); no network."""
    return {name: of(ref) for name, ref in refs.used().items()}


RETRIEVAL = Licence("none (no weights)", True, "the retrieval prior: a bank's texts through the run's CLIP and T5",
                    "retrieval holds no weights of its own; the bank's licence is listed beside it")
SHIPPED_BANK = Licence("own (cotvtm's scene bank)", True, "scene texts made from the paper's scene templates and "
                       "labelled by cotvtm's offline teacher (rules, no LLM)", "texts only")


def of(ref: str | None) -> Licence:
    """The licence of one reference: a local folder, a bank file, a hub id, the retrieval prior,
    or None (the untrained prior)."""
    if ref is None:
        return UNTRAINED
    if ref == RETRIEVAL_PRIOR:
        return RETRIEVAL
    path = Path(ref)
    if path.is_file():
        if path.resolve() == SHIPPED.resolve():
            return SHIPPED_BANK
        return Licence("own (your bank)", True, f"a bank file ({path})", "captions and music descriptions your "
                       "teacher wrote: the terms of that teacher (an LLM's, for its outputs) apply to them")
    if path.is_dir():
        return _local(path)
    if ref in HUB or _META_MUSICGEN.fullmatch(ref):
        lid, commercial, note = HUB.get(ref) or HUB["facebook/musicgen-small"]
        return Licence(lid, commercial, _card(ref), note)
    cached = _hub_cache_card(ref)
    if cached is not None:
        return _from_card(cached, f"model card README.md front matter in {cached} (the hub's cache of {ref})")
    return Licence("unknown", None, f"unknown (no licence on record for this hub id; see {_card(ref)})")


def of_teacher(model: str, terms: str | None) -> Licence:
    """The terms an LLM teacher's answers come under, as the user declared them: a provider's
    terms for its outputs are a contract no model card records, so only the user can say."""
    said = "the provider's terms for its model's outputs, as declared by the user"
    if terms is None:
        return Licence("unknown (not declared)", None, f"the terms of the provider serving {model}: not declared",
                       "declare them with --teacher-terms commercial or non-commercial once you have read them")
    return Licence(f"declared {terms}", terms == "commercial", f"--teacher-terms {terms} (for {model})", said)


def is_tiny(path: Path) -> bool:
    """Whether ``path`` is a component the tiny preset built: ``tiny.build_all`` writes every
    component into ``<cache>/tiny-v<N>-seed<S>/`` and renames the folder into place only after
    writing its ``COMPLETE`` marker, so that marker beside a folder of that name says so."""
    root = path.resolve().parent
    return _TINY_ROOT.fullmatch(root.name) is not None and (root / "COMPLETE").is_file()


def _local(path: Path) -> Licence:
    if is_tiny(path):
        return Licence("none (random weights)", True, "built locally with random weights",
                       "the tiny preset: real architectures at toy size, no third-party weights")
    card = path / "README.md"
    if card.is_file():
        return _from_card(card, f"model card README.md front matter in {path}")
    if _prior_config(path):
        return Licence("own (distilled by cotvtm)", True, f"a cotvtm prior (config.json in {path})",
                       "trained on embeddings of the run's encoders; it holds none of their weights")
    return Licence("unknown", None, f"unknown (no README.md with a license: in {path})")


def _prior_config(path: Path) -> bool:
    try:
        return json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type") == "cotvtm-prior"
    except (OSError, ValueError, AttributeError):
        return False


def _from_card(card: Path, source: str) -> Licence:
    meta = front_matter(card)
    tag = meta.get("license")
    tag = tag.strip() if isinstance(tag, str) else ""  # one licence named, not a list or nothing
    if not tag:
        return Licence("unknown", None, f"unknown ({source} names no license)")
    if tag.lower() == "other" and isinstance(meta.get("license_name"), str):
        tag = str(meta["license_name"]).strip()
    lid, commercial = _TAGS.get(tag.lower(), (tag, _guess(tag)))
    return Licence(lid, commercial, source)


def _guess(tag: str) -> bool | None:
    """A licence name not in ``_TAGS``: non-commercial when it says so, else unknown."""
    words = set(re.split(r"[^a-z0-9]+", tag.lower()))
    return False if words & {"nc", "noncommercial", "research"} or "non-commercial" in tag.lower() else None


def front_matter(card: Path) -> dict:
    """A README's YAML front matter, as the hub reads it (``huggingface_hub``'s
    ``metadata_load``); {} when there is none or it cannot be read."""
    import yaml
    from huggingface_hub.repocard import metadata_load

    try:
        return metadata_load(card) or {}
    except (OSError, UnicodeError, ValueError, yaml.YAMLError):
        return {}


def _hub_cache_card(hub_id: str) -> Path | None:
    """The model card of ``hub_id`` in the hub's local cache, when it was downloaded (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(hub_id, "README.md")
    except Exception:  # no huggingface_hub, a malformed id: nothing on record
        return None
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def not_cleared(found: dict[str, Licence]) -> dict[str, Licence]:
    """The components whose licence does not clearly allow commercial use (False or unknown)."""
    return {name: lic for name, lic in found.items() if lic.commercial is not True}


_OPTIONS = {"teacher": "--teacher-model", "captioner": "--captioner"}  # how the user names what is not a ModelRefs field
_FIXES = {"teacher": "declare the teacher's terms with --teacher-terms commercial once its provider's terms allow "
                    "commercial use of its answers",
          "captioner": "choose a captioner you may use commercially with --captioner blip:PATH (a local model folder "
                       "whose README.md front matter names its license) or --captioner retrieval"}


def check_commercial(refs: ModelRefs, preset: str, given=(), found: dict[str, Licence] | None = None,
                     others: dict[str, str] | None = None) -> None:
    """Raise ``CotvtmError`` naming every model whose licence does not allow commercial use;
    ``given``: the components the user named (``--musicgen ...``), the others are the preset's;
    ``others``: what the run uses beside ``refs`` (``captioner``, ``teacher``), by name."""
    bad, others = not_cleared(found if found is not None else licences(refs)), others or {}
    if not bad:
        return
    parts, fixes = [], []
    for name, lic in bad.items():
        what = "not for commercial use" if lic.commercial is False else "its licence is not known"
        ref = others[name] if name in others else getattr(refs, name) or "(untrained)"
        option = _OPTIONS.get(name) or (option_of(name) if name in given else f"{name} (preset {preset})")
        parts.append(f"{option} {ref} is {lic.label()} ({what}; source {lic.source})")
        fixes.append(_FIXES.get(name))
    flags = ", ".join(f"{option_of(name)} PATH" for name in bad if name not in _FIXES)
    if flags:
        fixes.append(f"bring weights you may use commercially with {flags} (a local model folder whose README.md "
                     "front matter names its license)")
    raise CotvtmError(f"--commercial: {'; '.join(parts)}; {'; '.join(f for f in fixes if f)}")


def summary(found: dict[str, Licence]) -> str:
    """``musicgen (CC-BY-NC-4.0), rationale (licence unknown)``: the models not cleared, or ''."""
    return ", ".join(f"{name} ({lic.label()})" for name, lic in not_cleared(found).items())
