"""Saved work of unfinished videos, so that an interrupted video resumes where it stopped.

Everything lives in the output store under ``.cotvtm-progress/<config digest>/<video id>/``
(hidden, so listings of outputs never show it; removed once the video's output is done):

    plan.json           what the video is, its windows and how they group into segments
    cond-00003.npz      segment 3's music conditioning (E_m, mask)
    cond-00003.json     its explanations and stage timings; written last, so it marks the segment done
    audio-00003.npy     segment 3's final music samples
    music-00003.json    its windows' tokens digests
    state-00003.npz     the composer's state after segment 3; written last, marks the audio done

Every object is written whole (atomic rename or S3 PUT) and a segment counts only when its
marker exists, so a run killed at any instant leaves either a finished segment or none.
"""

import hashlib
import io
import json
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from cotvtm.music.compose import TrackState
from cotvtm.storage import Store
from cotvtm.video.types import VideoInfo, Window

PROGRESS_DIR = ".cotvtm-progress"
_NAME = re.compile(r"(cond|state)-(\d+)\.(json|npz)$")


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
        raw = json.loads(data)
        return cls(VideoInfo(**raw["info"]), [Window(**w) for w in raw["windows"]], raw["segment_windows"],
                   raw.get("identity", ""), raw.get("cuts", []))


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

    def __init__(self, root: Store, digest: str, key: str):
        self.root, self.prefix = root, f"{digest}/{video_id(key)}/"

    def _key(self, name: str) -> str:
        return self.prefix + name

    def save_plan(self, plan: Plan) -> None:
        self.root.put_bytes(self._key("plan.json"), plan.to_json())

    def load_plan(self) -> Plan:
        return Plan.from_json(self.root.get_bytes(self._key("plan.json")))

    def save_conditioning(self, segment: int, e_m: np.ndarray, mask: np.ndarray, meta: dict) -> None:
        self.root.put_bytes(self._key(f"cond-{segment:05d}.npz"), _npz(e_m=e_m, mask=mask))
        self.root.put_bytes(self._key(f"cond-{segment:05d}.json"), json.dumps(meta).encode())

    def load_conditioning(self, segment: int) -> tuple[np.ndarray, np.ndarray]:
        with np.load(io.BytesIO(self.root.get_bytes(self._key(f"cond-{segment:05d}.npz")))) as arrays:
            return arrays["e_m"], arrays["mask"]

    def load_meta(self, segment: int) -> dict:
        return json.loads(self.root.get_bytes(self._key(f"cond-{segment:05d}.json")))

    def save_audio(self, segment: int, audio: np.ndarray, state: TrackState, digests: list[str]) -> None:
        self.root.put_bytes(self._key(f"audio-{segment:05d}.npy"), _npy(np.asarray(audio, np.float32)))
        self.root.put_bytes(self._key(f"music-{segment:05d}.json"), json.dumps({"tokens_digest": digests}).encode())
        self.root.put_bytes(self._key(f"state-{segment:05d}.npz"), _npz(**state.to_arrays()))

    def load_digests(self, segment: int) -> list[str]:
        return json.loads(self.root.get_bytes(self._key(f"music-{segment:05d}.json")))["tokens_digest"]

    def load_audio(self, segment: int) -> np.ndarray:
        return np.load(io.BytesIO(self.root.get_bytes(self._key(f"audio-{segment:05d}.npy"))))

    def load_state(self, segment: int) -> TrackState:
        with np.load(io.BytesIO(self.root.get_bytes(self._key(f"state-{segment:05d}.npz")))) as arrays:
            return TrackState.from_arrays(arrays)

    def done(self) -> "Done":
        return Done.parse(info.key[len(self.prefix):] for info in self.root.list(self.prefix))

    def clear(self) -> None:
        self.root.delete_prefix(self.prefix)


@dataclass
class Done:
    """Which parts of one video are saved."""

    plan: bool = False
    conditioned: frozenset = frozenset()  # segment indices
    composed: frozenset = frozenset()

    @classmethod
    def parse(cls, names) -> "Done":
        plan, cond, state = False, set(), set()
        for name in names:
            match = _NAME.match(name)
            plan |= name == "plan.json"
            if match and match[1] == "cond" and match[3] == "json":
                cond.add(int(match[2]))
            elif match and match[1] == "state":
                state.add(int(match[2]))
        return cls(plan, frozenset(cond), frozenset(state))

    def composed_prefix(self) -> int:
        """How many leading segments have their music saved (resume after the last of them)."""
        count = 0
        while count in self.composed:
            count += 1
        return count


def scan(root: Store, digest: str) -> dict[str, Done]:
    """Every video's saved work under one config digest, by video id, in one listing."""
    names: dict[str, list[str]] = defaultdict(list)
    for info in root.list(f"{digest}/"):
        _, vid, name = info.key.split("/", 2)
        names[vid].append(name)
    return {vid: Done.parse(found) for vid, found in names.items()}
