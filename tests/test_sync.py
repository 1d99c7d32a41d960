"""``--sync cuts``: music of a known tempo bent so that a beat lands on each shot cut."""

import numpy as np
import pytest
import soundfile as sf

from cotvtm.errors import MediaError
from cotvtm.music.beats import cut_offsets, track_beats
from cotvtm.music.sync import BOUND, PIECE_S, Warp, apply, bend_wav, plan

RATE, SECONDS = 44100, 20.0
PERIOD, FIRST = 0.5, 0.25  # 120 beats per minute, the first at 0.25 s
BEATS = list(np.arange(FIRST, SECONDS, PERIOD))
# off their beats by up to 60 ms, one on it (2 ms) and one far off (240 ms, in a short shot)
CUTS = [2.252, 4.79, 7.22, 9.81, 12.01, 14.27, 16.70, 18.22]
FAR_CUT = 12.01


def _music(start: int, end: int, rate: int, stereo: bool = True) -> np.ndarray:
    """Samples ``start`` to ``end`` of a click track (any stretch of it, without making the rest):
    decaying 1 kHz clicks on the beats over a hum; the right channel's clicks quieter, its hum
    a fifth up, so the channels differ."""
    t = np.arange(start, end) / rate
    since = np.mod(t - FIRST, PERIOD)
    click = np.where((t >= FIRST) & (since < 0.05), np.sin(2 * np.pi * 1000 * since) * np.exp(-since * 60), 0.0)
    left = 0.02 * np.sin(2 * np.pi * 110 * t) + 0.6 * click
    if not stereo:
        return left.astype(np.float32)
    return np.stack([left, 0.02 * np.sin(2 * np.pi * 165 * t) + 0.3 * click], axis=1).astype(np.float32)


def _onset(audio: np.ndarray, at: float) -> float:
    """The click nearest ``at`` (within 60 ms): where the left channel first passes 0.2."""
    low = int((at - 0.06) * RATE)
    return (low + int(np.argmax(np.abs(audio[low: low + int(0.12 * RATE), 0]) > 0.2))) / RATE


def _near(cuts: list[float], beats: np.ndarray, within: float = 0.02) -> float:
    """The share of ``cuts`` within ``within`` seconds of a beat."""
    return np.mean([abs(row["offset"]) <= within for row in cut_offsets(cuts, list(beats))])


