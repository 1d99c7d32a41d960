"""The HTML of the report: a header with the run's numbers, the errors, then one section per input.

Every value that comes from a file name, a sidecar or the manifest passes through ``esc``;
every link is relative to the page and encoded per path segment (``links.relative_url``).
"""

from __future__ import annotations

import json
import math
import time

from cotvtm.counted import counted, media
from cotvtm.models import RETRIEVAL
from cotvtm.report.collect import Collected, ReportEntry
from cotvtm.report.links import relative_url
from cotvtm.report.css import CSS
from cotvtm.jsonl import finite, seconds_of
from cotvtm.report.text import clock, esc, span
from cotvtm.report.totals import Totals
from cotvtm.video.media import is_image

# The frame a player shows before it is played: without a start time browsers show black.
POSTER_AT = "#t=0.1"
# Past this many players, browsers fetch nothing until a video is played: a page of ten thousand
# inputs must not open ten thousand connections to the bucket.
PRELOAD_LIMIT = 100
MAX_DRAWN_BEATS = 2000  # about a quarter of an hour: longer tracks get the line without the grid
MAX_DRAWN_SPANS = 500  # speech spans drawn; past this the line alone says where (the sidecar has them all)
SPANS_SAID = 6  # speech spans written out in the line under the bars; the rest are counted
MAX_SAID = 300  # characters of a sidecar's sentence (a note, a reason) the page shows
STATUS_ORDER = ("ok", "error", "skipped")


def render(collected: Collected, totals: Totals, title: str, root_uri: str, page_key: str) -> str:
    groups = _inputs(collected.entries)
    sections, players = [], 0
    for index, group in enumerate(groups):
        sections.append(_section(index, group, page_key, players < PRELOAD_LIMIT))
        players += len(group)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        _header(totals, title, root_uri),
        "<main>", _errors(groups), f"<h2>Inputs ({len(groups)})</h2>",
        *sections, "</main>", _footer(collected), "</body></html>", ""])


