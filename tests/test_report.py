"""report.html: built from an output store alone; names escaped, links relative and encoded.

The output store here is made by hand (manifest rows, sidecars and tiny ffmpeg-made videos laid
out as the soundtrack job lays them out), so these tests need no models and no Ray.
"""

import functools
import http.server
import json
import os
import threading
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from collections import Counter

import pytest
from s3server import s3_env, s3_server  # noqa: F401  (pytest fixtures)

from cotvtm.report import REPORT, render_report, write_report
from cotvtm.report.links import key_of, relative_url
from cotvtm.report.screenshot import dump_dom, find_chromium, screenshot
from cotvtm.report.text import esc, visible
from cotvtm.storage import open_store
from cotvtm.video.samples import make_video

DIGEST = "0123abcd45"
SCRIPT = "<script>alert(1)</script>.mp4"
WEIRD = "we ird/it's \"q\" #1?%20 ü\nline.mp4"  # space, quotes, '#', '?', '%', unicode, newline
OK = {  # input key -> (duration, explanations or None)
    "a/one.mp4": (2.0, [{"description": "calm piano over a slow sunrise", "score": 0.91},
                        {"description": "soft ambient pads", "score": 0.87}]),
    SCRIPT: (1.0, None),
    WEIRD: (1.0, None),
}
ERRORS = {"bad/empty.mp4": "decode: empty file (0 bytes)",
          "bad/<img src=x onerror=alert(2)>.mp4": "decode: not a media file ffmpeg can read: <moov> & friends"}
SKIPPED = "b/skipped.mp4"
NO_SIDECAR = "c/lost.mp4"
IMAGE, IMAGE_SECONDS = "d/poster.png", 3.0  # --image-video: its music and a still-image video
RUN = "run-new"
STAGES = {"decode": 0.2, "embed": 0.05, "prior": 0.1, "music": 0.6, "mux": 0.1}  # seconds, per sidecar
BANK = "retrieval (the bank scene_bank.jsonl)"  # what conditioned the music: the default, needing no training


def outputs(key: str) -> tuple[str, str]:
    stem = key.rsplit(".", 1)[0]
    return f"{stem}.{DIGEST}.{'m4a' if key == IMAGE else 'mp4'}", f"{stem}.{DIGEST}.json"


def still(key: str) -> str:
    return f"{key.rsplit('.', 1)[0]}.{DIGEST}.mp4"


CUT = 0.8  # a/one.mp4 has a shot cut here: its windows follow it (--windows shots)
BEATS = [0.25, 0.75, 1.25, 1.75, "x", 9.5]  # a/one.mp4's music, 120 bpm; the last two are not beats to draw
# a/one.mp4 was made with --audio voice: speech over the same share of it as 4.0-11.0 s of 16 s,
# its 22.2 original delivered in stereo
SPEECH = {"detector": "silero-vad 6.2.3", "spans": [[0.5, 1.375]], "speech_lufs": -21.3, "music_lufs": -18.2,
          "bed_level_lu": -6.0, "bed_gain_db": -9.1, "depth_db": 12.0, "attack_s": 0.3, "release_s": 0.8,
          "hold_s": 0.5, "note": None}
DOWNMIX = "the original's 22.2 layout (24 channels) cannot be carried by aac: mixed down to stereo"
AUDIO = {"mode": "voice", "sample_rate": 48000, "channels": 2, "layout": "stereo", "codec": "aac", "bitrate": "256k",
         "original": {"sample_rate": 48000, "channels": 24, "layout": "22.2"}, "changes": [DOWNMIX]}


