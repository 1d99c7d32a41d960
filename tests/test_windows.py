"""Window planning: how many windows, where they start and end, where frames are sampled."""

import pytest

from cotvtm.video.types import Window
from cotvtm.video.windows import SHOT_MAX_S, SHOT_MIN_S, plan_shot_windows, plan_windows, sample_times


def spans(windows):
    return [(w.index, round(w.start, 6), round(w.end, 6)) for w in windows]


def test_35_seconds_gives_four_windows_the_last_one_5_s():
    windows = plan_windows(35.0)
    assert spans(windows) == [(0, 0, 10), (1, 10, 20), (2, 20, 30), (3, 30, 35)]
    assert windows[-1].duration == pytest.approx(5.0)


@pytest.mark.parametrize("duration", [10.0, 10.0000001, 9.9999999])
def test_one_window_length_is_one_window(duration):
    assert spans(plan_windows(duration)) == [(0, 0, round(duration, 6))]


def test_short_clip_is_one_window():
    assert spans(plan_windows(3.0)) == [(0, 0, 3)]


def test_tiny_tail_is_merged_into_previous_window():
    windows = plan_windows(10.2)
    assert len(windows) == 1
    assert windows[0].end == 10.2


def test_tail_at_or_above_minimum_is_its_own_window():
    assert spans(plan_windows(20.6)) == [(0, 0, 10), (1, 10, 20), (2, 20, 20.6)]
    assert spans(plan_windows(10.5)) == [(0, 0, 10), (1, 10, 10.5)]
    assert len(plan_windows(10.2, min_tail_s=0.0)) == 2


def test_custom_window_length():
    assert spans(plan_windows(12.0, window_s=5.0)) == [(0, 0, 5), (1, 5, 10), (2, 10, 12)]


@pytest.mark.parametrize("duration", [0.3, 3.0, 9.99, 10.0, 10.4, 10.6, 35.0, 123.456, 3601.0])
def test_windows_cover_the_video_contiguously(duration):
    windows = plan_windows(duration)
    assert windows[0].start == 0.0
    assert windows[-1].end == duration
    assert [w.index for w in windows] == list(range(len(windows)))
    for before, after in zip(windows, windows[1:]):
        assert before.end == after.start
    assert all(min(0.5, duration) <= w.duration < 10.5 for w in windows)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_invalid_duration_raises(bad):
    with pytest.raises(ValueError):
        plan_windows(bad)


def test_invalid_window_length_raises():
    with pytest.raises(ValueError):
        plan_windows(10.0, window_s=0.0)


@pytest.mark.parametrize("window", [Window(0, 0.0, 10.0), Window(3, 30.0, 35.0), Window(0, 0.0, 0.3)])
@pytest.mark.parametrize("n", [1, 8, 16])
def test_sample_times_are_n_sorted_centres_inside_the_window(window, n):
    times = sample_times(window, n)
    assert len(times) == n
    assert times == sorted(times)
    assert all(window.start < t < window.end for t in times)
    step = window.duration / n
    assert times[0] == pytest.approx(window.start + step / 2)
    assert times[-1] == pytest.approx(window.end - step / 2)


def test_sample_times_of_first_window():
    assert sample_times(Window(0, 0.0, 10.0), 8) == pytest.approx([0.625 + 1.25 * i for i in range(8)])


def test_sample_times_needs_at_least_one_frame():
    with pytest.raises(ValueError):
        sample_times(Window(0, 0.0, 10.0), 0)


def _boundaries(windows):
    return [w.start for w in windows[1:]]


def test_shot_windows_put_every_boundary_on_a_cut_when_shots_fit():
    windows = plan_shot_windows(49.0, [6.0, 11.0, 19.0])
    assert [(w.start, w.end) for w in windows] == [(0.0, 6.0), (6.0, 11.0), (11.0, 19.0), (19.0, 29.0),
                                                   (29.0, 39.0), (39.0, 49.0)]  # the 30 s shot split evenly
    assert [w.index for w in windows] == list(range(6))


def test_short_shots_merge_and_long_ones_split_within_the_limits():
    windows = plan_shot_windows(30.0, [2.0, 3.0, 20.0, 22.0])
    assert _boundaries(windows) == [11.5, 20.0]  # 0-3 joins the first half of 3-20; 20-22 joins 22-30
    assert all(SHOT_MIN_S <= w.duration <= SHOT_MAX_S for w in windows)
    assert [(w.start, w.end) for w in plan_shot_windows(3.0, [1.0])] == [(0.0, 3.0)]  # one short video: one window
    assert len(plan_shot_windows(125.0, [])) == 12  # no cut: even windows of about 10 s
    tiny = plan_shot_windows(20.0, [0.2, 10.0, 19.9])  # cuts next to the ends make no sliver windows
    assert _boundaries(tiny) == [10.0]
