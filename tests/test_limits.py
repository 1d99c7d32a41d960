"""Inputs that claim too much and checkpoints that would run code: each is refused with a reason
naming the limit or the file, before it is planned or decoded, in bounded memory.

Peak memory is measured in a fresh interpreter and printed (``pytest -s``).
"""

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cotvtm.cli import parser
from tests.helpers import parsed_config as _config
from cotvtm.settings import Resources
from cotvtm.errors import CotvtmError, MediaError, ModelError
from cotvtm.eval import embedders
from cotvtm.prior import PriorConfig, TwoStagePrior
from cotvtm.training.loop import STATE, _save, read_checkpoint
from cotvtm.video import limits, media
from cotvtm.video.frames import READERS, read_window_frames
from cotvtm.video.image import image_frames, probe_image
from cotvtm.video.samples import make_video

REPO = Path(__file__).resolve().parents[1]
MB = 1 << 20
FULL_FRAME_MB = 8000 * 8000 * 3 // 2 // MB  # one decoded 8000x8000 4:2:0 frame


def _measured(code: str, env: dict | None = None) -> tuple[str, int]:
    """Run ``code`` in a fresh interpreter: its output, and its peak resident memory in MB.

    The peak is the interpreter's own (VmHWM): ``ru_maxrss`` would carry over the peak of the
    pytest process it was started from."""
    peak = "print('peak', int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) // 1024)"
    proc = subprocess.run([sys.executable, "-c", f"{code}\n{peak}"], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    output, _, megabytes = proc.stdout.rpartition("peak ")
    return output, int(megabytes)


def _attempts(setup: str, expression: str, *paths) -> str:
    """Code that evaluates ``expression`` for each ``path`` and prints the result or the refusal."""
    return "\n".join(["from cotvtm.errors import MediaError", setup, f"for path in {[str(p) for p in paths]!r}:",
                      "    try:", f"        print('made', {expression})",
                      "    except MediaError as exc:", "        print('refused', exc.reason)"])


def _ffmpeg(*args) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True, timeout=60)


def _square_mjpeg(path: Path, side: int, frames: int) -> Path:
    """``frames`` frames (8 a second) of one grey ``side`` x ``side`` JPEG, encoded once and copied."""
    picture = path.with_suffix(".jpg")
    _ffmpeg("-f", "lavfi", "-i", f"color=c=gray:size={side}x{side}", "-frames:v", 1, "-q:v", 31, picture)
    _ffmpeg("-loop", 1, "-framerate", 8, "-i", picture, "-t", frames / 8, "-c:v", "copy", path)
    return path


def _blank_png(path: Path, width: int, height: int) -> Path:
    """A 1-bit PNG of ``width`` x ``height`` written row by row: kilobytes on disk, never in memory whole."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row, packer = bytes(1 + (width + 7) // 8), zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


# ---- checkpoints ------------------------------------------------------------------------------


class _Planted:
    """Unpickles into ``open(marker, "w")``: a file that appears only if the pickle's code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_resume_reads_a_real_state_and_refuses_one_that_would_run_code(tmp_path):
    torch.manual_seed(0)
    prior = TwoStagePrior(PriorConfig.tiny())
    optimizer = torch.optim.AdamW(prior.parameters(), lr=1e-3)
    sum(p.sum() for p in prior.parameters()).backward()
    optimizer.step()
    _save(prior, optimizer, 3, tmp_path)
    resumed = TwoStagePrior(PriorConfig.tiny())
    done, state = read_checkpoint(resumed, tmp_path)  # what _save writes loads weights-only
    assert done == 3 and state["state"]
    torch.optim.AdamW(resumed.parameters(), lr=1e-3).load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(prior.state_dict().values(), resumed.state_dict().values()))

    marker = tmp_path / "code ran"
    torch.save({"done": 3, "optimizer": _Planted(marker)}, tmp_path / STATE)
    with pytest.raises(ModelError, match=r"train_state\.pt: refused: not a plain training state .*GLOBAL io\.open"):
        read_checkpoint(TwoStagePrior(PriorConfig.tiny()), tmp_path)
    with pytest.raises(ModelError, match="cannot read checkpoint"):  # the evaluation models' loader too
        embedders.load(f"cnn14:{tmp_path / STATE}")
    assert not marker.exists()


# ---- duration ---------------------------------------------------------------------------------


def _declaring(path: Path, seconds: float) -> Path:
    """A 1 s Matroska file whose Segment Info claims ``seconds``: its Duration element (ID 0x4489,
    an 8-byte float in TimecodeScale units, milliseconds) is rewritten."""
    make_video(path, duration=1, size="64x48", extra_args=("-write_crc32", "0"))
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")
    assert at > 0 and data.count(b"\x44\x89\x88") == 1
    data[at + 3:at + 11] = struct.pack(">d", seconds * 1000)
    path.write_bytes(bytes(data))
    return path