def sidecar(key: str, duration: float, explanations) -> dict:
    """A sidecar as a retrieval run writes it (``prior_trained`` false: retrieval has no training)."""
    windows = [{"index": 0, "start": 0.0, "end": duration}]
    if key == "a/one.mp4":
        windows = [{"index": 0, "start": 0.0, "end": CUT}, {"index": 1, "start": CUT, "end": duration}]
    if explanations:
        windows[0]["explanations"] = explanations
    return {"input": key, "output": outputs(key)[0].rsplit("/", 1)[-1], "run_id": RUN, "config_digest": DIGEST,
            "video": {"duration": duration, "width": 64, "height": 36, "codec": "h264"},
            "windows": windows, "sample_rate": 8000, "config": {"mode": "continuous"},
            "seconds": STAGES, "conditioning": BANK,
            "still_video": still(key).rsplit("/", 1)[-1] if key == IMAGE else None,
            "models": {"clip": "tiny/clip", "musicgen": "tiny/musicgen", "prior": "retrieval"},
            "prior_trained": False, "note": None, "cuts": [CUT] if key == "a/one.mp4" else [],
            **({"beats": BEATS, "cut_beats": [{"cut": CUT, "beat": 0.75, "offset": 0.05}], "audio": AUDIO,
                "speech": SPEECH} if key == "a/one.mp4" else {"speech": None})}  # other modes write null


def row(out, key: str, status: str, run_id: str = RUN, time: str = "2025-01-02T00:00:00Z", **fields) -> dict:
    if status in ("ok", "skipped"):
        video, side = outputs(key)
        fields = {"output": out.uri(video), "sidecar": out.uri(side), **fields}
    return {"run_id": run_id, "time": time, "key": key, "status": status, "reason": "", "output": "",
            "sidecar": "", "windows": 0, "duration": 0.0, **fields}


def _build(out, tmp: Path) -> list[dict]:
    """Videos, sidecars and manifest rows as a run leaves them, plus an unreadable last line."""
    clip = make_video(tmp / "clip.mp4", duration=1, size="64x36", fps=5, source="testsrc2")
    rows = [row(out, "bad/empty.mp4", "ok", run_id="run-old", time="2025-01-01T00:00:00Z")]  # superseded
    for key, (duration, explanations) in OK.items():
        video, side = outputs(key)
        out.upload(clip, video)
        out.put_bytes(side, json.dumps(sidecar(key, duration, explanations)).encode())
        rows.append(row(out, key, "ok", windows=1, duration=duration))
    video, side = outputs(SKIPPED)
    out.upload(clip, video)
    out.put_bytes(side, json.dumps(sidecar(SKIPPED, 3.0, None)).encode())
    music, side = outputs(IMAGE)
    out.upload(clip, music)  # a player's source either way; the page plays the still video
    out.upload(clip, still(IMAGE))
    out.put_bytes(side, json.dumps(sidecar(IMAGE, IMAGE_SECONDS, None)).encode())
    rows.append(row(out, IMAGE, "ok", windows=1, duration=IMAGE_SECONDS))
    rows.append(row(out, SKIPPED, "skipped", reason="output exists for this config"))
    rows.append(row(out, NO_SIDECAR, "ok", windows=1, duration=1.0))
    rows += [row(out, key, "error", reason=reason) for key, reason in ERRORS.items()]
    for item in rows:
        out.append_line("manifest.jsonl", json.dumps(item))
    out.append_line("manifest.jsonl", '{"key": "cut off')
    return rows


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = open_store(tmp_path_factory.mktemp("out"))
    _build(out, tmp_path_factory.mktemp("media"))
    return out


@pytest.fixture(scope="module")
def page(store) -> str:
    write_report(store, title="Library <report>")
    return store.local_path(REPORT).read_text(encoding="utf-8")


