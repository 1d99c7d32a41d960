"""Saved work of unfinished videos, so that an interrupted video resumes where it stopped.

Everything lives in the output store under ``.cotvtm-progress/<config digest>/<video id>/``
(hidden, so listings of outputs never show it; removed once the video's output is done, and the
folders a run leaves empty at its end: ``remove_empty``):

    plan.json           what the video is, its windows and how they group into segments
    cond-00003.npz      segment 3's music conditioning (E_m, mask)
    cond-00003.json     its explanations and stage timings; written last, so it marks the segment done
    audio-00003.npy     segment 3's final music samples (channels-last: (samples,) or (samples, 2))
    music-00003.json    its windows' tokens digests
    state-00003.npz     the composer's state after segment 3 (its tail and audio context as the
                        audio); written last, marks the audio done
    audio-v2-00003.npy  the same three for variant 2 (``--variants``), and so on: the plan and
    ...                 the conditioning are shared by every variant, and the folder is removed
                        once all of them are done

Every object is written whole (atomic rename or S3 PUT) and a segment counts only when its
marker exists, so a run killed at any instant leaves either a finished segment or none.

Anything else found there (a stray file or folder, a name not written as above) is passed
over; saved work that does not read back as written raises DamagedProgress, and the caller
throws it away and makes it again.
"""

import hashlib
import io
import json
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from cotvtm.errors import CotvtmError
from cotvtm.jsonl import seconds_of
from cotvtm.music.compose import TrackState
from cotvtm.storage import StorageError, Store
from cotvtm.video.types import VideoInfo, Window

PROGRESS_DIR = ".cotvtm-progress"
_NAME = re.compile(r"(cond|state)-(?:v([2-9]|[1-9][0-9]+)-)?([0-9]{5,})\.(json|npz)")
_VIDEO_ID = re.compile(r"[0-9a-f]{24}")


class DamagedProgress(CotvtmError):
    """Saved work that does not read back as it was written: make it again."""


def video_id(key: str) -> str:
    """Keys may hold anything; the progress folder is named by a hash."""
    return hashlib.sha256(key.encode()).hexdigest()[:24]


