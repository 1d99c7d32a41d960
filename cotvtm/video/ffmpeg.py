"""The one place the project runs ffmpeg and ffprobe, restricted to what the job accepts.

Inputs come from strangers, and ffmpeg does more than read a file: a file whose content is an
HLS or DASH playlist, a concat list or an SDP description (whatever its name says) makes ffmpeg
open the files and URLs listed inside it, so a "video" could publish a private file of the
machine as an output, or fetch from the network. Every input of every call made here is
therefore opened with

    -protocol_whitelist file         local files only (no http, tcp, pipe, data, ...)
    -format_whitelist  <formats>     only the container formats (demuxers) the job takes

which the installed ffmpeg enforces itself, whichever version it is. A file in any other
format fails with a reason that names its format. Input and output names are ``file:`` URLs
(``ffmpeg_url``), so a name is never read as an option or a protocol.

A pinned input (``storage/pin.py``) is named ``/dev/fd/N``: a descriptor opened and checked
by this process. The call hands exactly those descriptors to ffmpeg, which then reads the very
file that was checked, even if the name now points at another one.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence

from cotvtm.errors import MediaError

FFMPEG, FFPROBE = "ffmpeg", "ffprobe"
PROTOCOLS = "file"
# The demuxers of the containers the job accepts (cotvtm/video/media.py lists the extensions).
# A demuxer's name lists every container it reads: "mov" is mp4/mov/m4v/3gp, "matroska" mkv/webm.
VIDEO_FORMATS = ("mov", "matroska", "avi", "mpegts", "mpeg", "flv")
# Images by content only: the "image2" demuxer reads numbered sequences of other files by name.
IMAGE_FORMATS = ("png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif")
MUSIC_FORMATS = ("wav",)  # the job's own intermediate music
ACCEPTED = VIDEO_FORMATS + IMAGE_FORMATS + MUSIC_FORMATS
# Audio files are read only by the evaluation (scoring other systems' music), never by the job.
AUDIO_FORMATS = ("mp3", "flac", "ogg", "aac", "wav", "mov")
_PINNED = re.compile(r"^(?:file:)?/dev/fd/(\d+)$")
_REFUSED = re.compile(r"\[(\S+) @ 0x[0-9a-f]+\] (Format|Protocol) not on whitelist")
_LOG_PREFIX = re.compile(r"^\[[^\]]+ @ 0x[0-9a-f]+\]\s*")  # "[mov,mp4,... @ 0x5563...] "
_GENERIC_LINE = re.compile(r"^(Conversion failed!|Error initializing output stream .*|Exiting normally.*)$")


def ffmpeg_url(path: str | os.PathLike) -> str:
    """An ffmpeg input/output name for a local path that can never be read as an option
    ("-x.mp4") or a protocol ("a:b.mp4"): ``file:`` plus the absolute path."""
    return "file:" + os.path.abspath(os.fspath(path))


def restricted(command: Sequence[str], formats: Sequence[str] = ACCEPTED) -> list[str]:
    """``command`` with the protocol and format whitelists put before each of its inputs."""
    out: list[str] = []
    for arg in command:
        if arg == "-i":
            out += ["-protocol_whitelist", PROTOCOLS, "-format_whitelist", ",".join(formats)]
        out.append(arg)
    return out


def run(command: Sequence[str], subject, what: str, timeout_s: float, formats: Sequence[str] = ACCEPTED,
        text: bool = False) -> subprocess.CompletedProcess:
    """Run ``command`` (``[FFMPEG | FFPROBE, ...]``) restricted to ``formats``.

    Raises MediaError naming ``subject`` when it takes longer than ``timeout_s`` or an input is
    in a refused format or protocol; any other failure is the caller's to read (returncode).
    """
    if command[0] not in (FFMPEG, FFPROBE):
        raise ValueError(f"not an ffmpeg tool: {command[0]!r}")
    try:
        done = subprocess.run(restricted(command, formats), capture_output=True, text=text, timeout=timeout_s,
                              stdin=subprocess.DEVNULL, pass_fds=pinned_fds(command))
    except subprocess.TimeoutExpired:
        raise MediaError(subject, f"{what} did not finish in {timeout_s:.0f} s") from None
    if done.returncode != 0:
        refused = refused_reason(done.stderr)
        if refused:
            raise MediaError(subject, refused)
    return done


def pinned_fds(command: Sequence[str]) -> tuple[int, ...]:
    """The descriptors of pinned inputs (``/dev/fd/N``), which ffmpeg must inherit to read them."""
    return tuple(int(m.group(1)) for arg in command for m in [_PINNED.match(str(arg))] if m)


def refused_reason(stderr: str | bytes) -> str | None:
    """Why ffmpeg refused an input, when its ``stderr`` says a whitelist did (``refusal``)."""
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    refused = _REFUSED.search(stderr)
    return refusal(refused.group(1), refused.group(2)) if refused else None


def refusal(name: str, kind: str = "Format") -> str:
    """Why a file in a format (or reached by a protocol) outside the whitelists is refused."""
    if kind == "Protocol":
        return f"refers to a {name!r} resource: only local files are read"
    return (f"container format {name!r} is not accepted: playlists and lists of other files are never followed "
            "(accepted: mp4, mov, mkv, webm, avi, ts, mpg, flv and png, jpeg, webp, bmp, tiff, gif images)")


def pyav_options(formats: Sequence[str] = ACCEPTED) -> dict[str, str]:
    """The same whitelists as options for PyAV's ``av.open``, which bundles an FFmpeg of its own."""
    return {"protocol_whitelist": PROTOCOLS, "format_whitelist": ",".join(formats)}


def summarise_stderr(stderr: str | bytes, *urls: str) -> str:
    """ffmpeg's stderr in one line: its last own message (e.g. "Invalid data found when
    processing input") and, in brackets, the last message of the component that failed (the
    "[mov @ 0x...] moov atom not found" line), with file names and generic lines dropped."""
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    own, component = [], []
    for line in stderr.splitlines():
        line = line.strip()
        for url in urls:
            line = line.replace(url + ": ", "").replace(url, "<file>")
        if not line or _GENERIC_LINE.match(line):
            continue
        if _LOG_PREFIX.match(line):
            component.append(_LOG_PREFIX.sub("", line))
        else:
            own.append(line)
    if not own and not component:
        return "no error message"
    if not own or not component:
        return (own or component)[-1]
    return f"{own[-1]} ({component[-1]})"


def check(done: subprocess.CompletedProcess, subject, what: str) -> subprocess.CompletedProcess:
    """``done`` if it succeeded; else MediaError with ``what`` and ffmpeg's stderr in one line."""
    if done.returncode != 0:
        urls = [arg for arg in done.args if isinstance(arg, str) and arg.startswith("file:")]
        raise MediaError(subject, f"{what}: {summarise_stderr(done.stderr, *urls)}")
    return done
