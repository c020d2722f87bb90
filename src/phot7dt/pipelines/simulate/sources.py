"""The simulated source population: positions, morphologies and spectral energy distributions."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: hc/k in nm K, for the blackbody SEDs of stars.
_HC_OVER_K_NM_K = 1.4387769e7
#: Gaia G is approximated by the AB magnitude at this wavelength minus the G band's AB-Vega offset.
_GAIA_G_WAVELENGTH_NM = 640.0
_GAIA_G_AB_MINUS_VEGA = 0.104
#: Reference wavelength of the ``m550`` magnitudes that set each source's brightness.
REFERENCE_NM = 550.0


def blackbody_ab_offset(wave_nm: np.ndarray, temp_k: np.ndarray) -> np.ndarray:
    """AB colour ``m(wave) - m(550 nm)`` of blackbodies, shape ``(n_sources, n_waves)``."""
    wave = np.asarray(wave_nm, dtype=float)[None, :]
    temp = np.asarray(temp_k, dtype=float)[:, None]

    def log_b_nu(lam: np.ndarray) -> np.ndarray:
        x = _HC_OVER_K_NM_K / (lam * temp)
        return -3.0 * np.log10(lam) - np.log10(np.expm1(x))

    return -2.5 * (log_b_nu(wave) - log_b_nu(np.full_like(wave, REFERENCE_NM)))


def power_law_ab_offset(wave_nm: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """AB colour ``m(wave) - m(550 nm)`` of ``f_nu ~ wave**slope`` galaxies, ``(n, n_waves)``."""
    ratio = np.log10(np.asarray(wave_nm, dtype=float) / REFERENCE_NM)[None, :]
    return -2.5 * np.asarray(slope, dtype=float)[:, None] * ratio


def gaia_g_mag(m550: np.ndarray, temp_k: np.ndarray) -> np.ndarray:
    """Approximate Gaia G (Vega) of blackbody stars with AB magnitude ``m550`` at 550 nm."""
    offset = blackbody_ab_offset(np.array([_GAIA_G_WAVELENGTH_NM]), temp_k)[:, 0]
    return m550 + offset - _GAIA_G_AB_MINUS_VEGA


class Placer:
    """Rejection sampler of source positions keeping exclusion radii apart.

    A new position is accepted when its distance to every placed source is at
    least the larger of the two sources' exclusion radii.
    """

    def __init__(self, width: int, height: int, edge: float, rng: np.random.Generator) -> None:
        self.low = np.array([edge, edge], dtype=float)
        self.high = np.array([width - 1 - edge, height - 1 - edge], dtype=float)
        self.rng = rng
        self.xy = np.empty((0, 2))
        self.radius = np.empty(0)

    def fits(self, xy: np.ndarray, radius: float) -> bool:
        """Whether a source of exclusion ``radius`` at ``xy`` keeps clear of all placed ones."""
        if np.any(xy < self.low) or np.any(xy > self.high):
            return False
        dist = np.hypot(*(self.xy - xy).T)
        return bool(np.all(dist >= np.maximum(self.radius, radius)))

    def add(self, xy: np.ndarray, radius: float) -> None:
        """Record a placed source."""
        self.xy = np.vstack([self.xy, xy])
        self.radius = np.append(self.radius, radius)

    def draw(
        self,
        n: int,
        radius: float,
        max_tries: int = 20000,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Place ``n`` sources uniformly at random, shape ``(n, 2)`` ``(x, y)`` pixels.

        ``rng`` replaces the placer's own generator for this draw (an independent population).

        Raises
        ------
        ValueError
            When the field is too crowded for ``n`` more sources.
        """
        out = []
        for _ in range(max_tries):
            if len(out) == n:
                break
            xy = (rng or self.rng).uniform(self.low, self.high)
            if self.fits(xy, radius):
                self.add(xy, radius)
                out.append(xy)
        if len(out) < n:
            raise ValueError(
                f"simulate: only {len(out)} of {n} sources fit with {radius} px clearance; "
                "lower the source numbers or enlarge the field"
            )
        return np.array(out).reshape(-1, 2)

    def grid(self, per_side: int, radius: float) -> np.ndarray:
        """Place ``per_side**2`` sources on a grid jittered by up to a quarter cell."""
        cell = (self.high - self.low) / max(per_side, 1)
        out = []
        for j in range(per_side):
            for i in range(per_side):
                for _ in range(200):
                    xy = self.low + cell * (
                        np.array([i, j]) + 0.5 + self.rng.uniform(-0.25, 0.25, 2)
                    )
                    if self.fits(xy, radius):
                        self.add(xy, radius)
                        out.append(xy)
                        break
        return np.array(out).reshape(-1, 2)


def number_count_mags(
    rng: np.random.Generator, n: int, low: float, high: float, slope: float = 0.35
) -> np.ndarray:
    """Magnitudes with ``dN/dm ~ 10**(slope m)`` on ``[low, high]`` (faint sources dominate)."""
    a = slope * np.log(10.0)
    u = rng.uniform(size=n)
    return np.log(np.exp(a * low) + u * (np.exp(a * high) - np.exp(a * low))) / a


def galaxy_shapes(
    rng: np.random.Generator, types: np.ndarray, m550: np.ndarray
) -> dict[str, np.ndarray]:
    """Sersic index, major-axis half-light radius (px), ellipticity and angle (deg) per galaxy."""
    n = len(types)
    sersic = np.where(types == "DEV", 4.0, 1.0)
    is_sersic = types == "SERSIC"
    # Free indices on a 0.1 grid (the profiles are cached per index), never exactly 1 or 4.
    free = np.round(rng.uniform(0.8, 5.0, n), 1)
    free = np.where(np.isin(free, (1.0, 4.0)), free + 0.1, free)
    sersic = np.where(is_sersic, free, sersic)
    re_pix = 4.0 * 10 ** (-0.12 * (m550 - 20.0)) * rng.lognormal(0.0, 0.25, n)
    ell = np.where(types == "DEV", rng.uniform(0.0, 0.4, n), rng.uniform(0.05, 0.65, n))
    return {
        "sersic_n": sersic,
        "re_pix": np.clip(re_pix, 1.5, 8.0),
        "ell": ell,
        "theta_deg": rng.uniform(-90.0, 90.0, n),
    }


def random_galaxy_types(rng: np.random.Generator, n: int) -> np.ndarray:
    """Morphological types of ``n`` galaxies: 45 % EXP, 25 % DEV, 30 % SERSIC."""
    return rng.choice(np.array(["EXP", "DEV", "SERSIC"]), size=n, p=[0.45, 0.25, 0.30])


def population_frame(groups: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """Concatenate source groups into one table with star/galaxy columns filled.

    Each group holds equal-length arrays ``role``, ``TYPE``, ``x_pix``, ``y_pix``,
    ``m550`` and, for stars, ``temp_k``; for galaxies ``sed_slope`` and the shape
    columns of :func:`galaxy_shapes`. Missing columns become NaN.
    """
    filled = [pd.DataFrame(g) for g in groups if len(g["x_pix"])]
    frame = pd.concat(filled or [pd.DataFrame(groups[0])], ignore_index=True)
    for column in ("temp_k", "sed_slope", "sersic_n", "re_pix", "ell", "theta_deg"):
        if column not in frame:
            frame[column] = np.nan
    return frame