class Page(HTMLParser):
    """Tags, video sources, links and text of a page, as a browser's parser sees them."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.videos, self.links, self.text, self.rects = [], [], [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "rect":
            self.rects.append(attrs)
        if tag == "video":
            self.videos.append(attrs)
        if tag == "a":
            self.links.append(attrs.get("href"))

    def handle_data(self, data):
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def resolve(page_dir: Path, src: str) -> Path:
    """What a browser opens for a relative src: the fragment dropped, each segment decoded."""
    parts = urlsplit(src)
    assert not parts.scheme and not parts.netloc and not parts.query, src
    return page_dir.joinpath(*(unquote(segment) for segment in parts.path.split("/")))


def test_video_sources_are_relative_encoded_and_point_at_the_outputs(store, page):
    parsed = Page(page)
    root = store.local_path(REPORT).parent
    found = {resolve(root, v["src"]) for v in parsed.videos}
    wanted = {store.local_path(outputs(key)[0]) for key in [*OK, SKIPPED]} | {store.local_path(still(IMAGE))}
    assert found == wanted and all(path.is_file() for path in found)
    for video in parsed.videos:
        assert set(urlsplit(video["src"]).path) <= set("abcdefghijklmnopqrstuvwxyz0123456789%._-/ABCDEF"), video
        assert video["preload"] == "metadata" and "controls" in video


def test_hostile_names_render_as_text(page):
    parsed = Page(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.mp4" in page
    assert "moov" not in parsed.tags
    assert SCRIPT in parsed.all_text and "bad/<img src=x onerror=alert(2)>.mp4" in parsed.all_text
    assert visible(WEIRD) in parsed.all_text  # the newline shows as "\n", the rest as typed
    assert "Library <report>" in parsed.all_text


def test_counts_reasons_and_latest_row_per_input(page):
    text = Page(page).all_text
    assert "5 ok, 2 error, 1 skipped" in text  # empty.mp4's older ok row is superseded
    assert "1 unreadable manifest line ignored" in text
    for reason in ERRORS.values():
        assert reason in text
    assert "the sidecar is missing from the output" in text
    assert f"Errors ({len(ERRORS)})" in text and "Inputs (8)" in text


def test_header_has_hours_throughput_models_and_conditioning(page):
    text = Page(page).all_text
    assert "0.001 h this run" in text  # 2 + 1 + 1 + 1 s of ok video; the image's music is not video
    timed = sum(duration for duration, _ in OK.values()) + IMAGE_SECONDS  # the ok media with sidecars
    assert f"{timed / (len(OK) + 1) / sum(STAGES.values()):.2f}× realtime" in text  # over their stage time
    assert "throughput (summed stage time)" in text
    assert "model: musicgen" in text and "tiny/musicgen" in text
    assert f"conditioning{BANK}" in text and "untrained" not in text and DIGEST in text  # retrieval needs no training


def test_images_are_counted_apart_and_every_output_is_listed(page):
    parsed = Page(page)
    assert "4 videos and 1 imagesoundtracked (this run)" in parsed.all_text  # a card: value, then label
    assert "images with music1 in all; 1 this run" in parsed.all_text
    section = page[page.index(esc(IMAGE)):]
    section = Page(section[: section.index("</section>")])
    assert [urlsplit(v["src"]).path for v in section.videos] == [still(IMAGE)]  # the page is at the top
    assert section.links == [outputs(IMAGE)[0], still(IMAGE), outputs(IMAGE)[1]]
    assert "musicstill videosidecar" in section.all_text


@pytest.mark.parametrize("models, trained, shown", [
    ({"prior": "retrieval"}, False, None),  # retrieval: nothing to train
    ({"clip": "c"}, None, None),  # the teacher loads no prior
    ({"prior": "runs/prior"}, True, "<dd>trained</dd>"),
    ({"prior": None}, False, '<dd class="warn">untrained: train one</dd>'),  # an untrained prior, warned of
])
def test_a_prior_is_said_untrained_only_when_it_is(models, trained, shown):
    from cotvtm.report.page import _prior
    from cotvtm.report.totals import Totals

    said = _prior(Totals(Counter(), Counter(), 0, 0, 0, {}, None, models=models, prior_trained=trained,
                         note="train one", conditioning="what did"))
    assert said.startswith("<dt>conditioning</dt><dd>what did</dd>")
    assert (shown in said) if shown else "prior" not in said


def test_windows_show_explanations_and_timings(page):
    text = Page(page).all_text
    assert "calm piano over a slow sunrise (0.910)" in text
    assert "no explanations in this sidecar" in text
    assert "0:00.0–0:00.8" in text and "0:00.8–0:02.0" in text and "music" in text and "0.60 s" in text


def test_summary_rows_decide_this_run_and_wall_time(store):
    only = [{"key": SCRIPT, "status": "ok", "reason": "", "output": store.uri(outputs(SCRIPT)[0]),
             "sidecar": store.uri(outputs(SCRIPT)[1]), "windows": 1, "duration": 1.0}]
    text = Page(render_report(store, only, wall_seconds=4.0)).all_text
    assert "0.25× realtime" in text and "throughput (wall time)" in text
    assert "1.0 s" in text and "wall time" in text


def test_write_is_atomic_and_returns_the_uri(store, page):
    root = store.local_path(REPORT).parent
    assert write_report(store) == store.uri(REPORT)
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


def test_pages_open_over_http_from_the_folder(store, page):
    """A bucket served over HTTP decodes paths as a plain web server does."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(store.local_path(REPORT).parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *args: None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        for video in Page(page).videos:
            src = urlsplit(video["src"]).path
            with urllib.request.urlopen(base + src, timeout=10) as answer:
                assert answer.status == 200 and answer.read(8)[4:8] == b"ftyp"
    finally:
        server.shutdown()
        server.server_close()


