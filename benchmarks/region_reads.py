"""Resident memory of a worker that cuts every patch of a tile from the memory-mapped bands.

A fitting (or ePSF) worker cuts regions of all bands, one patch after another.
Pages of a memory-mapped file that were read count towards the worker's resident
set until they are released, so without releasing them a worker's RSS grows
towards the size of every band it touched (40 x 245 MB on a full tile). This
benchmark does what a worker does with the pixels: ``FrameSet.cutout`` of every
ROI in a run's ``patches.csv`` (or a regular grid), and reports the file-backed
resident memory of the band files and the time, as JSON on stdout.

Run on a finished run's work folder (``benchmarks/full_tile.py --keep``):
``python benchmarks/region_reads.py WORK_DIR [--every 1]``. To measure another
version of ``phot7dt.frames``, put its ``src`` first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import pandas as pd

from phot7dt.datasets import FrameSetDataset
from phot7dt.frames import Box


def band_file_rss_mb(paths: set[str]) -> float:
    """Resident MB of this process's mappings of ``paths`` (Linux /proc/self/smaps)."""
    total, current = 0, ""
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:
                current = fields[5] if len(fields) > 5 else ""
            elif fields[0] == "Rss:" and current in paths:
                total += int(fields[1])
    return total / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="work_dir of a run that has reached patching")
    parser.add_argument("--every", type=int, default=1, help="cut every n-th patch only")
    opts = parser.parse_args()
    frames = FrameSetDataset(filepath=str(opts.work / "02_intermediate" / "frames.json")).load()
    patches = pd.read_csv(opts.work / "05_model_input" / "patches" / "patches.csv")
    paths = {f.path for f in frames.frames}
    start, peak = time.perf_counter(), 0.0
    for row in patches.iloc[:: opts.every].itertuples(index=False):
        frames.cutout(Box(row.x0_roi, row.y0_roi, row.x1_roi, row.y1_roi))
        peak = max(peak, band_file_rss_mb(paths)) if row.patch_c == 0 else peak
    end_rss = band_file_rss_mb(paths)
    print(json.dumps({  # noqa: T201 - the result goes to stdout (see the module docstring)
        "frames_module": sys.modules[Box.__module__].__file__,
        "bands": len(frames.frames),
        "working_shape": list(frames.shape),
        "patches_cut": len(patches.iloc[:: opts.every]),
        "seconds": round(time.perf_counter() - start, 1),
        "band_file_rss_mb_end": round(end_rss, 1),
        "band_file_rss_mb_peak": round(max(peak, end_rss), 1),
        "process_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
