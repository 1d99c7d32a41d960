"""The package's version and the settings a local Ray needs, in a module that imports nothing."""

__version__ = "0.1.0"

# A local Ray (no RAY_ADDRESS) stays on 127.0.0.1 and needs no token. Ray reads these when it
# is imported, so ``cotvtm/__init__.py`` sets them before any module of this package imports it.
LOCAL_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}
