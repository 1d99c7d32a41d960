"""Saved progress of unfinished videos: what counts as done, and how it reads back."""

import numpy as np
import pytest

from cotvtm.music.compose import TrackState
from cotvtm.pipelines.progress import PROGRESS_DIR, Plan, VideoProgress, remove_empty, scan, video_id
from cotvtm.storage import open_store
from cotvtm.video.types import VideoInfo
from cotvtm.video.windows import plan_windows

KEY = "shows/ep 1 $(rm -rf x).mp4"


@pytest.fixture
def progress(tmp_path):
    return VideoProgress(open_store(tmp_path / "out").child(".cotvtm-progress"), "digest", KEY)


def _plan(seconds: float, per_segment: int) -> Plan:
    info = VideoInfo(KEY, seconds, 64, 48, 0, 8.0, "h264", None, False, 1000)
    return Plan(info, plan_windows(seconds), per_segment)


def test_plan_groups_windows_into_segments_and_round_trips(progress):
    plan = _plan(125.0, 6)  # 13 windows: 6 + 6 + 1
    assert [len(s) for s in plan.segments] == [6, 6, 1]
    assert [s[0].index for s in plan.segments] == [0, 6, 12]
    progress.save_plan(plan)
    assert progress.load_plan() == plan


def test_a_segment_counts_only_once_its_marker_is_written(progress):
    progress.save_plan(_plan(30.0, 1))
    e_m, mask = np.ones((1, 4, 8), np.float32), np.ones((1, 4), np.int64)
    progress.save_conditioning(0, e_m, mask, {"explanations": [], "seconds": {"decode": 1.0}})
    progress.root.put_bytes(progress.prefix + "cond-00001.npz", b"written before a kill")  # no marker
    progress.save_audio(0, np.zeros(10, np.float32), TrackState(np.ones(3, np.float32), 10, 10.0, 1), ["d0"])
    progress.root.put_bytes(progress.prefix + "audio-00001.npy", b"no state after it")
    progress.save_audio(2, np.zeros(10, np.float32), TrackState(), ["d2"])  # not after a saved segment 1
    done = progress.done()
    assert done.plan and done.conditioned == {0} and done.composed == {0, 2}
    assert done.composed_prefix() == 1  # resume at segment 1, whatever lies beyond
    loaded_e_m, loaded_mask = progress.load_conditioning(0)
    assert np.array_equal(loaded_e_m, e_m) and np.array_equal(loaded_mask, mask)
    assert progress.load_meta(0)["seconds"] == {"decode": 1.0}
    state = progress.load_state(0)
    assert (state.emitted, state.elapsed, state.window, state.tail.tolist()) == (10, 10.0, 1, [1, 1, 1])
    assert progress.load_digests(0) == ["d0"]


def test_scan_lists_every_video_once_and_clear_removes_one(progress, tmp_path):
    root = progress.root
    other = VideoProgress(root, "digest", "other.mp4")
    progress.save_plan(_plan(10.0, 6))
    other.save_plan(_plan(10.0, 6))
    VideoProgress(root, "another-config", KEY).save_plan(_plan(10.0, 6))
    assert set(scan(root, "digest")) == {video_id(KEY), video_id("other.mp4")}
    progress.clear()
    assert set(scan(root, "digest")) == {video_id("other.mp4")}
    assert not any(part.startswith("ep 1") for p in tmp_path.rglob("*") for part in p.parts)  # names are hashes


def test_a_finished_run_leaves_no_empty_progress_folders(tmp_path):
    out = open_store(tmp_path / "out")
    root = out.child(PROGRESS_DIR)
    for key in ("a.mp4", "b.mp4"):
        VideoProgress(root, "digest", key).save_plan(_plan(10.0, 6))
    unfinished = VideoProgress(root, "other", "a.mp4")  # another configuration's saved work
    unfinished.save_plan(_plan(10.0, 6))
    VideoProgress(root, "digest", "a.mp4").discard()
    remove_empty(out, "digest")  # b.mp4's work is still there: kept
    assert set(scan(root, "digest")) == {video_id("b.mp4")}
    VideoProgress(root, "digest", "b.mp4").discard()
    remove_empty(out, "digest")
    assert sorted(p.name for p in (tmp_path / "out" / PROGRESS_DIR).iterdir()) == ["other"]
    unfinished.discard()
    remove_empty(out, "other")
    assert list((tmp_path / "out").iterdir()) == []
    remove_empty(out, "other")  # nothing left: nothing to do
