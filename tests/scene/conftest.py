"""Shared fixtures for the engine tests (GalSim truth renders are cached per session)."""

from __future__ import annotations

import sys
from pathlib import Path

import galsim
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from phot7dt import scene  # noqa: E402


@pytest.fixture(scope="session")
def galsim_psf():
    """A 7DT-like seeing PSF (Moffat beta 3.5, FWHM 4 px) as a GalSim object."""
    return galsim.Moffat(beta=3.5, fwhm=4.0)


@pytest.fixture(scope="session")
def epsf(galsim_psf):
    """Pixel-convolved 55x55 ePSF stamp of ``galsim_psf`` as a PixelizedPSF."""
    stamp = galsim_psf.drawImage(nx=55, ny=55, scale=1.0, method="auto").array
    return scene.PixelizedPSF(stamp)
