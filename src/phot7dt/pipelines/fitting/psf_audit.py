"""The fitter's PSF per band, from the psf stage's choice, and tract7dt's PSF audit columns.

An ePSF is used as a pixelized stamp (``psf_model: pixelized``; ``hybrid``
too, since this engine renders galaxies through the pixelized PSF in Fourier
space, which is what the Tractor's hybrid PSF approximates) or as a Gaussian
mixture fitted to it (``gaussian_mixture_from_stamp``). A fallback is the stamp
the psf stage drew from the configured analytic model. PSFs are never fitted,
so no band needs freezing (``psf_frozen_bands_for_optimizer`` stays empty). A
band whose choice has no usable stamp is left out of the fit (its pixels get
zero weight, its fluxes are NaN) and listed in ``psf_missing_bands``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from phot7dt.psf_grid import PSFChoice
from phot7dt.scene import GaussianMixturePSF, PixelizedPSF

__all__ = ["AUDIT_COLUMNS", "audit_columns", "build_psfs", "psf_audit"]

#: Per-patch PSF audit columns copied onto every source row (tract7dt names).
AUDIT_COLUMNS = (
    "psf_min_epsf_nstars_for_use",
    "psf_used_epsf_band_count",
    "psf_fallback_band_count",
    "psf_low_star_band_count",
    "psf_fallback_bands",
    "psf_low_star_bands",
    "psf_frozen_bands_for_optimizer",
    "psf_fallback_reasons_json",
    "psf_missing_band_count",
    "psf_missing_bands",
)


#: Engine PSFs kept per worker process (about three ePSF cells of 40 bands). Patches of
#: one cell share their PSFs, so the PSF transforms the engine caches on them are reused.
_PSF_CACHE_SIZE = 120


def _engine_psf(choice: PSFChoice, config):
    if choice.stamp is None:
        raise ValueError(f"PSF choice {choice.model!r} has no stamp ({choice.reason})")
    if not np.all(np.isfinite(choice.stamp)):
        raise ValueError(f"PSF choice {choice.model!r} has non-finite stamp pixels")
    mixture = not choice.is_fallback and config.psf_model == "gaussian_mixture_from_stamp"
    stamp = np.ascontiguousarray(choice.stamp, dtype=np.float64)
    return _psf_of(stamp.tobytes(), stamp.shape, config.gaussian_mixture_n if mixture else 0)


@functools.lru_cache(maxsize=_PSF_CACHE_SIZE)
def _psf_of(pixels: bytes, shape: tuple[int, int], mixture_n: int):
    """The engine PSF of a stamp: a Gaussian mixture of ``mixture_n`` components fitted to it,
    or the stamp itself (``mixture_n`` = 0)."""
    stamp = np.frombuffer(pixels, np.float64).reshape(shape)
    if mixture_n:
        return GaussianMixturePSF.from_stamp(stamp, mixture_n)
    return PixelizedPSF(stamp)


def build_psfs(choices: Sequence[PSFChoice], config) -> tuple[list, dict[str, str]]:
    """One engine PSF per band, None where the band has no usable PSF.

    Returns
    -------
    psfs : list
        Engine PSF (or None) per band of ``config.bands``.
    missing : dict
        ``{band: why}`` of the bands without a PSF.
    """
    psfs, missing = [], {}
    for band, choice in zip(config.bands, choices, strict=True):
        try:
            psfs.append(_engine_psf(choice, config))
        except ValueError as exc:
            psfs.append(None)
            missing[band] = str(exc)
    return psfs, missing


def _is_low_star(choice: PSFChoice) -> bool:
    return choice.is_fallback and choice.reason.startswith("low-star")


def psf_audit(
    choices: Sequence[PSFChoice], psfs: Sequence, config, missing: dict[str, str]
) -> dict[str, Any]:
    """Audit of one patch: per band (model, stars, FWHM, reason) and tract7dt's summary fields."""
    bands = config.bands
    fallback = [b for b, c in zip(bands, choices, strict=True) if c.is_fallback]
    low = [b for b, c in zip(bands, choices, strict=True) if _is_low_star(c)]
    return {
        "psf_audit": {
            b: {
                "psf_model": c.model,
                "psf_class": "none" if p is None else type(p).__name__,
                "used_epsf": not c.is_fallback,
                "epsf_nstars_used": c.nstars,
                "fwhm_pix": c.fwhm_pix,
                "reason": missing.get(b, c.reason),
            }
            for b, c, p in zip(bands, choices, psfs, strict=True)
        },
        "psf_min_epsf_nstars_for_use": int(config.min_epsf_nstars_for_use),
        "psf_used_epsf_band_count": len(bands) - len(fallback),
        "psf_fallback_band_count": len(fallback),
        "psf_low_star_band_count": len(low),
        "psf_fallback_bands": ",".join(fallback),
        "psf_low_star_bands": ",".join(low),
        "psf_frozen_bands_for_optimizer": "",
        "psf_fallback_reasons_json": json.dumps(
            {b: c.reason for b, c in zip(bands, choices, strict=True) if c.is_fallback},
            sort_keys=True,
        ),
        "psf_missing_band_count": len(missing),
        "psf_missing_bands": ",".join(missing),
    }


def audit_columns(meta: dict[str, Any]) -> dict[str, Any]:
    """The per-patch audit values that become catalog columns."""
    return {name: meta[name] for name in AUDIT_COLUMNS}