def _inputs(entries: list[ReportEntry]) -> list[list[ReportEntry]]:
    """The entries of each input together (its ``--variants`` tracks), in the entries' order."""
    groups: dict[str, list[ReportEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.key, []).append(entry)
    return list(groups.values())


# -- header ------------------------------------------------------------------------------

def _header(t: Totals, title: str, root_uri: str) -> str:
    cards = [_card(t.run.get(s, 0), f"{s} (this run)", s) for s in STATUS_ORDER]
    cards.append(_card(media(t.run_videos, t.run_images), "soundtracked (this run)", ""))
    if t.run_videos:
        cards.append(_card(span(t.run_video_seconds), "of video with music (this run)", ""))
    speed = t.realtime()
    if speed:
        cards.append(_card(f"{speed[0]:.2f}× realtime", f"throughput ({speed[1]})", ""))
    return (f'<header class="top"><h1>{esc(title)}</h1><div class="where">{esc(root_uri)}</div>'
            f'<div class="cards">{"".join(cards)}</div>{_licences(t)}{_facts(t)}</header>')


def _licences(t: Totals) -> str:
    """One sentence when outputs were made with models not cleared for commercial use."""
    if not t.uncleared:
        return ""
    which = ", ".join(f"{name} ({ids})" for name, ids in t.uncleared.items())
    return (f'<p class="warn licence">Some outputs were made with models not cleared for commercial use: '
            f'{esc(which)}. See each sidecar\'s "licences".</p>')


def _card(value, label: str, kind: str) -> str:
    return f'<div class="card {esc(kind)}"><b>{esc(value)}</b><span>{esc(label)}</span></div>'


def _facts(t: Totals) -> str:
    latest = ", ".join(f"{t.latest.get(s, 0)} {s}" for s in STATUS_ORDER)
    rows = [("all inputs", f"{sum(t.latest.values())} ({latest}; latest row per input)"),
            ("video with music", f"{t.video_seconds / 3600:.3f} h in all; {t.run_video_seconds / 3600:.3f} h this run")]
    if t.images:
        rows.append(("images with music", f"{t.images} in all; {t.run_images} this run"))
    if t.stage_seconds:
        parts = ", ".join(f"{k} {span(v)}" for k, v in t.stage_seconds.items())
        rows.append(("stage time", f"{span(t.compute_seconds)} in all: {parts}"))
    if t.wall_seconds:
        rows.append(("wall time", span(t.wall_seconds)))
    for name, ref in (t.models or {}).items():
        rows.append((f"model: {name}", ref if ref else "none"))
    html_rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    return f'<dl class="facts">{html_rows}{_prior(t)}{_digests(t)}</dl>'


def _prior(t: Totals) -> str:
    """What conditioned the music, and a prior's training where one was loaded: retrieval and
    the teacher need none, so only a prior without training is a warning."""
    said = f"<dt>conditioning</dt><dd>{esc(t.conditioning)}</dd>" if t.conditioning else ""
    prior = (t.models or {}).get("prior", RETRIEVAL)  # the teacher loads none; None: an untrained one
    if t.prior_trained is None or prior == RETRIEVAL:
        return said
    if t.prior_trained:
        return f"{said}<dt>prior</dt><dd>trained</dd>"
    note = f": {esc(t.note)}" if t.note else ""
    return f'{said}<dt>prior</dt><dd class="warn">untrained{note}</dd>'


def _digests(t: Totals) -> str:
    if not t.digests:
        return ""
    more = f" ({len(t.digests)} configurations)" if len(t.digests) > 1 else ""
    return f"<dt>config digest</dt><dd><code>{esc(', '.join(t.digests))}</code>{esc(more)}</dd>"


# -- errors ------------------------------------------------------------------------------

def _errors(groups: list[list[ReportEntry]]) -> str:
    failed = [(i, e) for i, group in enumerate(groups) for e in group if e.status == "error"]
    if not failed:
        return ""
    rows = "".join(f'<tr><td><a class="key" href="#in-{i}">{esc(e.key)}</a></td>'
                   f'<td class="reason">{esc(e.row.get("reason", ""))}</td></tr>' for i, e in failed)
    return (f"<h2>Errors ({len(failed)})</h2><div class=\"errors\"><table>"
            f"<tr><th>input</th><th>reason</th></tr>{rows}</table></div>")


# -- one input ---------------------------------------------------------------------------

def _section(index: int, group: list[ReportEntry], page_key: str, preload: bool) -> str:
    """One input: its player and details, or with ``--variants`` its tracks' players side by
    side above the details of the first that was made."""
    made = [e for e in group if e.status != "error"]
    entry = made[0] if made else group[0]
    status = entry.status if entry.status in STATUS_ORDER else "unknown"
    head = (f'<h3><span class="badge {status}">{esc(entry.status)}</span>'
            f'<span class="key">{esc(entry.key)}</span>{_meta(entry)}</h3>')
    if len(group) > 1:
        tracks = "".join(f'<figure class="variant"><figcaption>variant {e.variant}</figcaption>'
                         f'{_reason(e) if e.status == "error" else _player(e, page_key, preload)}</figure>'
                         for e in group)
        body = f'<div class="variants">{tracks}</div>{_details(entry) if made else ""}'
    elif entry.status == "error":
        body = _reason(entry)
    else:
        body = f'<div class="body"><div>{_player(entry, page_key, preload)}</div><div>{_details(entry)}</div></div>'
    return f'<section class="input {status}" id="in-{index}">{head}{body}</section>'


def _reason(entry: ReportEntry) -> str:
    return f'<div class="reason">{esc(entry.row.get("reason", "")) or "no reason recorded"}</div>'


def _meta(entry: ReportEntry) -> str:
    parts = []
    if entry.duration:
        parts.append(clock(entry.duration))
    video = entry.video
    width, height = finite(video.get("width")), finite(video.get("height"))
    if width and height:
        parts.append(f"{width:g}×{height:g}")
    if video.get("codec"):
        parts.append(str(video["codec"]))
    audio = (entry.sidecar or {}).get("audio")
    if isinstance(audio, dict) and (said := _audio_format(audio)):
        parts.append(said + _changes(audio))
    if entry.status == "skipped":
        parts.append(f"skipped: {entry.row.get('reason', '')}")
    if entry.row.get("time"):
        parts.append(str(entry.row["time"]))
    return f'<span class="meta">{esc(" · ".join(parts))}</span>' if parts else ""


def _audio_format(audio: dict) -> str:
    """The delivered audio as people name it: "48 kHz stereo AAC 256k"."""
    rate, channels, bitrate = finite(audio.get("sample_rate")), finite(audio.get("channels")), audio.get("bitrate")
    layout = _said(audio.get("layout")) or (counted(int(channels), "channel") if channels and channels > 0 else "")
    parts = [f"{rate / 1000:g} kHz" if rate and rate > 0 else "", layout, _said(audio.get("codec")).upper(),
             _said(bitrate) or (f"{bitrate / 1000:g}k" if finite(bitrate) and bitrate > 0 else "")]
    return " ".join(part for part in parts if part)


def _changes(audio: dict) -> str:
    """What of the original could not be kept, when something could not (its layout mixed down,
    its rate changed): the delivery keeps what players and platforms take, and the page says
    what was given up."""
    changes = audio.get("changes")
    said = [_said(change) for change in (changes[:3] if isinstance(changes, list) else [])]
    return f" ({'; '.join(s for s in said if s)})" if any(said) else ""


def _said(value) -> str:
    """A sidecar's text as the page shows it: only text, and not past ``MAX_SAID`` characters."""
    if not isinstance(value, str):
        return ""
    return value if len(value) <= MAX_SAID else value[:MAX_SAID] + "…"


def _player(entry: ReportEntry, page_key: str, preload: bool) -> str:
    """The output played (an image's still video when it has one), and a link to every output of
    the input and to its sidecar."""
    if entry.video_key is None:
        return f'<div class="problem">{esc(entry.problem or "no output video")}</div>'
    outputs = [("music" if is_image(entry.key) else "video", entry.video_key), ("still video", entry.still_key),
               ("sidecar", entry.sidecar_key)]
    links = "".join(f'<a href="{esc(relative_url(page_key, key))}">{name}</a>' for name, key in outputs if key)
    src = relative_url(page_key, entry.still_key or entry.video_key)
    return (f'<video controls preload="{"metadata" if preload else "none"}" src="{esc(src + POSTER_AT)}"></video>'
            f'<div class="links">{links}</div>')


def _details(entry: ReportEntry) -> str:
    sidecar = entry.sidecar or {}
    parts = [_cuts(sidecar.get("cuts")), _windows(sidecar.get("windows")), _beat_grid(sidecar),
             _speech(sidecar), _timings(sidecar.get("seconds"))]
    if sidecar:
        shown = {k: sidecar.get(k) for k in ("config_digest", "run_id", "sample_rate", "config") if k in sidecar}
        parts.append(f"<details><summary>settings</summary><pre>{esc(json.dumps(shown, indent=2))}</pre></details>")
    return "".join(parts)


def _cuts(cuts) -> str:
    """The shot cuts the windows follow (``--windows shots``)."""
    if not isinstance(cuts, list) or not cuts:
        return ""
    times = ", ".join(clock(cut) for cut in cuts)
    return f'<p class="cuts">{counted(len(cuts), "shot cut")} at {esc(times)}</p>'


def _windows(windows) -> str:
    if not isinstance(windows, list) or not windows:
        return '<p class="muted">no windows recorded</p>'
    rows = "".join(_window(w) for w in windows if isinstance(w, dict))
    return (f'<table class="windows"><tr><th>window</th><th>what the music follows</th></tr>{rows}</table>')


def _beat_grid(sidecar: dict) -> str:
    """The music's beats on the video's time line, under its windows (shaded in turn) and shot
    cuts (red), with a line saying how many, the tempo, and how far the cuts fall from a beat."""
    duration = _duration(sidecar)
    beats = _times(sidecar.get("beats"), duration)
    if not duration or not beats:
        return ""
    said = _beat_line(sidecar, beats, duration)
    if len(beats) > MAX_DRAWN_BEATS:  # a page of long videos stays light; the sidecar has them all
        return f'<p class="beats">{esc(said)}</p>'
    at = lambda t: f"{1000 * t / duration:.1f}"  # noqa: E731
    shade = "".join(f'<rect class="window" x="{at(a)}" width="{1000 * (b - a) / duration:.1f}" y="0" height="28"/>'
                    for i, (a, b) in enumerate(_spans(sidecar.get("windows"), duration)) if i % 2)
    lines = "".join(f'<line class="beat" x1="{at(t)}" x2="{at(t)}" y1="6" y2="22"/>' for t in beats)
    lines += "".join(f'<line class="cut" x1="{at(t)}" x2="{at(t)}" y1="0" y2="28"/>'
                     for t in _times(sidecar.get("cuts"), duration))
    return (f'<svg class="beat-grid" viewBox="0 0 1000 28" preserveAspectRatio="none" role="img" '
            f'aria-label="{esc(said)}">{shade}{lines}</svg><p class="beats">{esc(said)}</p>')


def _duration(sidecar: dict) -> float | None:
    """The video's seconds, the time axis of the beat grid and the speech line."""
    video = sidecar.get("video") if isinstance(sidecar.get("video"), dict) else {}
    return seconds_of(video.get("duration"))


def _speech(sidecar: dict) -> str:
    """Where the original has speech (``--audio voice``), as bars under the beat grid on the same
    time line, and a line saying where, how loud the music bed sits and how far it ducks."""
    speech = sidecar.get("speech")
    if not isinstance(speech, dict):  # other modes write null; older sidecars have no key
        return ""
    duration = _duration(sidecar)
    spans = _speech_spans(speech.get("spans"), duration)
    said = esc(_speech_line(speech, spans))
    note = _said(speech.get("note"))
    text = f'<p class="speech-text">{said}{f"<br>{esc(note)}" if note else ""}</p>'
    if not duration or not spans or len(spans) > MAX_DRAWN_SPANS:
        return text
    bars = "".join(f'<rect class="speech" x="{1000 * a / duration:.1f}" width="{1000 * (b - a) / duration:.1f}" '
                   f'y="0" height="10"><title>{esc(_span_said([(a, b)]))}</title></rect>' for a, b in spans)
    return (f'<svg class="speech-line" viewBox="0 0 1000 10" preserveAspectRatio="none" role="img" '
            f'aria-label="{said}">{bars}</svg>{text}')


def _speech_spans(spans, duration: float | None) -> list[tuple[float, float]]:
    """The sound spans, in order; one running past the video's end is cut there (the audio
    stream can outlast the picture), one starting at or after it is left out."""
    end_of = duration or math.inf
    found = []
    for item in spans if isinstance(spans, list) else []:
        if isinstance(item, list) and len(item) == 2:
            start, end = seconds_of(item[0]), seconds_of(item[1])
            if start is not None and end is not None and start < min(end, end_of):
                found.append((start, min(end, end_of)))
    return sorted(found)


def _speech_line(speech: dict, spans: list[tuple[float, float]]) -> str:
    """Where the speech is, then the bed's level and gain and the ducking, each when its numbers are sound."""
    number = lambda name: finite(speech.get(name))  # noqa: E731
    parts = [_span_said(spans) if spans else ("" if _said(speech.get("note")) else "no speech found")]  # a note says why
    if not spans:  # nothing was ducked: the bed's numbers would describe what did not happen
        return " · ".join(part for part in parts + [_detector(speech)] if part)
    if number("bed_level_lu") is not None:
        parts.append(f"music bed {number('bed_level_lu'):+.1f} LU from the speech"
                     + _level(number("speech_lufs")))
    if number("bed_gain_db") is not None:
        parts.append(f"bed gain {number('bed_gain_db'):+.1f} dB" + _level(number("music_lufs"), "music "))
    if number("depth_db") is not None:
        ramps = ", ".join(f"{name} {speech[name + '_s']:.1f} s" for name in ("attack", "release", "hold")
                          if seconds_of(speech.get(name + "_s")) is not None)
        parts.append(f"ducked {number('depth_db'):.1f} dB more while speech plays" + (f" ({ramps})" if ramps else ""))
    return " · ".join(part for part in parts + [_detector(speech)] if part)


def _detector(speech: dict) -> str:
    return f"found by {_said(speech['detector'])}" if _said(speech.get("detector")) else ""


def _level(lufs: float | None, what: str = "") -> str:
    return f" ({what}{lufs:.1f} LUFS)" if lufs is not None else ""


def _span_said(spans: list[tuple[float, float]]) -> str:
    """Says "speech 4.0–11.0 s, 12.5–14.0 s": the first ``SPANS_SAID`` spans, the rest counted."""
    said = ", ".join(f"{a:.1f}–{b:.1f} s" for a, b in spans[:SPANS_SAID])
    rest = len(spans) - SPANS_SAID
    return f"speech {said}" + (f" and {counted(rest, 'more span')}" if rest > 0 else "")


def _beat_line(sidecar: dict, beats: list[float], duration: float) -> str:
    said = counted(len(beats), "beat")
    if len(beats) > 1 and beats[-1] > beats[0]:
        said += f", about {60 * (len(beats) - 1) / (beats[-1] - beats[0]):.0f} bpm"
    after = _mean_offset(sidecar.get("cut_beats"), duration)
    sync = sidecar.get("sync") if isinstance(sidecar.get("sync"), dict) else None
    before = _mean_offset(sync.get("cut_beats_before"), duration) if sync else None
    if after is not None and before is not None:  # --sync cuts: the music was bent to meet them
        skipped = sync.get("skipped") if isinstance(sync.get("skipped"), list) else []
        said += (f"; shot cuts {before:.3f} s from the nearest beat on average before the music was bent onto "
                 f"them, {after:.3f} s after" + (f" ({counted(len(skipped), 'cut')} left as they were)"
                                                 if skipped else ""))
    elif after is not None:
        said += f"; shot cuts {after:.2f} s from the nearest beat on average"
    return said


def _mean_offset(rows, duration: float) -> float | None:
    """The mean distance of ``cut_beats`` rows' cuts from their beats; None without one."""
    rows = rows if isinstance(rows, list) else []
    offsets = [abs(o) for o in (finite(r.get("offset")) for r in rows if isinstance(r, dict))
               if o is not None and abs(o) <= duration]
    return sum(offsets) / len(offsets) if offsets else None


def _times(values, duration: float | None) -> list[float]:
    """The finite times in ``values`` within [0, duration], in order."""
    if not isinstance(values, list) or not duration:
        return []
    return sorted(t for t in (seconds_of(v) for v in values) if t is not None and t <= duration)


def _spans(windows, duration: float) -> list[tuple[float, float]]:
    spans = []
    for window in windows if isinstance(windows, list) else []:
        if isinstance(window, dict):
            start, end = seconds_of(window.get("start")), seconds_of(window.get("end"))
            if start is not None and end is not None and start <= end <= duration:
                spans.append((start, end))
    return spans


def _window(window: dict) -> str:
    when = f"{esc(window.get('index', ''))}: {clock(window.get('start'))}–{clock(window.get('end'))}"
    return f'<tr><td class="when">{when}</td><td>{_explanations(window.get("explanations"))}</td></tr>'


def _explanations(items) -> str:
    if not isinstance(items, list) or not items:
        return '<span class="muted">no explanations in this sidecar</span>'
    lines = []
    for item in items:
        item = item if isinstance(item, dict) else {"description": item}
        score = finite(item.get("score"))
        shown = f' <span class="score">({score:.3f})</span>' if score is not None else ""
        feeling = f" · {esc(item['feeling'])}" if item.get("feeling") else ""  # what the bank's caption states
        seen = f'<br><span class="muted">for: {esc(item["caption"])}{feeling}</span>' if item.get("caption") else ""
        chosen = " <strong>(chosen)</strong>" if item.get("chosen") else ""  # the retrieval prior's pick
        lines.append(f"<li>{esc(item.get('description', ''))}{shown}{chosen}{seen}{_moods(item.get('feelings'))}</li>")
    return f"<ol>{''.join(lines)}</ol>"


def _moods(feelings) -> str:
    """The feelings the retrieval prior saw in the window, the one it chose first, with probabilities."""
    named = [f for f in feelings if isinstance(f, dict) and f.get("feeling")] if isinstance(feelings, list) else []
    if not named:
        return ""
    said = [esc(f["feeling"]) + _percent(finite(f.get("probability"))) for f in named]
    rest = f" · then {', '.join(said[1:])}" if said[1:] else ""
    return f'<br><span class="muted">mood seen: <strong>{said[0]}</strong>{rest}</span>'


def _percent(probability: float | None) -> str:
    return "" if probability is None else f" {probability:.0%}"


def _timings(seconds) -> str:
    if not isinstance(seconds, dict) or not seconds:
        return ""
    values = {str(k): seconds_of(v) for k, v in seconds.items()}
    values = {k: v for k, v in values.items() if v is not None}
    if not values:
        return ""
    top = max(values.values()) or 1.0
    rows = "".join(f'<div class="row"><span>{esc(k)}</span><div class="bar" style="width:{100 * v / top:.1f}%">'
                   f'</div><span class="secs">{v:.2f} s</span></div>' for k, v in values.items())
    return f'<div class="timings"><b>stage times</b> <span class="muted">(seconds per video)</span>{rows}</div>'


def _footer(collected: Collected) -> str:
    bad = (f" · {counted(collected.bad_lines, 'unreadable manifest line')} ignored (the first is line "
           f"{collected.first_bad})"
           if collected.bad_lines else "")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return f"<footer>Made by cotvtm from manifest.jsonl and the sidecars at {esc(stamp)}{esc(bad)}.</footer>"
