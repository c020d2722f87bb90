"""Central wavelengths of 7DT band names, for plots ordered by wavelength."""

from __future__ import annotations

import math
import re

#: Effective wavelengths (nm) of the SDSS-like broad bands 7DT carries.
BROAD_BAND_WAVELENGTH_NM = {"u": 355.7, "g": 470.2, "r": 617.6, "i": 749.0, "z": 892.2}

#: Medium bands are named by their central wavelength in nm: m400, m412, ..., m887.
_MEDIUM_BAND = re.compile(r"^m(\d{3,4})(?!\d)")


def band_wavelength_nm(band: str) -> float:
    """Central wavelength (nm) of a 7DT band name; NaN when the name does not encode one.

    ``m400`` → 400, ``m887w`` → 887, ``r`` → 617.6 (broad-band table), ``X1`` → NaN.
    """
    name = band.strip()
    match = _MEDIUM_BAND.match(name)
    if match:
        return float(match.group(1))
    return BROAD_BAND_WAVELENGTH_NM.get(name.lower(), math.nan)
