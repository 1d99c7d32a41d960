"""Captions for media that have none, written before the teacher labels them.

Part two of the paper's training set is emotion-labelled images (EmoSet) captioned by a
vision-language model (Qwen2-VL; CoT-VTM Section 4.1). A manifest row with an image or a video
and no caption is captioned here, by one of two captioners:

- ``VisionCaptioner``: an OpenAI-compatible chat endpoint that takes images (``--captioner-model``,
  ``--captioner-base-url``): one user message of a text part and image parts, each a base64
  JPEG data URL. An image is sent once; a video sends one frame at each window centre (at most
  ``MAX_FRAMES``, evenly chosen), in order.
- ``LocalCaptioner``: BLIP through transformers (``--captioner-local REF``: a hub id, a local
  folder, or ``tiny`` for the tiny preset's real-architecture BLIP with random weights).

The row's ``emotion`` (an EmoSet-style label) is passed as a hint: in the vision prompt, and as
BLIP's conditional text prefix. The caption and where it came from (``caption_source``) are
stored in the label, so a rerun, which skips labelled ids, captions nothing again.

The captions the teacher describes for ``--conditioning teacher`` and the evaluation's caption
baselines come from ``load_captioner`` (``--captioner``): BLIP on each window's middle frame
(``blip:REF``; the paper's setting is BLIP-large), or ``retrieval``, which needs no captioning
model: for each window the scene description (``scenes.py``) whose CLIP text embedding is nearest
to its frames'. It works offline; with real CLIP it is a zero-shot captioner, with the tiny
preset's random CLIP the choice is arbitrary. BLIP itself is ``encoders/captioner.py``.
"""

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cotvtm.errors import CotvtmError, ModelError
from cotvtm.teacher.ingest import CaptionItem
from cotvtm.teacher.schema import bounded_field

WINDOW_S = 10.0  # one frame per window of this length, as the soundtrack job windows a video
MAX_FRAMES = 8
SHORT_SIDE = 384  # frames are scaled so; enough for a caption, small to send
BLIP_DEFAULT = "Salesforce/blip-image-captioning-large"
BLIP_PAPER = f"blip:{BLIP_DEFAULT}"  # ``--captioner``'s default with real models
CANDIDATES = 400  # scene descriptions the retrieval captioner picks from

VISION_PROMPT = ("Write the caption of this {what}: one or two sentences that say only what can be seen (the "
                 "subjects, the setting, the light, the colors and the movement). Answer with the caption only.")
EMOTION_HINT = " The {what} is labelled with the emotion \"{emotion}\"; let the caption convey it."


@dataclass(frozen=True)
class CaptionerConfig:
    """Which captioner writes missing captions: a vision endpoint's model, else a local BLIP."""

    model: str | None = None  # vision endpoint model (the endpoint: ``endpoint``)
    local: str | None = None  # BLIP reference; None with no ``model``: ``BLIP_DEFAULT``

    @property
    def source(self) -> str:
        """What label records name as their caption's source."""
        return f"vision:{self.model}" if self.model else f"local:{self.local or BLIP_DEFAULT}"


def media_frames(media: str) -> tuple[list[np.ndarray], str]:
    """The pictures to caption ``media`` from (RGB uint8) and what it is ("image" or "video")."""
    from cotvtm.storage.open import open_store
    from cotvtm.storage.scratch import Scratch
    from cotvtm.video import media as media_files

    folder, name = media.rsplit("/", 1) if "/" in media else (".", media)
    try:
        with Scratch().pinned(open_store(folder), name) as source:
            info, windows = media_files.plan_media_windows(source.path, name, WINDOW_S, WINDOW_S)
            if media_files.is_image(name):
                windows = windows[:1]
            elif len(windows) > MAX_FRAMES:
                windows = [windows[round(i * (len(windows) - 1) / (MAX_FRAMES - 1))] for i in range(MAX_FRAMES)]
            frames = media_files.window_frames(source.path, name, info, windows, 1, SHORT_SIDE)
    except Exception as exc:  # a missing, unreadable or broken file: that item fails, with the reason
        raise CotvtmError(f"{media}: cannot be captioned: {getattr(exc, 'reason', None) or exc}") from None
    return [frame[0] for frame in frames], "image" if media_files.is_image(name) else "video"


def data_url(frame: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def vision_messages(frames: list[np.ndarray], what: str, emotion: str) -> list[dict]:
    """One user message: the instruction (with the emotion hint), then the frames in order."""
    noun = "image" if what == "image" else "video (its frames, in order)"
    text = VISION_PROMPT.format(what=noun) + (EMOTION_HINT.format(what=what, emotion=emotion) if emotion else "")
    parts = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": data_url(frame), "detail": "low"}} for frame in frames]
    return [{"role": "user", "content": parts}]


class VisionCaptioner:
    """Captions through an OpenAI-compatible vision model, with the teacher's retries and limits."""

    def __init__(self, teacher):
        self.teacher = teacher  # an LLMTeacher on the captioner's endpoint: its ``complete``

    async def caption(self, item: CaptionItem, usage) -> str:
        import asyncio

        frames, what = await asyncio.to_thread(media_frames, item.media)
        reply = await self.teacher.complete(vision_messages(frames, what, item.emotion), usage, json_mode=False)
        usage.add(reply)
        text = " ".join(reply.content.split()).strip('"')
        if not text:
            raise CotvtmError("the vision model's caption was empty")
        return bounded_field(text, "the vision model's caption")


class LocalCaptioner:
    """BLIP on this machine; a video is captioned from its middle window's frame."""

    def __init__(self, ref: str | None, cache_dir: Path | None = None):
        from cotvtm.encoders.captioner import BlipCaptioner

        ref = ref or BLIP_DEFAULT
        if ref == "tiny":
            from cotvtm import tiny
            from cotvtm.models import DEFAULT_CACHE

            ref = str(tiny.build_captioner(cache_dir or DEFAULT_CACHE))
        self.blip = BlipCaptioner(ref)

    def caption(self, item: CaptionItem) -> str:
        frames, _ = media_frames(item.media)
        prefix = f"a {item.emotion} picture of" if item.emotion else None
        text = " ".join(self.blip.caption([frames[len(frames) // 2]], 30, prefix, do_sample=False)[0].split())
        if not text:
            raise CotvtmError(f"{item.media}: the captioner wrote nothing")
        return text


def candidate_captions(count: int = CANDIDATES, seed: int = 0) -> list[str]:
    from cotvtm.teacher.scenes import sample_scenes, write_description

    return list(dict.fromkeys(write_description(scene) for scene in sample_scenes(count, seed)))


class RetrievalCaptioner:
    """Each window's caption: the candidate nearest its frames in CLIP's shared space."""

    def __init__(self, clip, captions: list[str] | None = None):
        self.clip = clip
        self.captions = captions or candidate_captions()
        self.bank = clip.embed_texts(self.captions)

    def __call__(self, frames: list[np.ndarray]) -> list[str]:
        visual = np.stack([self.clip.embed_images(f).mean(0) for f in frames])
        return [self.captions[i] for i in (visual @ self.bank.T).argmax(axis=1)]


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
    """``retrieval`` or ``blip:REF``: a callable from windows' frames to their captions."""
    if ref == "retrieval":
        return RetrievalCaptioner(clip)
    location = captioner_model(ref)
    if location:
        from cotvtm.encoders.captioner import BlipCaptioner

        return BlipCaptioner(location, device)
    raise ModelError(f"bad captioner {ref!r}: use 'retrieval' or 'blip:HUB_ID_OR_DIR'")
