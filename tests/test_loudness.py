"""--loudness: outputs measured by ffmpeg's ebur128 hit the target and stay under the true-peak ceiling."""

import json
import re
import subprocess

import pytest

from cotvtm.settings import Resources, SoundtrackConfig
from cotvtm.settings import Access
from cotvtm.pipelines.runner import run
from cotvtm.video.samples import make_video

TARGET, CEILING = -14.0, -1.0


def ebur128(path) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBFS) of a file's first audio track."""
    done = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", str(path), "-map", "0:a:0",
                           "-af", "ebur128=peak=true", "-f", "null", "-"], capture_output=True, text=True, check=True)
    summary = done.stderr[done.stderr.rfind("Summary:"):]
    return (float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1)),
            float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1)))


@pytest.mark.parametrize("audio", ["replace", "duck"])
def test_outputs_hit_the_target_loudness_under_the_ceiling(audio, tmp_path, model_cache, ray_session):
    """A short (12 s) and a long (45 s, five segments of music) video with a loud tone as their
    own audio: in both modes each output measures -14 +/- 1 LU and under -1 dBTP, and its
    sidecar says what was measured before."""
    src = tmp_path / "in"
    src.mkdir()
    make_video(src / "short.mp4", duration=12, size="64x48", fps=4, audio=True)
    make_video(src / "long.mp4", duration=45, size="64x48", fps=4, source="mandelbrot", audio=True)
    cfg = SoundtrackConfig(loudness=TARGET, true_peak=CEILING, audio=audio)
    summary = run(Access(source=str(src), dest=str(tmp_path / "out"), cache_dir=model_cache), cfg, Resources(segment_windows=1),
                  echo=lambda _: None)
    assert summary.ok == 2, [o.reason for o in summary.outcomes]
    for name in ("short", "long"):
        [video] = (tmp_path / "out").glob(f"{name}.*.mp4")
        integrated, peak = ebur128(video)
        print(f"{audio} {name}: {integrated:.2f} LUFS, true peak {peak:.2f} dBFS")
        assert abs(integrated - TARGET) <= 1.0 and peak <= CEILING
        loudness = json.loads(video.with_suffix(".json").read_text())["loudness"]
        assert loudness["target_lufs"] == TARGET and loudness["measured_lufs"] < TARGET - 1  # it was gained


def test_an_images_music_is_brought_to_the_target_too(tmp_path, model_cache, ray_session):
    src = tmp_path / "in"
    src.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64", "-frames:v", "1",
                    str(src / "still.png")], check=True)
    cfg = SoundtrackConfig(loudness=TARGET, true_peak=CEILING, image_seconds=12)
    assert run(Access(source=str(src), dest=str(tmp_path / "out"), cache_dir=model_cache), cfg, Resources(),
               echo=lambda _: None).ok == 1
    [music] = (tmp_path / "out").glob("still.*.m4a")
    integrated, peak = ebur128(music)
    print(f"image: {integrated:.2f} LUFS, true peak {peak:.2f} dBFS")
    assert abs(integrated - TARGET) <= 1.0 and peak <= CEILING
    assert json.loads(music.with_suffix(".json").read_text())["loudness"]["target_lufs"] == TARGET


def test_without_loudness_nothing_is_measured(tmp_path, model_cache, ray_session):
    src = tmp_path / "in"
    src.mkdir()
    make_video(src / "a.mp4", duration=5, size="64x48", fps=4)
    assert run(Access(source=str(src), dest=str(tmp_path / "out"), cache_dir=model_cache), SoundtrackConfig(), Resources(),
               echo=lambda _: None).ok == 1
    [sidecar] = (tmp_path / "out").glob("a.*.json")
    assert json.loads(sidecar.read_text())["loudness"] is None
