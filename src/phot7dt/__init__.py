"""phot7dt: forced multi-band photometry for 7-Dimensional Telescope images."""

import os

__version__ = "0.1.0"


def numba_cache_dir() -> str:
    """Folder of numba's compiled-kernel cache for phot7dt.

    ``NUMBA_CACHE_DIR`` when it is set (empty: numba's own ``__pycache__`` beside the
    sources); otherwise ``$XDG_CACHE_HOME/phot7dt/numba`` (``~/.cache/phot7dt/numba``),
    which outlives the checkout and serves read-only installs. numba falls back to
    ``__pycache__`` when the folder cannot be written.
    """
    if "NUMBA_CACHE_DIR" in os.environ:
        return os.environ["NUMBA_CACHE_DIR"]
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache_home, "phot7dt", "numba")


# numba reads the variable when it is first imported (phot7dt imports it only in the
# engine and the artefact finder); worker processes inherit it.
os.environ["NUMBA_CACHE_DIR"] = numba_cache_dir()
