"""Plain vs tile-compressed (``.fits.fz``) inputs: white stack and patch cut, time and memory.

Writes ``--bands`` float32 images of ``--size`` x ``--size`` pixels (sky noise 5 ADU
plus 400 Gaussian stars) four times: plain FITS, RICE_1 with astropy's default
quantisation (``quantize_level`` 16, lossy) and lossless GZIP_2 (no quantisation),
both in fpack's default full-row tiles, and RICE_1 in 256 x 256 px tiles.
For each set, in a fresh process: ``build_white_stack`` on the whole frame, and
``FrameSet.cutout`` of one ``--patch`` px square in every band; reports wall time,
CPU time (all threads), peak resident memory above the process's resident memory
before the step (sampled every 5 ms), the file sizes and the largest pixel
difference from the plain images. Results go to
``benchmarks/results/compressed_inputs.json``.

    python benchmarks/compressed_inputs.py                    # 4 bands of 2000 x 2000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from astropy.io import fits

PROJECT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT / "benchmarks" / "results" / "compressed_inputs.json"
FORMATS = {
    "plain": None,
    "rice_q16": {"compression_type": "RICE_1", "quantize_level": 16},
    "gzip2_lossless": {"compression_type": "GZIP_2", "quantize_level": 0.0},
    "rice_q16_tiles256": {"compression_type": "RICE_1", "quantize_level": 16,
                          "tile_shape": (256, 256)},
}


def band_image(size: int, seed: int) -> np.ndarray:
    """Sky noise (5 ADU) plus 400 Gaussian stars of FWHM 3.5 px, float32."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0.0, 5.0, (size, size)).astype(np.float32)
    sigma, half = 3.5 / 2.3548, 10
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    xs = rng.integers(half, size - half, 400)
    ys = rng.integers(half, size - half, 400)
    for x, y, flux in zip(xs, ys, 10 ** rng.uniform(2, 5, 400), strict=True):
        star = flux * np.exp(-(xx**2 + yy**2) / (2 * sigma**2)) / (2 * np.pi * sigma**2)
        image[y - half : y + half + 1, x - half : x + half + 1] += star.astype(np.float32)
    return image


def write_sets(folder: Path, bands: int, size: int) -> dict[str, Path]:
    """One folder and image list per format; returns the image lists."""
    lists = {name: folder / name / "image_list.txt" for name in FORMATS}
    for path in lists.values():
        path.parent.mkdir(parents=True)
    names = {name: [] for name in FORMATS}
    for i in range(bands):
        band = f"m{400 + 25 * i}"
        header = fits.Header({
            "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 2.0,
            "CRPIX1": size / 2, "CRPIX2": size / 2, "CD1_1": -0.505 / 3600, "CD1_2": 0.0,
            "CD2_1": 0.0, "CD2_2": 0.505 / 3600, "FILTER": band, "ZP_AUTO": 25.0 + 0.1 * i,
            "SKYSIG": 5.0, "EGAIN": 1.0, "SATURATE": 60000.0,
        })
        image = band_image(size, seed=i)
        for name, options in FORMATS.items():
            if options is None:
                file = f"{band}.fits"
                fits.PrimaryHDU(image, header).writeto(lists[name].parent / file)
            else:
                file = f"{band}.fits.fz"
                hdu = fits.CompImageHDU(image, header, **options)
                fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(lists[name].parent / file)
            names[name].append(file)
    for name, path in lists.items():
        path.write_text("\n".join(names[name]) + "\n")
    return lists


def _peak_during(step) -> tuple[object, float, float, float]:
    """``(result, wall s, CPU s of all threads, peak RSS above the start in MB)``."""
    process = psutil.Process()
    start_rss = process.memory_info().rss
    peak = [start_rss]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start, cpu = time.perf_counter(), time.process_time()
    result = step()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    stop.set()
    thread.join()
    return result, seconds, cpu, (peak[0] - start_rss) / 1e6


def measure(args: tuple[str, str, str, int, int]) -> dict:
    """One step on one image set, in a fresh process."""
    listing, step, name, patch, workers = args
    sys.path.insert(0, str(PROJECT / "src"))
    from phot7dt.datasets import ImageListDataset
    from phot7dt.frames import Box
    from phot7dt.pipelines.ingest.nodes import build_white_stack, prepare_frames

    frames = prepare_frames(ImageListDataset(filepath=listing).load(), {},
                            {"enabled": False}, {})
    ny, nx = frames.shape
    if step == "white_stack":
        def run():
            return build_white_stack(frames, {"white_stack_workers": workers})[0][0]
    else:
        box = Box((nx - patch) // 2, (ny - patch) // 2, (nx + patch) // 2, (ny + patch) // 2)

        def run():
            return frames.cutout(box)[0]
    result, seconds, cpu, peak = _peak_during(run)
    return {"format": name, "step": step, "seconds": round(seconds, 3),
            "cpu_seconds": round(cpu, 3),
            "peak_rss_mb": round(peak, 1),
            "output_mb": round(result.nbytes / 1e6, 1), "_result": result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bands", type=int, default=4)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--patch", type=int, default=600)
    parser.add_argument("--workers", type=int, default=2, help="white-stack threads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    opts = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="phot7dt_fz_"))
    rows = []
    try:
        lists = write_sets(folder, opts.bands, opts.size)
        sizes = {name: sum(p.stat().st_size for p in path.parent.glob("m*")) / 1e6
                 for name, path in lists.items()}
        context = multiprocessing.get_context("spawn")
        reference = {}
        for step in ("white_stack", "patch_cut"):
            for name, listing in lists.items():
                with context.Pool(1) as pool:
                    row = pool.map(measure, [(str(listing), step, name, opts.patch,
                                              opts.workers)])[0]
                result = row.pop("_result")
                reference.setdefault(step, result)
                row["max_abs_difference_from_plain"] = float(np.nanmax(np.abs(
                    result - reference[step])))
                row["input_mb"] = round(sizes[name], 1)
                rows.append(row)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    summary = {"bands": opts.bands, "image_shape": [opts.size, opts.size],
               "patch": [opts.patch, opts.patch], "white_stack_threads": opts.workers,
               "cpu_count": psutil.cpu_count(), "runs": rows}
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))  # noqa: T201 - a command-line report
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