def test_a_file_declaring_ten_million_seconds_is_refused_before_planning(tmp_path):
    path = _declaring(tmp_path / "claims.mkv", 1e7)
    assert path.stat().st_size < 20_000
    for plan in ("plan_media_windows", "plan_shots"):
        windows = f"len(media.{plan}(path, 'claims.mkv', 10.0, 10.0)[1])"
        output, peak = _measured(_attempts("from cotvtm.video import media", windows, path))
        print(f"\n1e7 s header, {plan}: peak RSS {peak} MB; {output.strip()}")
        assert output.strip() == "refused declares 10000000 s, over the 86400 s limit (--max-duration)", output
        assert peak < 1024, f"{plan}: peak RSS {peak} MB"


def test_the_duration_limit_is_a_setting(tmp_path):
    path = make_video(tmp_path / "two seconds.mp4", duration=2, size="64x48")
    assert len(media.plan_media_windows(path, "two seconds.mp4", 1.0, 1.0)[1]) == 2
    with pytest.raises(MediaError, match=r"declares 2 s, over the 1\.5 s limit \(--max-duration\)"):
        media.plan_media_windows(path, "two seconds.mp4", 1.0, 1.0, max_duration_s=1.5)
    args = parser().parse_args(["soundtrack", "in", "out", "--max-duration", "3600", "--device", "cpu"])
    assert _config(args)[1].max_duration_s == 3600 and Resources().max_duration_s == limits.MAX_DURATION_S == 86400
    with pytest.raises(CotvtmError, match="--max-duration must be a positive number of seconds"):
        Resources(max_duration_s=0)


# ---- frame size -------------------------------------------------------------------------------


def test_an_8000_pixel_square_video_is_scaled_while_decoding(tmp_path):
    path = _square_mjpeg(tmp_path / "square.mkv", 8000, 8)
    times = [(i + 0.5) / 8 for i in range(8)]  # 8 distinct frames
    for reader in READERS:
        read = f"read_window_frames(path, {times}, 64, reader={reader!r}).shape"
        output, peak = _measured(_attempts("from cotvtm.video.frames import read_window_frames", read, path))
        print(f"\n8000x8000 MJPEG, 8 frames, {reader}: peak RSS {peak} MB (8 full frames: {8 * FULL_FRAME_MB} MB)")
        assert output.strip() == "made (8, 64, 64, 3)", output
        assert peak < 4 * FULL_FRAME_MB, f"{reader}: peak RSS {peak} MB, 8 full frames take {8 * FULL_FRAME_MB} MB"


def test_a_video_with_frames_over_the_pixel_limit_is_refused_unread(tmp_path):
    path = _square_mjpeg(tmp_path / "huge frames.mkv", 8200, 1)
    reason = r"video frames of 8200x8200 \(67240000 pixels\), over the 67108864 pixel limit for video frames"
    with pytest.raises(MediaError, match=reason):
        media.plan_media_windows(path, "huge frames.mkv", 10.0, 10.0)
    for reader in READERS:
        with pytest.raises(MediaError, match=reason):
            read_window_frames(path, [0.0], 64, reader=reader)


# ---- images -----------------------------------------------------------------------------------


def test_images_over_the_pixel_limit_are_refused_from_their_header(tmp_path):
    """14000 x 14000 is under Pillow's own refusal (twice its limit): the limit holds exactly."""
    big, bigger = _blank_png(tmp_path / "big.png", 14000, 14000), _blank_png(tmp_path / "bigger.png", 20000, 20000)
    assert big.stat().st_size < 100_000
    for call in ("probe_image(path, 10).width", "image_frames(path, 1, 64).shape"):
        output, peak = _measured(_attempts("from cotvtm.video.image import image_frames, probe_image", call, big,
                                           bigger))
        print(f"\n14000x14000 and 20000x20000 PNG, {call}: peak RSS {peak} MB")
        assert output.splitlines() == [
            "refused image of 14000x14000 (196000000 pixels), over the 134217728 pixel limit for images",
            "refused image of 400000000 pixels, over the 134217728 pixel limit for images"], output
        assert peak < 300, f"peak RSS {peak} MB; the 14000x14000 image alone decodes to 560 MB as RGB"


def test_an_eps_file_named_png_never_reaches_ghostscript(tmp_path):
    marker = tmp_path / "ghostscript ran"
    fake = tmp_path / "bin" / "gs"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n")
    fake.chmod(0o755)
    eps = tmp_path / "drawing.png"
    eps.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n0 0 moveto 16 16 lineto stroke\n%%EOF\n")
    env = dict(os.environ, PATH=f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    output, _ = _measured(_attempts("from cotvtm.video.image import image_frames", "image_frames(path, 1, 8).shape",
                                    eps), env=env)
    assert output.strip() == ("refused not an image that can be read (unknown or corrupt format; accepted: "
                              "JPEG, PNG, WEBP, BMP, TIFF, GIF)"), output
    assert not marker.exists()


def test_a_sideways_photo_is_probed_and_read_upright(tmp_path):
    """EXIF orientation 6 (turn 90 degrees clockwise): the stored left half ends on top."""
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20, 0], stored[:, 20:, 2] = 255, 255  # red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    info = probe_image(path, 10)
    assert (info.width, info.height) == (20, 40)
    [upright] = image_frames(path, 1, 20)
    assert upright.shape == (40, 20, 3)
    assert upright[:20, :, 0].mean() > 200 and upright[20:, :, 2].mean() > 200
