"""Text that goes into the page: escaped, with invisible characters made visible, and numbers
written for people.

Sidecars and the manifest are read as found, and JSON can hold NaN, 1e309 or a number written
as text: only a finite number (not negative, for seconds) is used; anything else shows as '?'
and adds nothing to the sums.
"""

import html

from cotvtm.errors import printable as visible  # control, bidi and surrogate characters as escapes
from cotvtm.jsonl import finite, seconds_of


def esc(value) -> str:
    """Escape any user-controlled value for HTML text or a quoted attribute."""
    return html.escape(visible("" if value is None else str(value)), quote=True)


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
