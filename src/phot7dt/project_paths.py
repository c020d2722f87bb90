"""Where the Kedro project's configuration folder is, for tools run outside ``kedro run``."""

from __future__ import annotations

from pathlib import Path


def conf_source() -> Path:
    """The project's ``conf`` folder (``conf/base`` holds the parameter defaults).

    The folder beside the source tree when phot7dt runs from a checkout (``src/phot7dt``),
    else ``./conf`` in the working directory: an installed phot7dt is used from the project
    folder, as ``kedro run`` is.
    """
    checkout = Path(__file__).resolve().parents[2] / "conf"
    return checkout if (checkout / "base").is_dir() else Path.cwd() / "conf"