def test_links_are_relative_and_keys_come_back():
    assert relative_url("report.html", "a b/c#?.mp4") == "a%20b/c%23%3F.mp4"
    assert relative_url("report.html", "x:y.mp4") == "x%3Ay.mp4"  # never read as a URL scheme
    assert relative_url("sub/report.html", "sub/v.mp4") == "v.mp4"
    assert relative_url("sub/report.html", "v.mp4") == "../v.mp4"
    assert key_of("s3://b/out", "s3://b/out/a/v.json") == "a/v.json"
    assert key_of("s3://b/out", "s3://b/other/v.json") is None
    assert key_of("/tmp/x/../out", "/tmp/out/a/v.json") == "a/v.json"


def test_report_on_s3_links_to_objects_in_the_bucket(tmp_path, s3_env):  # noqa: F811
    bucket = s3_env.make_bucket()
    out = open_store(f"s3://{bucket}/reports/run")
    _build(out, tmp_path)
    assert write_report(out) == f"s3://{bucket}/reports/run/{REPORT}"
    parsed = Page(out.get_bytes(REPORT).decode())
    keys = {"/".join(unquote(s) for s in urlsplit(v["src"]).path.split("/")) for v in parsed.videos}
    assert keys == {outputs(key)[0] for key in [*OK, SKIPPED]} | {still(IMAGE)}
    assert all(out.exists(key) for key in keys)


NO_BROWSER = find_chromium() is None and not os.environ.get("CI")  # `make test` installs it; CI must have it


def test_a_beat_grid_of_hostile_values_is_drawn_from_the_sound_ones():
    from cotvtm.report.page import MAX_DRAWN_BEATS, _beat_grid

    grid = _beat_grid({"video": {"duration": 4}, "beats": [1, 1, "x", 1e400, -1, 9], "cut_beats": 5,
                       "windows": [{"start": 0, "end": 2}, {"start": 2, "end": "<b>"}], "cuts": [2, "<i>"]})
    assert grid.count('class="beat"') == 2 and grid.count('class="cut"') == 1 and "<b>" not in grid
    assert "2 beats" in grid and "bpm" not in grid  # two beats at one time: no tempo
    many = _beat_grid({"video": {"duration": 5000}, "beats": [i * 0.5 for i in range(MAX_DRAWN_BEATS + 1)]})
    assert "<svg" not in many and f"{MAX_DRAWN_BEATS + 1} beats, about 120 bpm" in many
    assert _beat_grid({"video": "x", "beats": [1]}) == "" and _beat_grid({"cut_beats": [{"offset": 1}]}) == ""


def test_speech_of_hostile_values_is_drawn_from_the_sound_ones():
    from cotvtm.report.page import _speech

    speech = {"spans": [[4, 11], [1, "x"], [-1, 2], [3, 2], [float("nan"), 5], [15, 99], [16, 30], [5], "ab", None],
              "speech_lufs": "loud", "bed_level_lu": -6, "bed_gain_db": float("nan"), "depth_db": 1e400,
              "detector": "<b>" * 10**5, "note": "<script>x</script>"}
    drawn = _speech({"video": {"duration": 16}, "speech": speech})
    bars = Page(drawn).rects
    assert [(r["x"], r["width"]) for r in bars] == [("250.0", "437.5"), ("937.5", "62.5")]  # the last cut at the end
    text = Page(drawn).all_text
    assert "speech 4.0–11.0 s, 15.0–16.0 s · music bed -6.0 LU from the speech · found by <b><b>" in text
    assert "LUFS" not in text and "gain" not in text and "ducked" not in text  # no sound number to say
    assert "<b>" not in drawn and "<script>" not in drawn and "<script>x</script>" in text and len(drawn) < 8000
    many = _speech({"video": {"duration": 3600}, "speech": {"spans": [[i, i + 0.5] for i in range(3000)]}})
    assert "<svg" not in many and "5.0–5.5 s and 2994 more spans" in many
    quiet = _speech({"video": {"duration": 16}, "speech": {"spans": [], "note": "no speech found: not ducked"}})
    assert "<svg" not in quiet and Page(quiet).all_text == "no speech found: not ducked"
    assert "<svg" not in _speech({"video": "x", "speech": {"spans": [[1, 2]]}})  # said, but no time line to draw on
    assert _speech({"speech": None}) == _speech({}) == _speech({"speech": "x"}) == ""


