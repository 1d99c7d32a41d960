"""Small synthetic videos made with ffmpeg's lavfi sources, for the offline demo and tests.

No downloads: every picture is generated (test patterns, a fractal zoom, the game of life),
so the demo runs anywhere ffmpeg does.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cotvtm.video import ffmpeg
from cotvtm.video.ffmpeg import FFMPEG, ffmpeg_url
from cotvtm.video.probe import probe

SOURCES = ("lavfi", *ffmpeg.ACCEPTED)  # ffmpeg's own generators, and the files made from them
AUDIO_SOURCES = {"sine": "sine=frequency=440:sample_rate=44100", "silent": "anullsrc=r=44100:cl=stereo"}

# name -> make_video arguments: distinct colours and motion; one is longer than 10 s (2 windows).
SAMPLE_VIDEOS = {
    "counter_testsrc2_12s.mp4": dict(duration=12, source="testsrc2", audio="sine"),
    "mandelbrot_zoom_8s.mp4": dict(duration=8, source="mandelbrot=maxiter=256"),
    "colour_bars_hue_6s.mp4": dict(duration=6, source="smptebars", vf="hue=h=t*60", audio="silent"),
    "game_of_life_5s.mp4": dict(
        # seeded: the same picture every run, so that demo runs can be compared
        duration=5, source="life=mold=10:ratio=0.1:life_color=#00ff88:death_color=#aa0044:seed=7"
    ),
}


def make_sample_videos(out_dir: str | os.PathLike) -> list[Path]:
    """Write the demo videos into ``out_dir`` (320x180, H.264) and return their paths.
    Files that already exist are kept, so calling it again costs nothing."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, spec in SAMPLE_VIDEOS.items():
        path = out_dir / name
        if not path.exists():
            make_video(path, size="320x180", fps=25, **spec)
        paths.append(path)
    return paths


def make_video(
    path: str | os.PathLike,
    duration: float,
    size: str = "160x90",
    fps: int = 10,
    source: str = "testsrc2",
    vf: str | None = None,
    codec: str = "libx264",
    gop: int | None = None,
    extra_args: tuple[str, ...] = (),
    rotate: int | None = None,
    audio: bool | str = False,
    faststart: bool = False,
) -> Path:
    """Encode ``duration`` seconds of a lavfi ``source`` into ``path`` (container from the
    extension) and return it. ``gop`` sets the keyframe interval in frames; ``audio`` is
    False, True/"sine" or "silent"; ``rotate`` (90, 180, 270) stores display-rotation
    metadata meaning "turn this many degrees clockwise", like a portrait phone video.
    The file appears atomically.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}{path.suffix}")
    joiner = ":" if "=" in source else "="
    cmd = ["-f", "lavfi", "-i", f"{source}{joiner}size={size}:rate={fps}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", AUDIO_SOURCES["sine" if audio is True else audio]]
    cmd += ["-t", str(duration), "-map", "0:v"] + (["-map", "1:a"] if audio else [])
    cmd += (["-vf", vf] if vf else []) + ["-c:v", codec, "-pix_fmt", "yuv420p"]
    cmd += (["-g", str(gop)] if gop else []) + list(extra_args)
    if audio:
        cmd += ["-c:a", "libopus" if path.suffix.lower() == ".webm" else "aac"]
    if faststart:
        cmd += ["-movflags", "+faststart"]
    try:
        run_ffmpeg(cmd + [ffmpeg_url(tmp)])
        if rotate:
            _set_rotation(tmp, rotate)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def make_shots_video(path: str | os.PathLike, shots: list[tuple[str, float]], size: str = "160x120", fps: int = 10,
                     fade: int | None = None, audio: bool = False) -> Path:
    """Shots of lavfi sources joined by hard cuts at known times (the sums of the lengths);
    shot ``fade`` (an index) fades out to black and back in over its middle instead of cutting.
    A sine tone runs under it all with ``audio``."""
    path = Path(path)
    cmd, parts = [], []
    for i, (source, seconds) in enumerate(shots):
        cmd += ["-f", "lavfi", "-i", f"{source}=size={size}:rate={fps}"]
        chain = f"[{i}:v]trim=duration={seconds},setpts=PTS-STARTPTS"
        if i == fade:
            half = seconds / 2
            chain += f",fade=t=out:st={half - 2:.3f}:d=2,fade=t=in:st={half:.3f}:d=2"
        parts.append(f"{chain}[s{i}]")
    joined = "".join(f"[s{i}]" for i in range(len(shots)))
    graph = ";".join(parts) + f";{joined}concat=n={len(shots)}:v=1:a=0,format=yuv420p[v]"
    total = sum(seconds for _, seconds in shots)
    if audio:
        cmd += ["-f", "lavfi", "-t", str(total), "-i", AUDIO_SOURCES["sine"]]
    cmd += ["-filter_complex", graph, "-map", "[v]"] + (["-map", f"{len(shots)}:a", "-c:a", "aac"] if audio else [])
    run_ffmpeg(cmd + ["-c:v", "libx264", ffmpeg_url(path)])
    return path


def make_audio(path: str | os.PathLike, duration: float, codec: str = "aac") -> Path:
    """An audio-only file (a 440 Hz tone): a typical wrong input for a video tool."""
    run_ffmpeg(["-f", "lavfi", "-i", AUDIO_SOURCES["sine"], "-t", str(duration), "-c:a", codec,
                ffmpeg_url(path)])
    return Path(path)


def run_ffmpeg(args: list[str]) -> None:
    """Run ``ffmpeg -y <args>``; raise MediaError with its stderr summarised on failure."""
    ffmpeg.check(ffmpeg.run([FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-y", *args], "sample", "ffmpeg",
                            600, formats=SOURCES), "sample", "ffmpeg failed")


def _set_rotation(path: Path, clockwise: int) -> None:
    """Add rotation metadata by remuxing (ffmpeg 5.1 drops a ``rotate`` tag given while encoding).

    Measured with ffmpeg 5.1: on stream copy, ``-metadata:s:v rotate=R`` writes a display matrix
    that ffprobe reports as ``rotation: R`` (counter-clockwise), so a clockwise turn C needs
    ``R = -C``. The result is checked, since other ffmpeg versions read the tag differently.
    """
    remuxed = path.with_name(path.name + ".rot" + path.suffix)
    try:
        run_ffmpeg(["-i", ffmpeg_url(path), "-map", "0", "-c", "copy",
                    "-metadata:s:v:0", f"rotate={(360 - clockwise) % 360}", ffmpeg_url(remuxed)])
        got = probe(remuxed).rotation
        if got != clockwise % 360:
            raise RuntimeError(f"this ffmpeg wrote rotation {got}, wanted {clockwise}: "
                               "its 'rotate' tag convention differs from ffmpeg 5.1's")
        os.replace(remuxed, path)
    finally:
        if remuxed.exists():
            remuxed.unlink()
