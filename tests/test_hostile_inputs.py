"""Files from strangers: a playlist in a video's clothes, a file that is both a playlist and a
video, an input swapped between the passes, names that differ only in extension or case."""

import ctypes
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from s3server import s3_env, s3_server  # noqa: F401  (pytest fixtures)

from cotvtm.settings import READERS, Resources, SoundtrackConfig
from cotvtm.errors import CotvtmError, MediaError
from cotvtm.pipelines import runner
from cotvtm.pipelines.runner import run
from cotvtm.settings import Access
from cotvtm.storage import open_store
from cotvtm.video import image, mux, shots
from cotvtm.video.delivery import Original
from cotvtm.video.frames import read_window_frames
from cotvtm.video.probe import probe
from cotvtm.video.samples import make_video

FAST = SoundtrackConfig(image_seconds=2.0)


def _playlist(target: Path) -> bytes:
    """An HLS playlist whose only segment is a local file: what ffmpeg would follow."""
    return (f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nfile://{target}\n"
            "#EXT-X-ENDLIST\n").encode()


@pytest.fixture(scope="module")
def private(tmp_path_factory) -> Path:
    """A file that must never reach an output: a video the job was not given. Every frame is a
    keyframe, so any demuxer that follows a playlist to it can decode from wherever it lands."""
    return make_video(tmp_path_factory.mktemp("private") / "secret.ts", duration=2, source="mandelbrot",
                      size="96x64", gop=1)


def test_every_ffmpeg_entry_point_refuses_a_playlist(tmp_path, private):
    evil = tmp_path / "evil.mp4"
    evil.write_bytes(_playlist(private))
    wav = tmp_path / "music.wav"
    sf.write(wav, np.full(32000, 0.1, np.float32), 32000)
    calls = {
        "probe": lambda: probe(evil),
        "shots": lambda: shots.detect_cuts(evil),
        "mux": lambda: mux.mux_wav(evil, wav, tmp_path / "out.mp4"),
        "mux with duck": lambda: mux.mux_wav(evil, wav, tmp_path / "out.mp4",
                                             mux.kept_mix("out.mp4", 1, Original(48000, 2, "stereo"), 0.2)),
        "loudness": lambda: mux.measure_loudness(evil, wav, "[0:a:0]anull[out]"),
        "still video": lambda: image.write_still_video(evil, np.zeros(3200, np.float32), 32000, tmp_path / "s.mp4"),
        "frames": lambda: read_window_frames(evil, [0.5], 32),
    }
    for name, call in calls.items():
        with pytest.raises(MediaError) as refused:
            call()
        if not name.startswith("frames"):  # PyAV's error says only "Invalid data found"
            assert "container format 'hls' is not accepted" in refused.value.reason, f"{name}: {refused.value.reason}"
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "s.mp4").exists()


TS_PACKET = 188  # bytes; an MPEG-TS demuxer finds the packets after a prefix of this length
TIMES = [0.25, 0.95, 1.65]  # frames compared between a polyglot and what it may show


def _polyglot(clip: Path, target: Path) -> bytes:
    """An HLS playlist of ``target`` that is also the MPEG-TS ``clip``: the playlist fills the first
    packet's room and the clip's packets follow. FFmpeg versions that want an .m3u8 name for HLS
    (PyAV's) probe it as MPEG-TS; older ones (ffmpeg 5.1, decord's 4.1) as HLS."""
    playlist = _playlist(target)
    return playlist + b"#" * (TS_PACKET - len(playlist) - 1) + b"\n" + clip.read_bytes()


class _Opens:
    """Opens of one file by any process, counted by Linux inotify: proof that nothing read it."""

    IN_OPEN = 0x20

    def __init__(self, path: Path):
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, os.fsencode(path), self.IN_OPEN) < 0:
            raise OSError(ctypes.get_errno(), f"inotify on {path}")

    def count(self) -> int:
        """Opens since the last call."""
        opens = 0
        while True:
            try:
                data = os.read(self.fd, 4096)
            except BlockingIOError:
                return opens
            while data:  # struct inotify_event: wd, mask, cookie, len, then len bytes of name
                _, mask, _, size = struct.unpack_from("iIII", data)
                opens += bool(mask & self.IN_OPEN)
                data = data[16 + size:]

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def polyglot(tmp_path, private):
    """INPUT/clip.ts, both a playlist of the private video and an MPEG-TS clip of the same size;
    and a watch on the private video, proven to see an open."""
    library = tmp_path / "in"
    library.mkdir()
    clip = make_video(tmp_path / "clip.ts", duration=2, source="testsrc2", size="96x64", gop=1)
    (library / "clip.ts").write_bytes(_polyglot(clip, private))
    opens = _Opens(private)
    private.open("rb").close()
    assert opens.count() == 1  # the watch sees an open
    yield library, clip, opens
    opens.close()