@pytest.fixture(scope="session")
def bent(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sync")
    source = _music(0, int(SECONDS * RATE), RATE)
    sf.write(folder / "music.wav", source, RATE, subtype="FLOAT")
    warp = plan(BEATS, CUTS, SECONDS)
    bend_wav(str(folder / "music.wav"), str(folder / "bent.wav"), warp)
    return source, sf.read(folder / "bent.wav", dtype="float32")[0], warp


def test_beats_land_on_the_cuts_within_the_bound(bent):
    """The beats (tracked on the result, as the project tracks them) fall on the anchored cuts,
    each click's attack on the exact cut; every stretch stays within the bound; the cut too far
    from its beat for that is left out, saying why."""
    source, out, warp = bent
    assert len(out) == round(SECONDS * RATE)
    assert all(abs(ratio - 1) <= BOUND for ratio in warp.ratios)
    assert [row["cut"] for row in warp.skipped] == [FAR_CUT]
    far = warp.skipped[0]
    assert far["beat"] == 12.25 and abs(far["ratio"] - 1) > BOUND and "bound" in far["reason"]
    anchored = [cut for cut in CUTS if cut != FAR_CUT]
    assert [t for _, t in warp.anchors[1:-1]] == [2.25, *anchored[1:]]  # the on-beat cut's beat stays put
    assert _near(anchored, track_beats(source, RATE)[0]) < 0.5  # before: most are off
    assert _near(anchored, track_beats(out, RATE)[0]) >= 0.9
    assert max(abs(_onset(out, cut) - cut) for cut in anchored[1:]) < 0.001
    assert max(abs(warp.map(b) - c) for b, c in zip([2.25, 4.75, 7.25, 9.75, 14.25, 16.75, 18.25], anchored)) < 0.006
    described = warp.describe()
    assert described["bound"] == BOUND and described["skipped"][0]["cut"] == FAR_CUT
    assert [s["from"] for s in described["stretches"]] == [0.0, 2.25, *anchored[1:]]


def test_an_unstretched_span_is_copied_bit_for_bit_and_the_channels_stay_apart(bent):
    source, out, warp = bent
    assert warp.ratios[0] == 1.0  # 0 s to the on-beat cut's beat
    end = round(2.25 * RATE)
    assert np.array_equal(out[:end], source[:end])
    assert not np.array_equal(out[end: end + RATE], source[end: end + RATE])  # stretched from there
    difference = np.abs(out[:, 0] - out[:, 1]).mean()
    assert difference > 0.5 * np.abs(source[:, 0] - source[:, 1]).mean()
    hum = np.abs(np.fft.rfft(out[int(12.5 * RATE): int(13.5 * RATE)], axis=0))  # 1 s between clicks: 1 Hz bins
    assert hum[110, 0] > 5 * hum[110, 1] and hum[165, 1] > 5 * hum[165, 0]


def test_joins_do_not_click():
    """A steady tone through a copy, a slowed and a hurried stretch: no step at any join."""
    rate = 16000
    tone = (0.5 * np.sin(2 * np.pi * 220 * np.arange(3 * rate) / rate)).astype(np.float32)
    warp = Warp(((0.0, 0.0), (1.0, 1.0), (2.0, 2.03), (3.0, 3.0)))
    out = np.concatenate(list(apply(warp, lambda start, end: tone[start:end], rate, 1)))
    assert len(out) == 3 * rate and np.array_equal(out[:rate], tone[:rate])
    steepest = 0.5 * 2 * np.pi * 220 / rate  # the tone's largest step between samples
    assert np.abs(np.diff(out)).max() < 2 * steepest


def test_plan_leaves_out_what_it_cannot_anchor():
    beats = [0.5, 1.0, 1.5, 2.0, 2.5]
    warp = plan(beats, [1.01, 1.1, 3.5, 0.0], 3.0)  # 1.1's nearest beat is 1.01's; 3.5 lies past the end
    assert warp.anchors == ((0.0, 0.0), (1.0, 1.01), (3.0, 3.0))
    reasons = {row["cut"]: row["reason"] for row in warp.skipped}
    assert "already anchors the cut at 1.010" in reasons[1.1]
    assert "outside" in reasons[3.5] and "outside" in reasons[0.0]
    assert all(row["ratio"] is None for row in warp.skipped)
    assert [r["reason"] for r in plan([], [1.0], 3.0).skipped] == ["no beats were tracked in the music"]
    assert plan([], [1.0], 3.0).anchors == ((0.0, 0.0), (3.0, 3.0))
    assert warp.map(2.0) == pytest.approx(1.01 + (3.0 - 1.01) / 2) and warp.map(4.0) == 4.0


def test_a_long_track_streams_a_piece_at_a_time():
    """Ten minutes of music, cuts every 10 s (most on their beats, copied; a few off, and one
    stretch of minutes to bend): the music is read and yielded a piece at a time, the first
    piece before the reader has gone far, and the output is exactly as long as the music."""
    rate, seconds = 8000, 600.0
    offsets = {100.25: 0.04, 250.25: 0.04, 400.25: -0.04}
    cuts = [c + offsets.get(c, 0.0) for c in np.arange(10.25, seconds, 10.0)
            if not 260 < c < 400]
    warp = plan(list(np.arange(FIRST, seconds, PERIOD)), cuts, seconds)
    assert not warp.skipped and any(r != 1.0 for r in warp.ratios)
    reads = []

    def read(start: int, end: int) -> np.ndarray:
        reads.append((start, end))
        return _music(start, end, rate, stereo=False)

    chunks = apply(warp, read, rate, 1)
    first = next(chunks)
    assert max(end for _, end in reads) < 60 * rate
    sizes = [len(first)] + [len(chunk) for chunk in chunks]
    assert sum(sizes) == round(seconds * rate)
    assert max(sizes) <= PIECE_S * rate + 1 and max(end - start for start, end in reads) < (PIECE_S + 1) * rate


def test_unreadable_music_is_a_media_error(tmp_path):
    (tmp_path / "music.wav").write_bytes(b"not a wav")
    with pytest.raises(MediaError, match="cannot read the music"):
        bend_wav(str(tmp_path / "music.wav"), str(tmp_path / "bent.wav"), Warp(((0.0, 0.0), (1.0, 1.0))))
