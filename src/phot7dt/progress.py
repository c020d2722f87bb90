"""Progress of long loops: a tqdm bar on a terminal, log lines in batch jobs.

When standard error is a terminal, :func:`progress` shows a tqdm bar. Otherwise
(a batch job, ``nohup``, output redirected to a file, a notebook) it writes
lines through :mod:`logging` — counts, percentage, rate, elapsed time and an
estimate of the time left — each time another 1/:data:`LOG_STEPS` of the work
is done (but not more often than every :data:`LOG_MIN_SECONDS`), at least
every :data:`LOG_EVERY_SECONDS` while work completes, and once at the end; no
carriage returns ever reach a log file.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm


__all__ = ["LogProgress", "on_terminal", "progress"]

logger = logging.getLogger(__name__)

#: Log a line each time another 1/LOG_STEPS of the total is done (every 10 %)...
LOG_STEPS = 10
#: ...but not more often than this (s)...
LOG_MIN_SECONDS = 5.0
#: ...and at least this often while items complete (s).
LOG_EVERY_SECONDS = 30.0


def _duration(seconds: float) -> str:
    """``"42 s"``, ``"7 min 05 s"``, ``"2 h 03 min"``."""
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def on_terminal() -> bool:
    """Whether standard error is an interactive terminal."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


class LogProgress:
    """Progress reported as log lines (the batch-job face of :func:`progress`).

    Offers the parts of tqdm's interface the stages use: iteration, ``update``,
    ``close`` and use as a context manager.
    """

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None,
                 desc: str = "", unit: str = "it", log: logging.Logger | None = None) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n = 0
        self._log = log or logger
        self._start = self._last = time.monotonic()
        self._next_step = 1  # log when n / total reaches _next_step / LOG_STEPS
        self._closed = False

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items done; log a line when one is due."""
        self.n += n
        now = time.monotonic()
        since = now - self._last
        due = since >= LOG_EVERY_SECONDS
        if self.total and self.n < self.total:
            reached = self.n * LOG_STEPS >= self._next_step * self.total
            due |= reached and since >= LOG_MIN_SECONDS
        if due and not (self.total and self.n >= self.total):
            self._log.info("%s", self._line(now))
            self._last = now
            if self.total:
                self._next_step = self.n * LOG_STEPS // self.total + 1

    def close(self) -> None:
        """Log the final line (once)."""
        if self._closed:
            return
        self._closed = True
        elapsed = time.monotonic() - self._start
        rate = self.n / elapsed if elapsed > 0 else math.inf
        done = f"{self.n}/{self.total}" if self.total is not None else str(self.n)
        state = "done" if self.total is None or self.n >= self.total else "stopped at"
        self._log.info("%s: %s %s %s in %s (%.3g %s/s)", self.desc, state, done, self.unit,
                       _duration(elapsed), rate, self.unit)

    def _line(self, now: float) -> str:
        elapsed = now - self._start
        rate = self.n / elapsed if elapsed > 0 else math.inf
        if not self.total:
            return (
                f"{self.desc}: {self.n} {self.unit}, {rate:.3g} {self.unit}/s, "
                f"elapsed {_duration(elapsed)}"
            )
        left = (self.total - self.n) / rate if rate > 0 else math.inf
        return (
            f"{self.desc}: {self.n}/{self.total} {self.unit} ({100 * self.n / self.total:.0f} %), "
            f"{rate:.3g} {self.unit}/s, elapsed {_duration(elapsed)}, ETA {_duration(left)}"
        )


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str,
             unit: str = "it", log: logging.Logger | None = None) -> tqdm | LogProgress:
    """A progress reporter for a loop: a tqdm bar on a terminal, log lines otherwise.

    Parameters
    ----------
    iterable : iterable, optional
        Items to iterate over while counting; without it, call ``update()`` per
        item and ``close()`` at the end (or use the result as a context manager).
    total : int, optional
        Number of items (``len(iterable)`` when it has one).
    desc : str
        What is being done, e.g. the node name (``"fit_patches"``).
    unit : str
        Name of one item (``"patch"``, ``"band"``).
    log : logging.Logger, optional
        Logger of the log lines (this module's by default).
    """
    from tqdm import tqdm
    if on_terminal():
        return tqdm(iterable, total=total, desc=desc, unit=unit, mininterval=1.0)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, log=log)