def test_a_playlist_that_is_also_a_video_gives_only_its_own_frames(polyglot, private):
    library, clip, opens = polyglot
    evil = library / "clip.ts"
    own, secret = read_window_frames(clip, TIMES, None), read_window_frames(private, TIMES, None)
    opens.count()
    assert not np.array_equal(own, secret)
    for reader in READERS:  # every reader the settings accept
        frames = read_window_frames(evil, TIMES, None, reader=reader)
        assert np.array_equal(frames, own), reader
        assert opens.count() == 0, f"{reader} opened the file the playlist names"
    with pytest.raises(ValueError, match="unknown frame reader 'decord'"):
        read_window_frames(evil, TIMES, None, reader="decord")
    with pytest.raises(CotvtmError, match="--frame-reader must be one of pyav, not 'decord'"):
        SoundtrackConfig(frame_reader="decord")


def test_the_job_never_reads_the_file_a_playlist_video_names(polyglot, tmp_path, model_cache, ray_session):
    """Whichever way the installed ffprobe and ffmpeg take the file (a refused playlist, or the
    MPEG-TS it also is), the job reads nothing outside INPUT and the other input's output is made."""
    library, clip, opens = polyglot
    make_video(library / "other.mp4", duration=2)
    summary = run(Access(source=str(library), dest=str(tmp_path / "out"), cache_dir=model_cache), FAST, Resources(),
                  echo=lambda _: None)
    rows = {o.key: o for o in summary.outcomes}
    assert rows["other.mp4"].status == "ok", rows["other.mp4"]
    assert opens.count() == 0
    if rows["clip.ts"].status == "error":
        assert "container format 'hls' is not accepted" in rows["clip.ts"].reason, rows["clip.ts"]
    else:
        assert rows["clip.ts"].status == "ok", rows["clip.ts"]  # its video is copied into the output
        assert np.array_equal(read_window_frames(rows["clip.ts"].output, TIMES, None),
                              read_window_frames(clip, TIMES, None))


def _swap_between_passes(monkeypatch, swap):
    """Run ``swap`` after pass 1 of the (only) wave, just before pass 2 starts."""
    compose = runner._compose

    def swapped(ctx, ready, say):
        swap()
        return compose(ctx, ready, say)

    monkeypatch.setattr(runner, "_compose", swapped)