@dataclass
class Plan:
    """A video's windows grouped into segments: the unit of work that is saved.

    ``identity`` is the input's content identity when it was planned (``ObjectInfo.identity``):
    saved work is reused only for the same content.
    """

    info: VideoInfo
    windows: list[Window]
    segment_windows: int
    identity: str = ""
    cuts: list[float] = field(default_factory=list)  # shot cuts (seconds) with --windows shots

    @property
    def segments(self) -> list[list[Window]]:
        size = self.segment_windows
        return [self.windows[i: i + size] for i in range(0, len(self.windows), size)]

    def to_json(self) -> bytes:
        return json.dumps({"info": asdict(self.info), "windows": [asdict(w) for w in self.windows],
                           "segment_windows": self.segment_windows, "identity": self.identity,
                           "cuts": self.cuts}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Plan":
        """The plan as ``to_json`` wrote it; DamagedProgress for anything else (a number that is
        not finite or is negative included), so that no bad value reaches the windows."""
        raw = _json(data, "plan")
        if not isinstance(raw, dict):
            raise DamagedProgress("the plan is not a JSON object")
        windows = raw.get("windows")
        if not isinstance(windows, list):
            raise DamagedProgress("the plan has no list of windows")
        plan = cls(_checked(VideoInfo, raw.get("info"), "info"),
                   [_checked(Window, w, f"window {i}") for i, w in enumerate(windows)],
                   _value(raw.get("segment_windows"), "int", "segment_windows"),
                   _value(raw.get("identity", ""), "str", "identity"),
                   [_value(cut, "float", f"cut {i}") for i, cut in enumerate(_listed(raw.get("cuts", []), "cuts"))])
        if plan.segment_windows < 1 or any(w.index != i or w.end < w.start for i, w in enumerate(plan.windows)):
            raise DamagedProgress("the plan's windows are out of order")
        return plan


def _json(data: bytes, what: str):
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise DamagedProgress(f"the {what} is not JSON") from None


def _listed(value, name: str) -> list:
    if not isinstance(value, list):
        raise DamagedProgress(f"the plan's {name} is not a list")
    return value


def _checked(cls, raw, name: str):
    """``cls(**raw)`` for a dataclass of plain fields, each of its declared type."""
    if not isinstance(raw, dict):
        raise DamagedProgress(f"the plan's {name} is not a JSON object")
    kinds = {f.name: f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
             for f in fields(cls)}
    return cls(**{field: _value(raw.get(field), kind, f"{name}.{field}") for field, kind in kinds.items()})


_KINDS = {"str": "text", "bool": "true or false", "int": "whole number", "float": "number"}


def _value(value, kind: str, name: str):
    """``value`` if it is of ``kind`` ('str', 'bool', 'int', 'float', 'int | None'); numbers
    must be finite and not negative."""
    base = kind.removesuffix(" | None")
    if base != kind and value is None:
        return None
    ok = {"str": isinstance(value, str), "bool": isinstance(value, bool), "float": seconds_of(value) is not None,
          "int": seconds_of(value) is not None and isinstance(value, int)}.get(base, True)
    if not ok:
        shown = repr(value)[:40] if isinstance(value, (str, int, float)) else type(value).__name__
        raise DamagedProgress(f"the plan's {name} is {shown}, not a usable {_KINDS[base]}")
    return float(value) if base == "float" else value


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


class VideoProgress:
    """Reads and writes one video's saved work."""

    def __init__(self, root: Store, digest: str, key: str, variant: int = 1):
        self.root, self.prefix = root, f"{digest}/{video_id(key)}/"
        self.variant = variant

    @property
    def staging(self) -> str:
        """The folder (in the video's) where this variant's outputs are made before they are
        published: variants of one input may be muxed at once, by different actors."""
        return "staged" if self.variant == 1 else f"staged-v{self.variant}"

    def _music(self, kind: str, segment: int, ext: str) -> str:
        """The key of one of this variant's music files (variant 1's names have no tag)."""
        tag = "" if self.variant == 1 else f"v{self.variant}-"
        return self._key(f"{kind}-{tag}{segment:05d}.{ext}")

    def _key(self, name: str) -> str:
        return self.prefix + name

    def save_plan(self, plan: Plan) -> None:
        self.root.put_bytes(self._key("plan.json"), plan.to_json())

    def load_plan(self) -> Plan:
        """The saved plan; DamagedProgress, naming the file, when it does not parse."""
        return self._parsed("plan.json", Plan.from_json)

    def _parsed(self, name: str, parse):
        data = self.root.get_bytes(self._key(name))
        try:
            return parse(data)
        except DamagedProgress as exc:
            raise DamagedProgress(f"{self.root.uri(self._key(name))}: {exc}") from None

    def save_conditioning(self, segment: int, e_m: np.ndarray, mask: np.ndarray, meta: dict) -> None:
        self.root.put_bytes(self._key(f"cond-{segment:05d}.npz"), _npz(e_m=e_m, mask=mask))
        self.root.put_bytes(self._key(f"cond-{segment:05d}.json"), json.dumps(meta).encode())

    def load_conditioning(self, segment: int) -> tuple[np.ndarray, np.ndarray]:
        with np.load(io.BytesIO(self.root.get_bytes(self._key(f"cond-{segment:05d}.npz")))) as arrays:
            return arrays["e_m"], arrays["mask"]

    def load_meta(self, segment: int) -> dict:
        return self._parsed(f"cond-{segment:05d}.json", _meta)

    def save_audio(self, segment: int, audio: np.ndarray, state: TrackState, digests: list[str]) -> None:
        self.root.put_bytes(self._music("audio", segment, "npy"), _npy(np.asarray(audio, np.float32)))
        self.root.put_bytes(self._music("music", segment, "json"), json.dumps({"tokens_digest": digests}).encode())
        self.root.put_bytes(self._music("state", segment, "npz"), _npz(**state.to_arrays()))

    def load_digests(self, segment: int) -> list[str]:
        key = self._music("music", segment, "json")
        return self._parsed(key[len(self.prefix):], _digests)

    def load_audio(self, segment: int) -> np.ndarray:
        return np.load(io.BytesIO(self.root.get_bytes(self._music("audio", segment, "npy"))))

    def load_state(self, segment: int) -> TrackState:
        with np.load(io.BytesIO(self.root.get_bytes(self._music("state", segment, "npz")))) as arrays:
            return TrackState.from_arrays(arrays)

    def done(self) -> "Done":
        return Done.parse(info.key[len(self.prefix):] for info in self.root.list(self.prefix))

    def clear(self) -> None:
        self.root.delete_prefix(self.prefix)

    def discard(self) -> None:
        """``clear`` once the work is published: a failure is a warning, leftovers only cost space."""
        try:
            self.clear()
        except StorageError as exc:
            print(f"warning  progress folder {self.prefix} not removed: {exc.reason}", flush=True)


@dataclass
class Done:
    """Which parts of one video are saved."""

    plan: bool = False
    conditioned: frozenset = frozenset()  # segment indices
    music: dict = field(default_factory=dict)  # variant -> segment indices whose music is saved

    @property
    def composed(self) -> frozenset:
        return self.composed_of(1)

    def composed_of(self, variant: int) -> frozenset:
        return self.music.get(variant, frozenset())

    @classmethod
    def parse(cls, names) -> "Done":
        """Only names exactly as they are written count (``cond-00003.json``, not
        ``cond-3.json`` nor ``cond-00003.json/x``): any other name is not a saved part."""
        plan, cond, state = False, set(), defaultdict(set)
        for name in names:
            match = _NAME.fullmatch(name)
            plan |= name == "plan.json"
            tag = f"v{match[2]}-" if match and match[2] else ""
            if not match or name != f"{match[1]}-{tag}{int(match[3]):05d}.{match[4]}":
                continue
            if match[1] == "cond" and match[4] == "json" and not tag:
                cond.add(int(match[3]))
            elif match[1] == "state" and match[4] == "npz":
                state[int(match[2] or 1)].add(int(match[3]))
        return cls(plan, frozenset(cond), {variant: frozenset(found) for variant, found in state.items()})

    def composed_prefix(self) -> int:
        """How many leading segments have their music saved (resume after the last of them)."""
        count = 0
        while count in self.composed:
            count += 1
        return count


def scan(root: Store, digest: str) -> dict[str, Done]:
    """Every video's saved work under one config digest, by video id, in one listing. Files
    that are not in a video's folder (strays) are passed over."""
    names: dict[str, list[str]] = defaultdict(list)
    for info in root.list(f"{digest}/"):
        parts = info.key.split("/", 2)
        if len(parts) == 3 and _VIDEO_ID.fullmatch(parts[1]):
            names[parts[1]].append(parts[2])
    return {vid: Done.parse(found) for vid, found in names.items()}


def remove_empty(out: Store, digest: str) -> None:
    """Remove ``PROGRESS_DIR/<digest>/`` and then ``PROGRESS_DIR/`` of a local output when the run
    has left them empty (every video's folder goes once its output is done). Called by the
    driver once the run's passes are over, so that no stage is writing there; a bucket has no
    folders to remove, and a folder still holding work is kept."""
    try:
        root = out.local_path(PROGRESS_DIR)
    except StorageError:  # a link out of the output: nothing of ours
        return
    for folder in (root / digest, root) if root is not None else ():
        try:
            folder.rmdir()
        except OSError:  # not empty (unfinished work, another config's), not there, or not a folder
            return


def _meta(data: bytes) -> dict:
    """A segment's explanations and stage times, as ``save_conditioning`` wrote them."""
    meta = _json(data, "segment's record")
    if not (isinstance(meta, dict) and isinstance(meta.get("explanations"), list)
            and isinstance(meta.get("seconds"), dict)
            and all(seconds_of(v) is not None for v in meta["seconds"].values())):
        raise DamagedProgress("the segment's record lacks its explanations or stage times")
    return meta


def _digests(data: bytes) -> list[str]:
    digests = _json(data, "segment's music record")
    digests = digests.get("tokens_digest") if isinstance(digests, dict) else None
    if not (isinstance(digests, list) and all(isinstance(d, str) for d in digests)):
        raise DamagedProgress("the segment's music record has no list of tokens digests")
    return digests
