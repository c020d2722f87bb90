"""Speed benchmark of the fitting engine (phot7dt.scene), one core.

Measures source-bands per second for (a) forced fluxes at fixed positions and
shapes and (b) the full three-stage fit, on an isolated-source patch and a
crowded one, at 4 and 40 bands, and the full fit summed over four crowded
realisations (their iteration counts differ by 3x).  Writes
``benchmarks/results/engine.json``.

Run: ``PYTHONPATH=src python benchmarks/engine.py [--repeat 3]``.
Targets (one core, 40 bands): (a) >= 20 000, (b) >= 1 000 source-bands/s.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def _steady_malloc():
    """Serve arrays below 128 MB from the heap (glibc), as in a long-running fitting worker.

    glibc's threshold for mmap-ed allocations rises only after large blocks are
    freed, so a short process may page-fault fresh memory for every temporary
    array: the 40-band forced fit then took 0.055-0.058 s instead of 0.033-0.035 s,
    depending on the process.  Worker processes of a real run reach the raised
    threshold within their first patches (12 tile patches: the same time with or
    without this setting).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(-1, 256 * 2**20)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 128 * 2**20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


_steady_malloc()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from phot7dt import scene  # noqa: E402

logger = logging.getLogger("benchmarks.engine")
TARGETS = {"forced": 20000.0, "full": 1000.0}


def make_patch(kind, n_band, seed=0):
    """A simulated patch: images, invvar, PSFs, catalog (offset from truth), truth."""
    rng = np.random.default_rng(seed)
    if kind == "isolated":
        ny, nx = 190, 260
        gx, gy = np.meshgrid(np.arange(30, nx - 20, 45.0), np.arange(30, ny - 20, 45.0))
        x, y = (
            gx.ravel() + rng.uniform(-0.5, 0.5, gx.size),
            gy.ravel() + rng.uniform(-0.5, 0.5, gx.size),
        )
    else:
        ny, nx = 128, 128
        n = 60
        x, y = rng.uniform(8, nx - 8, n), rng.uniform(8, ny - 8, n)
    n = x.size
    types = rng.choice(["STAR", "EXP", "DEV", "SERSIC"], n, p=[0.4, 0.3, 0.15, 0.15])
    re = rng.uniform(1.5, 4.0, n)
    ell, theta, sn = rng.uniform(0, 0.5, n), rng.uniform(-90, 90, n), rng.uniform(1.0, 4.0, n)
    logre, ee1, ee2 = scene.catalog_to_soft(re, ell, theta)
    params = np.stack([x, y, logre, ee1, ee2, sn], 1)
    # per-band S/N from ~5 to ~500 (7DT medium bands are shallow)
    fluxes = 10 ** rng.uniform(2.0, 4.0, (n, 1)) * rng.uniform(0.7, 1.3, (n, n_band))
    fwhm = rng.uniform(3.5, 4.5, n_band)
    psfs = [scene.PixelizedPSF(scene.MoffatPSF(f, radius=27).stamp) for f in fwhm]  # 55x55 "ePSFs"
    model = scene.render_model((ny, nx), psfs, types, params, fluxes)
    images = (model + rng.normal(0, 5.0, model.shape)).astype(np.float32)
    invvar = np.full(images.shape, 1 / 25.0, np.float32)
    catalog = {
        "x": x + rng.normal(0, 0.3, n),
        "y": y + rng.normal(0, 0.3, n),
        "type": types,
        "re_pix": re * rng.uniform(0.8, 1.2, n),
        "ell": ell,
        "theta_deg": theta,
        "sersic_n": sn,
        "flux": fluxes * rng.uniform(0.8, 1.2, fluxes.shape),
    }
    truth = {"params": params, "flux": fluxes}
    return images, invvar, psfs, catalog, truth


def _truth_shapes(params):
    cols = scene.soft_to_columns(params[:, 2], params[:, 3], params[:, 4])
    return cols["re_pix_fit"], cols["ELL_fit"], cols["THETA_fit"]


def time_fit(images, invvar, psfs, catalog, settings, repeat):
    best, res = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = scene.fit_patch(images, invvar, psfs, catalog, settings)
        best = min(best, time.perf_counter() - t0)
    return best, res


def run(repeat):
    warm = make_patch("crowded", 2, seed=9)
    scene.fit_patch(*warm[:4])  # JIT / caches warm-up
    rows = []
    for kind in ("isolated", "crowded"):
        for n_band in (4, 40):
            images, invvar, psfs, catalog, truth = make_patch(kind, n_band)
            n_src = len(catalog["x"])
            for mode, settings in (
                ("forced", {"fit_positions": False, "fit_shapes": False}),
                ("full", {}),
            ):
                if mode == "forced":  # truth positions and shapes: pulls are meaningful
                    re_true, ell_true, theta_true = _truth_shapes(truth["params"])
                    catalog_m = dict(
                        catalog,
                        x=truth["params"][:, 0],
                        y=truth["params"][:, 1],
                        re_pix=re_true,
                        ell=ell_true,
                        theta_deg=theta_true,
                    )
                else:
                    catalog_m = catalog
                seconds, res = time_fit(images, invvar, psfs, catalog_m, settings, repeat)
                rate = n_src * n_band / seconds
                row = {
                    "patch": kind,
                    "n_band": n_band,
                    "n_src": n_src,
                    "mode": mode,
                    "seconds": round(seconds, 4),
                    "source_bands_per_s": round(rate, 1),
                    "converged_frac": float(res.converged.mean()),
                    "median_source_niters": float(np.median(res.source_niters)),
                    "median_abs_flux_pull": float(
                        np.median(np.abs((res.flux - truth["flux"]) / res.flux_err_marginal))
                    ),
                    "target": TARGETS[mode] if n_band == 40 else None,
                }
                row["meets_target"] = None if row["target"] is None else rate >= row["target"]
                logger.info("%s", row)
                rows.append(row)
    rows.append(_crowded_realisations(repeat))
    return rows


def _crowded_realisations(repeat, seeds=(0, 1, 2, 3)):
    """The full fit over several crowded realisations: iteration counts vary a lot between them."""
    seconds, n_sb, conv = 0.0, 0, []
    for seed in seeds:
        images, invvar, psfs, catalog, _truth = make_patch("crowded", 40, seed=seed)
        best, res = time_fit(images, invvar, psfs, catalog, {}, repeat)
        seconds += best
        n_sb += len(catalog["x"]) * 40
        conv.append(float(res.converged.mean()))
    rate = n_sb / seconds
    row = {
        "patch": f"crowded, seeds {seeds[0]}-{seeds[-1]}",
        "n_band": 40,
        "n_src": n_sb // 40,
        "mode": "full",
        "seconds": round(seconds, 4),
        "source_bands_per_s": round(rate, 1),
        "converged_frac": min(conv),
        "target": TARGETS["full"],
        "meets_target": rate >= TARGETS["full"],
    }
    logger.info("%s", row)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "engine.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load_before = os.getloadavg()
    rows = run(args.repeat)
    out = {
        "benchmark": "phot7dt.scene engine",
        "cores": 1,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_before_after": [load_before[0], os.getloadavg()[0]],
        "note": "best of --repeat runs; timings on a shared machine scale with its load",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "results": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    logger.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