def _frames_of(path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_local_input_swapped_for_a_playlist_between_passes(tmp_path, private, monkeypatch, model_cache,
                                                           ray_session):
    library, out = tmp_path / "in", tmp_path / "out"
    library.mkdir()
    clip = make_video(library / "clip.mp4", duration=2)
    make_video(library / "other.mp4", duration=2)
    original_frames = _frames_of(clip)

    def swap():  # the playlist is renamed over the input, as an upload would replace it
        staged = tmp_path / "upload.tmp"
        staged.write_bytes(_playlist(private))
        os.replace(staged, clip)

    _swap_between_passes(monkeypatch, swap)
    summary = run(Access(source=str(library), dest=str(out), cache_dir=model_cache), FAST, Resources(), echo=lambda _: None)
    rows = {o.key: o for o in summary.outcomes}
    assert rows["other.mp4"].status == "ok"
    assert rows["clip.mp4"].status == "error" and "changed" in rows["clip.mp4"].reason, rows["clip.mp4"]
    assert not [p for p in out.rglob("clip.mp4.*.mp4")]  # nothing published for it
    assert _frames_of(clip.with_name("other.mp4")) == original_frames


def test_s3_input_replaced_between_passes(s3_server, s3_env, tmp_path, private, monkeypatch, model_cache,
                                          ray_session):
    bucket = s3_server.make_bucket()
    src = open_store(f"s3://{bucket}/in")
    src.upload(make_video(tmp_path / "clip.mp4", duration=2), "clip.mp4")
    _swap_between_passes(monkeypatch, lambda: src.put_bytes("clip.mp4", _playlist(private)))
    summary = run(Access(source=f"s3://{bucket}/in", dest=f"s3://{bucket}/out", cache_dir=model_cache), FAST, Resources(),
                  echo=lambda _: None)
    [row] = summary.outcomes
    assert row.status == "error" and "changed" in row.reason, row
    assert not [o.key for o in open_store(f"s3://{bucket}/out").list() if o.key.endswith(".mp4")]


NAMES = ["a.jpg", "a.png", "b.mpg", "b.flv", "b.MP4", "b.mp4", "two\nlines \x1b[31mred\x1b[0m \u00e9t\u00e9.mp4"]
BROKEN = "notes\r\n.mp4"  # not a video, with a name that would forge a console line


@pytest.fixture(scope="module")
def same_stems(tmp_path_factory):
    root = tmp_path_factory.mktemp("stems")
    for colour, name in enumerate(NAMES):
        if name.startswith("a."):
            Image.new("RGB", (64, 48), (40 * colour, 90, 160)).save(root / name)
        else:
            codec = {"mpg": "mpeg1video", "flv": "flv"}.get(name.rsplit(".", 1)[1], "libx264")
            make_video(root / name, duration=1, size="64x48", fps=25, codec=codec)
    (root / BROKEN).write_text("not frames\n")
    return root


@pytest.fixture(scope="module")
def first_run(same_stems, tmp_path_factory, model_cache, ray_session):
    out, lines = tmp_path_factory.mktemp("stems-out"), []
    summary = run(Access(source=str(same_stems), dest=str(out), cache_dir=model_cache), FAST, Resources(), echo=lines.append)
    return summary, out, lines


def test_inputs_differing_only_in_extension_or_case_get_their_own_outputs(first_run, same_stems, model_cache):
    first, out, _ = first_run
    assert (first.ok, first.failed) == (len(NAMES), 1), [(o.key, o.reason) for o in first.outcomes]
    outputs = {o.key: Path(o.output) for o in first.outcomes if o.status == "ok"}
    assert len(set(outputs.values())) == len(NAMES) and all(p.exists() for p in outputs.values())
    for key, output in outputs.items():
        assert output.name.startswith(key + "."), output
        sidecar = json.loads(Path(next(o.sidecar for o in first.outcomes if o.key == key)).read_text())
        assert sidecar["input"] == key and sidecar["output"] == output.name

    again = run(Access(source=str(same_stems), dest=str(out), cache_dir=model_cache), FAST, Resources(), echo=lambda _: None)
    assert (again.skipped, again.ok, again.failed) == (len(NAMES), 0, 1)


def test_names_reach_the_console_escaped_and_the_manifest_as_they_are(first_run):
    _, out, lines = first_run
    name = NAMES[-1]
    assert not any(ch in line for line in lines for ch in "\n\r\x1b"), lines
    shown = "two\\nlines \\x1b[31mred\\x1b[0m \u00e9t\u00e9.mp4"
    assert f"prepared {shown}" in lines and any(line.startswith(f"ok       {shown} -> ") for line in lines), lines
    assert any(line.startswith("error    notes\\r\\n.mp4: decode: ") for line in lines), lines
    rows = {}
    for row in map(json.loads, (out / "manifest.jsonl").read_text().splitlines()):
        rows.setdefault(row["key"], row)  # the first run's rows (a rerun appends its own)
    assert rows[name]["status"] == "ok" and Path(rows[name]["output"]).exists()
    assert rows[BROKEN]["status"] == "error"


def test_outputs_named_by_the_earlier_rule_are_still_found(first_run, same_stems, tmp_path, model_cache):
    """An output folder from before the extension was part of the name: the one input its sidecar
    names is skipped; the input that lost its output to the old clash is made now."""
    first, made, _ = first_run
    out = tmp_path / "out"
    shutil.copytree(made, out)
    jpg = next(o for o in first.outcomes if o.key == "a.jpg")
    digest = Path(jpg.sidecar).name.split(".")[-2]
    for output in out.glob("a.*"):  # back to the earlier names: a.<digest>.m4a and a.<digest>.json, from a.jpg
        if output.name.startswith("a.png."):
            output.unlink()
        else:
            output.rename(out / output.name.replace("a.jpg.", "a."))
    lines = []
    again = run(Access(source=str(same_stems), dest=str(out), cache_dir=model_cache), FAST, Resources(), echo=lines.append)
    rows = {o.key: o for o in again.outcomes}
    assert rows["a.jpg"].status == "skipped" and rows["a.jpg"].output.endswith(f"a.{digest}.m4a")
    assert rows["a.png"].status == "ok" and rows["a.png"].output.endswith(f"a.png.{digest}.m4a")
    assert (again.skipped, again.ok, again.failed) == (len(NAMES) - 1, 1, 1)
    assert any(line.startswith("redo     a.png: ") for line in lines), lines
