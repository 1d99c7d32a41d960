"""The numbers at the top of the page: counts, hours of video (images apart), throughput, models."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from cotvtm.jsonl import seconds_of
from cotvtm.report.collect import Collected, ReportEntry
from cotvtm.video.media import is_image


@dataclass
class Totals:
    latest: Counter  # status -> inputs, latest row per input
    run: Counter  # status -> inputs, the latest run only
    video_seconds: float  # video with music in the output (ok or skipped); images' music apart
    run_video_seconds: float  # video soundtracked by the latest run
    timed_video_seconds: float  # the part of the latest run's media (videos, images' music) with stage times
    stage_seconds: dict[str, float]  # per stage, summed over the latest run's videos
    wall_seconds: float | None  # the latest run's wall time, when the caller knows it
    models: dict | None = None
    prior_trained: bool | None = None
    note: str | None = None
    digests: list[str] = field(default_factory=list)
    uncleared: dict[str, str] = field(default_factory=dict)  # component -> licence: not cleared for commercial use
    conditioning: str | None = None  # what conditioned the music, in words (the newest sidecar's)
    run_videos: int = 0  # videos and images the latest run gave music (inputs, not --variants tracks)
    run_images: int = 0
    run_image_seconds: float = 0.0  # the music made for them
    images: int = 0  # images with music in the output (ok or skipped)

    @property
    def compute_seconds(self) -> float:
        return sum(self.stage_seconds.values())

    def realtime(self) -> tuple[float, str] | None:
        """Seconds of video per second, and what time it is measured against.

        Wall time when known (what a user waits for); otherwise the sum of per-video stage
        times, which is one worker's worth of work and ignores overlap between stages.
        """
        made = self.run_video_seconds + self.run_image_seconds
        if made <= 0:
            return None
        if self.wall_seconds:
            return made / self.wall_seconds, "wall time"
        if self.compute_seconds > 0:
            return self.timed_video_seconds / self.compute_seconds, "summed stage time"
        return None


def totals(collected: Collected, wall_seconds: float | None = None) -> Totals:
    entries = collected.entries
    ran = [e for e in entries if e.id in collected.run_keys]
    done = [e for e in entries if e.status in ("ok", "skipped") and e.sidecar is not None]
    made = [e for e in ran if e.status == "ok"]
    timed = [e for e in made if _stages([e])]
    videos, images = _apart(made)
    done_videos, done_images = _apart(done)
    result = Totals(latest=Counter(e.status for e in entries), run=Counter(e.status for e in ran),
                    video_seconds=sum(e.duration for e in done_videos),
                    run_video_seconds=sum(e.duration for e in videos),
                    timed_video_seconds=sum(e.duration for e in timed),
                    stage_seconds=_stages(timed), wall_seconds=wall_seconds,
                    run_videos=len({e.key for e in videos}), run_images=len({e.key for e in images}),
                    run_image_seconds=sum(e.duration for e in images),
                    images=len({e.key for e in done_images}))
    _models(result, made or done)
    result.uncleared = _uncleared(done)
    return result


def _apart(entries: list[ReportEntry]) -> tuple[list[ReportEntry], list[ReportEntry]]:
    """The entries of videos, and those of images: an image's music is not video soundtracked."""
    return [e for e in entries if not is_image(e.key)], [e for e in entries if is_image(e.key)]


def _uncleared(entries: list[ReportEntry]) -> dict[str, str]:
    """The models any output was made with whose sidecar does not say commercial use is allowed
    (``commercial`` false or null), by component, with their licence ids."""
    found: dict[str, set[str]] = {}
    for entry in entries:
        recorded = (entry.sidecar or {}).get("licences")
        for name, lic in (recorded.items() if isinstance(recorded, dict) else ()):
            if isinstance(lic, dict) and lic.get("commercial") is not True:
                found.setdefault(str(name), set()).add(str(lic.get("id") or "unknown"))
    return {name: ", ".join(sorted(ids)) for name, ids in sorted(found.items())}


def _stages(entries: list[ReportEntry]) -> dict[str, float]:
    summed: dict[str, float] = {}
    for entry in entries:
        stages = (entry.sidecar or {}).get("seconds")
        for stage, seconds in (stages.items() if isinstance(stages, dict) else ()):
            if (value := seconds_of(seconds)) is not None:
                summed[str(stage)] = summed.get(str(stage), 0.0) + value
    return summed


def _models(result: Totals, entries: list[ReportEntry]) -> None:
    """Models and prior state from the newest sidecar (by manifest time); every digest seen."""
    with_sidecar = [e for e in entries if e.sidecar]
    if not with_sidecar:
        return
    newest = max(with_sidecar, key=lambda e: str(e.row.get("time", ""))).sidecar
    result.models = newest.get("models") if isinstance(newest.get("models"), dict) else None
    result.prior_trained = newest.get("prior_trained")
    result.note = newest.get("note")
    result.conditioning = newest.get("conditioning") if isinstance(newest.get("conditioning"), str) else None
    digests = (str(e.sidecar.get("config_digest")) for e in with_sidecar if e.sidecar.get("config_digest"))
    result.digests = list(dict.fromkeys(digests))
