"""phot7dt.scene: the fitting engine (the Tractor's source model, written independently).

A plain library (no Kedro): point sources and exp/deV/Sersic galaxies as
mixtures of Gaussians, rendered in Fourier space through pixelized, Moffat or
Gaussian-mixture PSFs, fitted with exactly solved fluxes and Levenberg-Marquardt
on positions/shapes.  See ``README.md`` in this folder for the model, its
conventions and how it differs from the Tractor.
"""

from ._engine import noise_sigma
from .api import fit_patch, render_model
from .ellipse import catalog_to_soft, soft_to_columns, soft_to_q_theta
from .fit import StageInfo
from .flags import FLAGS, FlagDefinition, decode_flags, flag_bit
from .mixtures import Mixture, profile_mixture, sersic_mixture
from .psf import GaussianMixturePSF, MoffatPSF, NCircularGaussianPSF, PixelizedPSF
from .result import FitResult
from .settings import FitSettings
from .sources import KINDS, SourceTable

__all__ = [
    "noise_sigma",
    "FLAGS",
    "KINDS",
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
    "soft_to_columns",
    "soft_to_q_theta",
]
