"""Compile the numba kernels once, into the cache that later runs load.

``python -m phot7dt.warmup`` fits a small synthetic eight-band patch (a star
and three galaxy models, source Poisson noise, two artefacts) and runs the artefact finder
on it: the calls compile every ``cache=True`` kernel of :mod:`phot7dt.scene`
and :mod:`phot7dt._artefact_kernels` for the array types the pipeline passes
(float32 pixels) and write the machine code to numba's cache. A process that
finds the cache loads the kernels in well under a second instead of compiling
them; without it, every process of the first ``kedro run`` (the main process
and each worker) compiles them itself. ``make install`` runs this once.

The cache is ``NUMBA_CACHE_DIR`` (by default a per-user folder, see
:func:`phot7dt.numba_cache_dir`); numba keys its entries by the source file's
folder and content, so a clone in another folder compiles its own copy.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

logger = logging.getLogger(__name__)

#: Side of the synthetic patch, px.
SIZE = 48
#: Moffat FWHM of the synthetic PSF in the first band, px.
FWHM = 3.0
#: Bands: more than ``scene.fisher_bands`` and twice ``scene.coarse_bands``, so that the
#: estimated-Fisher steps and the coarse pass run too.
N_BANDS = 8


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list, dict]:
    """:data:`N_BANDS` float32 bands with four sources and two artefacts: images, inverse
    variance, PSFs and the source table."""
    from phot7dt.scene import MoffatPSF, catalog_to_soft, render_model

    kinds = ["STAR", "EXP", "DEV", "SERSIC"]
    sources = {
        "x": np.array([12.0, 30.0, 20.0, 36.0]), "y": np.array([14.0, 30.0, 36.0, 12.0]),
        "type": np.array(kinds), "re_pix": np.array([1.0, 3.0, 2.5, 2.0]),
        "ell": np.array([0.0, 0.3, 0.2, 0.1]), "theta_deg": np.array([0.0, 30.0, -20.0, 60.0]),
        "sersic_n": np.array([1.0, 1.0, 4.0, 2.0]),
    }
    flux = np.outer([4000.0, 2500.0, 1800.0, 1200.0], np.linspace(1.0, 0.7, N_BANDS))
    psfs = [MoffatPSF(fwhm, radius=12) for fwhm in np.linspace(FWHM, 1.2 * FWHM, N_BANDS)]
    params = np.column_stack([sources["x"], sources["y"],
                              *catalog_to_soft(sources["re_pix"], sources["ell"],
                                               sources["theta_deg"]), sources["sersic_n"]])
    model = render_model((SIZE, SIZE), psfs, kinds, params, flux)
    sigma = 2.0
    images = (model + rng.normal(0.0, sigma, model.shape)).astype(np.float32)
    images[1, 40, 8] += 400.0  # a hot pixel
    images[2, 5, 20:30] += 300.0  # a short trail
    invvar = np.full(images.shape, 1.0 / sigma**2, np.float32)
    return images, invvar, psfs, {**sources, "flux": flux * 0.9}


def warm_up(seed: int = 1) -> float:
    """Run the kernels once on a small synthetic patch; returns the CPU seconds it took."""
    from phot7dt.artefacts import find_artefacts
    from phot7dt.scene import fit_patch

    start = time.process_time()
    images, invvar, psfs, sources = _scene(np.random.default_rng(seed))
    gain = np.full(N_BANDS, 2.0)
    find_artefacts(images, invvar, np.array([p.fwhm for p in psfs]), gain=gain)
    fit_patch(images, invvar, psfs, sources, gain=gain).model_images()  # (the float32 renderer)
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    """Command line: compile (or load) the kernels and say how long it took."""
    import numba

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    seconds = warm_up()
    where = numba.config.CACHE_DIR or "__pycache__ beside the sources"
    logger.info("numba kernels ready in %.1f s of CPU (cache: %s)", seconds, where)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
