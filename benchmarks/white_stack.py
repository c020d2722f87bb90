"""Benchmark of the ingest white stack on a full-size synthetic 7DT tile.

Writes ``--bands`` float32 FITS images of ``--shape`` pixels (default 40 bands
of 9576 x 6388, about 9.8 GB) to a temporary folder, runs the
``build_white_stack`` node on them, and records wall time and peak resident
memory in ``benchmarks/results/white_stack.json``. The files are deleted
afterwards. Target: peak RSS <= 3 GB for the full tile.

    python benchmarks/white_stack.py                         # full tile
    python benchmarks/white_stack.py --bands 4 --shape 2000 1500
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from astropy.io import fits

from phot7dt.frames import Box, Frame, FrameSet
from phot7dt.pipelines.ingest.nodes import build_white_stack

logger = logging.getLogger("benchmarks.white_stack")
RESULTS = Path(__file__).resolve().parent / "results" / "white_stack.json"
ROWS_PER_WRITE = 512


def write_band(path: Path, band: str, shape: tuple[int, int], seed: int) -> None:
    """Write one float32 band in row blocks (the writer never holds the whole image)."""
    ny, nx = shape
    header = fits.PrimaryHDU(data=np.zeros((1, 1), np.float32)).header
    header.update(NAXIS1=nx, NAXIS2=ny)
    header.update(
        CTYPE1="RA---TAN",
        CTYPE2="DEC--TAN",
        CRVAL1=150.0,
        CRVAL2=2.0,
        CRPIX1=nx / 2,
        CRPIX2=ny / 2,
        CD1_1=-0.505 / 3600,
        CD1_2=0.0,
        CD2_1=0.0,
        CD2_2=0.505 / 3600,
        FILTER=band,
        ZP_AUTO=25.0,
        SKYSIG=5.0,
        EGAIN=1.0,
    )
    rng = np.random.default_rng(seed)
    with fits.StreamingHDU(str(path), header) as stream:
        for y0 in range(0, ny, ROWS_PER_WRITE):
            rows = min(ROWS_PER_WRITE, ny - y0)
            stream.write(rng.normal(0.0, 5.0, (rows, nx)).astype(">f4"))


def frame_set(folder: Path, bands: int, shape: tuple[int, int], margin: int) -> FrameSet:
    """Write the synthetic bands and return their FrameSet."""
    frames = []
    for i in range(bands):
        band = f"m{400 + 12 * i}"
        path = folder / f"{band}.fits"
        write_band(path, band, shape, seed=i)
        frames.append(
            Frame(
                band=band,
                path=str(path),
                hdu=0,
                zp_auto=25.0 + 0.01 * i,
                skysig=5.0,
                egain=1.0,
                saturate=math.inf,
                saturation_level=math.inf,
                fwhm_pix=3.5,
                scale=10 ** (-0.4 * 0.01 * i),
            )
        )
        logger.info("wrote %s", path)
    ny, nx = shape
    crop = Box(margin, margin, nx - margin, ny - margin)
    header = fits.Header(
        {
            "CTYPE1": "RA---TAN",
            "CTYPE2": "DEC--TAN",
            "CRVAL1": 150.0,
            "CRVAL2": 2.0,
            "CRPIX1": nx / 2 - margin,
            "CRPIX2": ny / 2 - margin,
            "CD1_1": -0.505 / 3600,
            "CD2_2": 0.505 / 3600,
        }
    )
    return FrameSet(
        frames=tuple(frames), crop=crop, full_shape=shape, zp_ref=25.0, wcs_header=header.tostring()
    )


class PeakRSS:
    """Sample the process's resident set every 50 ms (ru_maxrss includes the setup)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, process.memory_info().rss)
            time.sleep(0.05)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bands", type=int, default=40)
    parser.add_argument("--shape", type=int, nargs=2, default=(6388, 9576), metavar=("NY", "NX"))
    parser.add_argument("--margin", type=int, default=500)
    parser.add_argument("--workers", default="auto", help="performance.white_stack_workers")
    parser.add_argument("--tmpdir", default=None, help="folder for the synthetic FITS files")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    shape = (args.shape[0], args.shape[1])
    workers = args.workers if args.workers == "auto" else int(args.workers)
    folder = Path(tempfile.mkdtemp(prefix="phot7dt_white_", dir=args.tmpdir))
    try:
        start = time.perf_counter()
        frames = frame_set(folder, args.bands, shape, args.margin)
        write_seconds = time.perf_counter() - start
        rss_before = psutil.Process().memory_info().rss
        with PeakRSS() as sampler:
            start = time.perf_counter()
            (white, _), (sigma, _) = build_white_stack(frames, {"white_stack_workers": workers})
            seconds = time.perf_counter() - start
        input_bytes = sum(os.path.getsize(f.path) for f in frames.frames)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = {
        "benchmark": "white_stack",
        "bands": args.bands,
        "image_shape": list(shape),
        "working_shape": list(white.shape),
        "input_gigabytes": round(input_bytes / 1e9, 3),
        "workers": workers,
        "write_seconds": round(write_seconds, 1),
        "white_stack_seconds": round(seconds, 2),
        "megapixels_per_second": round(args.bands * white.size / 1e6 / seconds, 1),
        "rss_before_gb": round(rss_before / 1e9, 3),
        "peak_rss_gb_during_white_stack": round(sampler.peak / 1e9, 3),
        "peak_rss_gb_process": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 3
        ),
        "target_peak_rss_gb": 3.0,
        "white_finite_fraction": round(float(np.isfinite(white[::16, ::16]).mean()), 4),
        "white_sigma_median": float(np.median(sigma[::16, ::16])),
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    logger.info("white stack: %s", json.dumps(result))


if __name__ == "__main__":
    main()
