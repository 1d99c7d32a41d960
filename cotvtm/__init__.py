"""cotvtm: soundtrack video libraries with music distilled from an LLM's chain of thought."""

import os as _os

__version__ = "0.1.0"

# A local Ray (no RAY_ADDRESS) stays on 127.0.0.1 and needs no token. Ray reads these when it
# is imported, so they are set here, before any module of this package imports it.
LOCAL_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}
if not _os.environ.get("RAY_ADDRESS"):
    for _name, _value in LOCAL_RAY_ENV.items():
        _os.environ.setdefault(_name, _value)
