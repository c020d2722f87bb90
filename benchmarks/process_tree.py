"""Memory of a benchmarked command: the summed RSS of a process and all its children."""

from __future__ import annotations

import psutil


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of ``proc`` and its descendants (processes that vanish are skipped)."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total
