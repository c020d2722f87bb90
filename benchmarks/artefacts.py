"""Speed of :func:`phot7dt.artefacts.find_artefacts` on one 40-band, 250 x 250 px patch.

A crowded patch (60 Gaussian stars of S/N 5-3000, FWHM 3.5 px, sky noise 1) and a pure-noise
patch, each timed as the best of ``--repeat`` calls after a warm-up (numba cache load).
Results go to ``benchmarks/results/artefacts.json``. Target: <= 0.2 s per patch on one core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))
from phot7dt.artefacts import find_artefacts  # noqa: E402

SIZE, BANDS, FWHM = 250, 40, 3.5


def patch(crowded: bool, rng: np.random.Generator) -> np.ndarray:
    images = rng.normal(0.0, 1.0, (BANDS, SIZE, SIZE)).astype(np.float32)
    if crowded:
        yy, xx = np.mgrid[0:SIZE, 0:SIZE]
        s = FWHM / 2.3548
        for x, y, snr in zip(rng.uniform(10, SIZE - 10, 60), rng.uniform(10, SIZE - 10, 60),
                             10 ** rng.uniform(0.7, 3.5, 60), strict=True):
            star = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * s * s))
            images += (snr * np.sqrt(4 * np.pi) * s * star / (2 * np.pi * s * s))[None]
    return images


def best_of(images: np.ndarray, repeat: int) -> float:
    invvar, fwhm = np.ones_like(images), np.full(BANDS, FWHM)
    find_artefacts(images, invvar, fwhm)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        find_artefacts(images, invvar, fwhm)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=PROJECT / "benchmarks/results/artefacts.json")
    opts = parser.parse_args()
    rng = np.random.default_rng(1)
    result = {"patch": f"{BANDS} bands x {SIZE} x {SIZE} px", "target_seconds": 0.2,
              "crowded_seconds": round(best_of(patch(True, rng), opts.repeat), 4),
              "noise_seconds": round(best_of(patch(False, rng), opts.repeat), 4)}
    opts.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))  # noqa: T201 - a command-line report
    return 0


if __name__ == "__main__":
    sys.exit(main())