@pytest.mark.parametrize("audio, said", [
    ({"sample_rate": 44100, "channels": 1, "codec": "opus", "bitrate": 96000}, "44.1 kHz 1 channel OPUS 96k"),
    ({"sample_rate": "48k", "channels": float("nan"), "layout": 5, "codec": "<aac>" * 10**4, "bitrate": -1,
      "original": "x", "changes": [3, "too many"]},  # no sound number, no layouts: what is said of them
     "&lt;AAC&gt;… (too many)"),
    ({"layout": "stereo", "original": {"layout": "5.1"}, "changes": "x"}, "stereo"),  # no list: no note
    ({"changes": ["why"]}, None),
])
def test_the_audio_format_is_said_from_the_sound_values(audio, said):
    from cotvtm.report.collect import ReportEntry
    from cotvtm.report.page import _meta

    meta = _meta(ReportEntry({"key": "k", "status": "ok"}, sidecar={"audio": audio}))
    assert (meta.endswith(f"{said}</span>") and len(meta) < 2000) if said else meta == ""


@pytest.mark.skipif(NO_BROWSER, reason="chromium is not installed (apt-get install chromium)")
def test_chromium_draws_the_page_with_its_cuts_windows_and_beats(store, page, tmp_path):
    from PIL import Image

    raw = dump_dom(store.local_path(REPORT).resolve().as_uri())
    dom = Page(raw).all_text  # as the browser built it
    assert BANK in dom and "untrained" not in dom  # a retrieval run's page: no training to warn of
    assert "1 shot cut at 0:00.8" in dom
    assert "0: 0:00.0–0:00.8" in dom and "1: 0:00.8–0:02.0" in dom  # the windows follow the cut
    assert "calm piano over a slow sunrise" in dom
    assert "4 beats, about 120 bpm; shot cuts 0.05 s from the nearest beat on average" in dom  # the beat grid
    assert raw.count('class="beat"') == 4 and raw.count('class="cut"') == 1 and raw.count('class="window"') == 1
    speech = [rect for rect in Page(raw).rects if rect.get("class") == "speech"]  # a/one.mp4's alone
    assert len(speech) == 1 and raw.count('class="speech-line"') == 1
    duration = OK["a/one.mp4"][0]
    assert float(speech[0]["x"]) == 1000 * 0.5 / duration and float(speech[0]["width"]) == 1000 * 0.875 / duration
    grid = raw.index('class="beat-grid"')  # the speech line is under the beat grid, above the stage times
    assert grid < raw.index('class="speech-line"') < raw.index('class="timings"', grid)
    assert ("speech 0.5–1.4 s · music bed -6.0 LU from the speech (-21.3 LUFS) · bed gain -9.1 dB (music -18.2 LUFS)"
            " · ducked 12.0 dB more while speech plays (attack 0.3 s, release 0.8 s, hold 0.5 s)"
            " · found by silero-vad 6.2.3") in dom
    assert f"48 kHz stereo AAC 256k ({DOWNMIX})" in dom

    png = screenshot(store.local_path(REPORT).resolve().as_uri(), tmp_path / "report.png", size=(1024, 900))
    image = Image.open(png)
    image.verify()
    image = Image.open(png).convert("RGB")
    assert image.size == (1024, 900)
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 300  # text, badges, video frames: not a blank or error page
    assert max(count for count, _ in colours) < 0.8 * image.width * image.height
