"""A PNG of the report as a browser draws it: headless Chromium, nothing fetched from outside.

Used for the picture in docs/ and by the test that checks the page really renders. Chromium is
optional: ``find_chromium`` returns None when it is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from cotvtm.errors import CotvtmError

NAMES = ("chromium", "chromium-browser")
# Quiet, offline, throw-away profile. The virtual time budget lets videos seek to the frame the
# page asks for (#t=...) before the picture is taken, instead of catching a loading spinner.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio")


def find_chromium() -> str | None:
    return next((path for path in map(shutil.which, NAMES) if path), None)


def dump_dom(url: str, settle_ms: int = 3000, timeout_s: float = 120.0, chromium: str | None = None) -> str:
    """The page's DOM as Chromium has it after loading ``url`` (what a test reads the page from)."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise CotvtmError("chromium is not installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="cotvtm-chromium-") as profile:
        args = [chromium, *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={settle_ms}", "--dump-dom",
                url]
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    if done.returncode != 0 or "<html" not in done.stdout:
        tail = "\n".join(done.stderr.splitlines()[-10:])
        raise CotvtmError(f"chromium could not load {url} (exit {done.returncode}):\n{tail}")
    return done.stdout


def screenshot(url: str, png: str | Path, size: tuple[int, int] = (1280, 1600), settle_ms: int = 3000,
               timeout_s: float = 120.0, chromium: str | None = None) -> Path:
    """Render ``url`` (``Path.as_uri()`` for a file) into ``png``; raise with Chromium's stderr."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise CotvtmError("chromium is not installed (Debian: apt-get install chromium)")
    png = Path(png).resolve()
    with tempfile.TemporaryDirectory(prefix="cotvtm-chromium-") as profile:
        args = [chromium, *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={settle_ms}",
                f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", url]
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    if done.returncode != 0 or not png.is_file():
        tail = "\n".join(done.stderr.splitlines()[-10:])
        raise CotvtmError(f"chromium could not render {url} (exit {done.returncode}):\n{tail}")
    return png
