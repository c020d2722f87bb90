"""phot7dt.scene: the fitting engine (the Tractor's source model, written independently).

A plain library (no Kedro): point sources and exp/deV/Sersic galaxies as
mixtures of Gaussians, rendered in Fourier space through pixelized, Moffat or
Gaussian-mixture PSFs, fitted with exactly solved fluxes and Levenberg-Marquardt
on positions/shapes.  See ``README.md`` in this folder for the model, its
conventions and how it differs from the Tractor.

Names are loaded on first use (PEP 562): importing the package, its flags,
settings or PSF classes does not load the numba kernels; ``fit_patch``,
``render_model`` and ``noise_sigma`` do.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "noise_sigma": "_noise",
    "fit_patch": "api",
    "render_model": "_model_image",
    "catalog_to_soft": "ellipse",
    "soft_to_columns": "ellipse",
    "soft_to_q_theta": "ellipse",
    "StageInfo": "_records",
    "FLAGS": "flags",
    "FlagDefinition": "flags",
    "decode_flags": "flags",
    "flag_bit": "flags",
    "Mixture": "mixtures",
    "profile_mixture": "mixtures",
    "sersic_mixture": "mixtures",
    "GaussianMixturePSF": "psf",
    "MoffatPSF": "psf",
    "NCircularGaussianPSF": "psf",
    "PixelizedPSF": "psf",
    "FitResult": "result",
    "FitSettings": "settings",
    "KINDS": "sources",
    "PER_SOURCE_COLUMNS": "sources",
    "SourceTable": "sources",
    "shift_factors": "shift",
}

__all__ = [
    "noise_sigma",
    "FLAGS",
    "KINDS",
    "PER_SOURCE_COLUMNS",
    "FitResult",
    "FitSettings",
    "FlagDefinition",
    "GaussianMixturePSF",
    "Mixture",
    "MoffatPSF",
    "NCircularGaussianPSF",
    "PixelizedPSF",
    "SourceTable",
    "StageInfo",
    "catalog_to_soft",
    "decode_flags",
    "fit_patch",
    "flag_bit",
    "profile_mixture",
    "render_model",
    "sersic_mixture",
    "shift_factors",
    "soft_to_columns",
    "soft_to_q_theta",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from ._model_image import render_model
    from ._noise import noise_sigma
    from ._records import StageInfo
    from .api import fit_patch
    from .ellipse import catalog_to_soft, soft_to_columns, soft_to_q_theta
    from .flags import FLAGS, FlagDefinition, decode_flags, flag_bit
    from .mixtures import Mixture, profile_mixture, sersic_mixture
    from .psf import GaussianMixturePSF, MoffatPSF, NCircularGaussianPSF, PixelizedPSF
    from .result import FitResult
    from .settings import FitSettings
    from .sources import KINDS, SourceTable
