"""cotvtm: soundtrack video libraries with music distilled from an LLM's chain of thought.

The jobs as Python functions: ``soundtrack``, ``label``, ``embed``, ``distill``, ``evaluate``
(``cotvtm/api.py``).
"""

import os as _os

from cotvtm.about import LOCAL_RAY_ENV, __version__

# Ray reads these when it is imported: set before any module of this package imports it.
if not _os.environ.get("RAY_ADDRESS"):
    for _name, _value in LOCAL_RAY_ENV.items():
        _os.environ.setdefault(_name, _value)

from cotvtm.api import distill, embed, evaluate, label, soundtrack  # noqa: E402  (after the Ray settings above)

__all__ = ["__version__", "distill", "embed", "evaluate", "label", "soundtrack"]
