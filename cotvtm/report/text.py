"""Text that goes into the page: escaped, with invisible characters made visible, and numbers
written for people.

Sidecars and the manifest are read as found, and JSON can hold NaN, 1e309 or a number written
as text: only a finite number (not negative, for seconds) is used; anything else shows as '?'
and adds nothing to the sums.
"""

import html
import math

# Bidirectional overrides and marks can make a file name read as something else on screen.
_BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def visible(text: str) -> str:
    """Control and bidi characters as escapes (a newline in a key shows as '\\n'), and so are
    lone surrogates, which no page can be encoded with."""
    out = []
    for ch in str(text):
        code = ord(ch)
        if code < 0x20 or code == 0x7F or code in _BIDI or 0x80 <= code < 0xA0 or 0xD800 <= code < 0xE000:
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def esc(value) -> str:
    """Escape any user-controlled value for HTML text or a quoted attribute."""
    return html.escape(visible("" if value is None else str(value)), quote=True)


def finite(value) -> float | None:
    """A JSON number that is finite; None for text, true/false, null, NaN, 1e309 or 10**400."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def seconds_of(value) -> float | None:
    """A time or a duration: a finite number that is not negative."""
    value = finite(value)
    return value if value is not None and value >= 0 else None


def clock(seconds: float | None) -> str:
    """0:07.5 for window bounds; h:mm:ss for an hour or more; '?' for no usable number."""
    seconds = seconds_of(seconds)
    if seconds is None:
        return "?"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 1:
        return f"{int(hours)}:{int(minutes):02d}:{int(secs):02d}"
    return f"{int(minutes)}:{secs:04.1f}"


def span(seconds: float | None) -> str:
    """A duration people read at a glance: 42 s, 3.5 min, 2.25 h."""
    seconds = finite(seconds)
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"
