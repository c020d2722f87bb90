"""GalSim renders of the engine's models, used as independent truth in tests."""

from __future__ import annotations

import galsim
import numpy as np

from phot7dt.scene import profile_mixture, soft_to_q_theta

__all__ = ["draw", "galsim_mixture", "galsim_profile", "offset_for"]


def offset_for(x, y, shape):
    """GalSim ``offset`` placing a profile centre at 0-based pixel (x, y)."""
    ny, nx = shape
    return galsim.PositionD(x - (nx - 1) / 2.0, y - (ny - 1) / 2.0)


def _shear(obj, logre, ee1, ee2):
    q, theta = soft_to_q_theta(ee1, ee2)
    return obj.shear(q=float(q), beta=float(theta) * galsim.degrees)


def galsim_mixture(kind, logre, ee1, ee2, n=None, flux=1.0):
    """The engine's Gaussian mixture built from GalSim Gaussians (+ DeltaFunction core)."""
    q, _ = soft_to_q_theta(ee1, ee2)
    re = np.exp(logre)
    mix = profile_mixture(kind, n)
    parts = []
    for a, v in zip(mix.amp, mix.var, strict=True):
        if a == 0:
            continue
        if v == 0:
            parts.append(galsim.DeltaFunction(flux=a * flux))
        else:
            parts.append(galsim.Gaussian(sigma=float(np.sqrt(v) * re * np.sqrt(q)), flux=a * flux))
    return _shear(galsim.Sum(parts), logre, ee1, ee2)


def galsim_profile(kind, logre, ee1, ee2, n=None, flux=1.0):
    """GalSim's exact Sersic-family profile with half-light radius r_e along the major axis."""
    q, _ = soft_to_q_theta(ee1, ee2)
    hlr = float(np.exp(logre) * np.sqrt(q))  # circularised hlr; shear keeps area
    n = {"EXP": 1.0, "DEV": 4.0}.get(kind, n)
    return _shear(galsim.Sersic(n=float(n), half_light_radius=hlr, flux=flux), logre, ee1, ee2)


def draw(obj, shape, x, y, method="auto"):
    """Draw ``obj`` centred at 0-based (x, y) on a (ny, nx) image of scale 1."""
    ny, nx = shape
    im = galsim.ImageD(nx, ny, scale=1.0)
    obj.drawImage(image=im, offset=offset_for(x, y, shape), method=method)
    return im.array.copy()
