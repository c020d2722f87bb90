"""The simulated field's sources: who is where, how bright in each band, under which ID."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from phot7dt.config.simulate import FieldLayout, SimulateParams
from phot7dt.pipelines.simulate.sources import (
    Placer,
    blackbody_ab_offset,
    gaia_g_mag,
    galaxy_shapes,
    number_count_mags,
    population_frame,
    power_law_ab_offset,
    random_galaxy_types,
)

if TYPE_CHECKING:
    from astropy.wcs import WCS

#: Gaia G range (Vega mag) and number-count slope ``dlog10 N / dG`` of the ``bright_star`` role.
GAIA_STAR_G = (11.0, 21.0)
GAIA_STAR_SLOPE = 0.25

#: Exclusion radii (px): no other source centre comes closer than this.
CLEARANCE_PIX = {
    "saturated_star": 45.0,
    "bright_star": 12.0,
    "unlisted": 25.0,
    "psf_star": 15.0,
    "blend": 12.0,
    "field": 8.0,
}


def _stars(
    role: str,
    xy: np.ndarray,
    rng: np.random.Generator,
    mag: tuple[float, float],
    temp: tuple[float, float],
) -> dict[str, np.ndarray]:
    n = len(xy)
    return {
        "role": np.full(n, role),
        "TYPE": np.full(n, "STAR"),
        "x_pix": xy[:, 0],
        "y_pix": xy[:, 1],
        "m550": rng.uniform(*mag, n),
        "temp_k": rng.uniform(*temp, n),
    }


def _galaxies(
    role: str, xy: np.ndarray, rng: np.random.Generator, m550: np.ndarray, types: np.ndarray
) -> dict[str, np.ndarray]:
    n = len(xy)
    return {
        "role": np.full(n, role),
        "TYPE": types,
        "x_pix": xy[:, 0],
        "y_pix": xy[:, 1],
        "m550": m550,
        "sed_slope": rng.uniform(-1.0, 2.0, n),
        **galaxy_shapes(rng, types, m550),
    }


def _blend_pairs(
    placer: Placer, n_pairs: int, rng: np.random.Generator
) -> list[dict[str, np.ndarray]]:
    """Close pairs 2–6 px apart, 30 % of members stars; ``pair_index`` links the two members."""
    primary = placer.draw(n_pairs, CLEARANCE_PIX["blend"])
    sep = rng.uniform(2.0, 6.0, n_pairs)
    angle = rng.uniform(0.0, 2 * np.pi, n_pairs)
    secondary = primary + np.column_stack([sep * np.cos(angle), sep * np.sin(angle)])
    m_primary = rng.uniform(18.5, 21.0, n_pairs)
    xy = np.vstack([primary, secondary])
    m550 = np.concatenate([m_primary, m_primary + rng.uniform(0.0, 1.5, n_pairs)])
    pair_index = np.tile(np.arange(n_pairs), 2)
    is_star = rng.uniform(size=2 * n_pairs) < 0.3
    stars = _stars("blend", xy[is_star], rng, (0.0, 0.0), (4000.0, 8000.0))
    stars["m550"], stars["pair_index"] = m550[is_star], pair_index[is_star]
    n_gal = int((~is_star).sum())
    gals = _galaxies("blend", xy[~is_star], rng, m550[~is_star], random_galaxy_types(rng, n_gal))
    gals["pair_index"] = pair_index[~is_star]
    return [stars, gals]


def _unlisted(placer: Placer, n: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """Bright sources missing from the catalog: two stars for every galaxy."""
    xy = placer.draw(n, CLEARANCE_PIX["unlisted"])
    is_gal = np.arange(n) % 3 == 1
    stars = _stars("unlisted", xy[~is_gal], rng, (15.0, 16.5), (4500.0, 7500.0))
    gals = _galaxies(
        "unlisted",
        xy[is_gal],
        rng,
        rng.uniform(16.5, 17.5, int(is_gal.sum())),
        rng.choice(np.array(["EXP", "DEV"]), int(is_gal.sum())),
    )
    gals["re_pix"] = rng.uniform(5.0, 7.5, int(is_gal.sum()))
    return [stars, gals]


def _gaia_stars(placer: Placer, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Stars with Gaia-like counts: G drawn with ``dN/dG ~ 10**(0.25 G)`` on 11–21 (Vega)."""
    xy = placer.draw(n, CLEARANCE_PIX["bright_star"], rng=rng)
    temp = rng.uniform(3500.0, 9000.0, n)
    g_mag = number_count_mags(rng, n, *GAIA_STAR_G, slope=GAIA_STAR_SLOPE)
    return {
        "role": np.full(n, "bright_star"),
        "TYPE": np.full(n, "STAR"),
        "x_pix": xy[:, 0],
        "y_pix": xy[:, 1],
        # Invert gaia_g_mag: its colour term G - m550 depends on the temperature only.
        "m550": g_mag - gaia_g_mag(np.zeros(n), temp),
        "temp_k": temp,
    }


def draw_population(
    layout: FieldLayout,
    edge: float,
    rng: np.random.Generator,
    gaia_rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """Positions, types, shapes and 550 nm magnitudes of every source (no IDs yet).

    The ``bright_star`` population (``layout.n_gaia_stars``) is placed last and drawn from
    ``gaia_rng`` only, so the other sources do not move when it changes; its rows come last.
    """
    placer = Placer(layout.width, layout.height, edge, rng)
    saturated = placer.draw(layout.n_saturated, CLEARANCE_PIX["saturated_star"])
    groups = [_stars("saturated_star", saturated, rng, (9.0, 10.5), (5000.0, 7000.0))]
    groups += _unlisted(placer, layout.n_unlisted, rng)
    psf_xy = placer.grid(layout.psf_star_grid, CLEARANCE_PIX["psf_star"])
    groups.append(_stars("psf_star", psf_xy, rng, (16.5, 18.5), (4500.0, 8000.0)))
    groups += _blend_pairs(placer, layout.n_blends, rng)
    field_xy = placer.draw(layout.n_field_stars, CLEARANCE_PIX["field"])
    groups.append(_stars("field_star", field_xy, rng, (19.0, 22.5), (3500.0, 9000.0)))
    gal_xy = placer.draw(layout.n_galaxies, CLEARANCE_PIX["field"])
    gal_mag = number_count_mags(rng, layout.n_galaxies, 17.5, 22.0)
    groups.append(
        _galaxies("galaxy", gal_xy, rng, gal_mag, random_galaxy_types(rng, layout.n_galaxies))
    )
    if layout.n_gaia_stars:
        groups.append(_gaia_stars(placer, layout.n_gaia_stars, gaia_rng or rng))
    frame = population_frame(groups)
    frame["pair_index"] = frame["pair_index"] if "pair_index" in frame else np.nan
    return frame


def _assign_ids(
    frame: pd.DataFrame, params: SimulateParams, rng: np.random.Generator, taken: pd.Series
) -> pd.Series:
    """Catalog IDs: unique integers as text, some zero-padded; ``nocat_<n>`` when unlisted.

    Numbers already used by the ``taken`` IDs are not drawn again.
    """
    listed = (frame["role"] != "unlisted").to_numpy()
    pool = np.arange(1, 10 * (len(frame) + len(taken)) + 100)
    if len(taken):
        pool = np.setdiff1d(pool, [int(t) for t in taken if str(t).isdigit()])
    numbers = rng.choice(pool, size=int(listed.sum()), replace=False)
    padded = rng.uniform(size=len(numbers)) < params.catalog_zero_padded_fraction
    text = [f"{k:06d}" if pad else str(k) for k, pad in zip(numbers, padded, strict=True)]
    ids = np.empty(len(frame), dtype=object)
    ids[listed] = text
    ids[~listed] = [f"nocat_{k + 1}" for k in range((~listed).sum())]
    return pd.Series(ids, index=frame.index, dtype=str)


def _blend_partners(frame: pd.DataFrame) -> pd.Series:
    partners = pd.Series("", index=frame.index, dtype=str)
    blends = frame[frame["role"] == "blend"]
    for _, pair in blends.groupby("pair_index"):
        if len(pair) == 2:
            partners[pair.index[0]], partners[pair.index[1]] = (
                pair["ID"].iloc[1],
                pair["ID"].iloc[0],
            )
    return partners


def _band_photometry(frame: pd.DataFrame, bands: pd.DataFrame, zp_ref: float) -> pd.DataFrame:
    """True AB magnitudes and expected fitted fluxes on the common scale, per band."""
    wave = bands["wavelength_nm"].to_numpy()
    is_star = (frame["TYPE"] == "STAR").to_numpy()
    offsets = np.where(
        is_star[:, None],
        blackbody_ab_offset(wave, frame["temp_k"].fillna(6000.0)),
        power_law_ab_offset(wave, frame["sed_slope"].fillna(0.0)),
    )
    mags = frame["m550"].to_numpy()[:, None] + offsets
    # Raw ADU flux 10**(-0.4 (mag - zp_true)) times the scale 10**(-0.4 (ZP_AUTO - zp_ref)).
    shift = (bands["zp_auto"] - bands["zp_true"] - zp_ref).to_numpy()[None, :]
    fluxes = 10.0 ** (-0.4 * (mags + shift))
    names = bands["band"].tolist()
    return pd.concat(
        [
            pd.DataFrame(mags, columns=[f"mag_{b}" for b in names], index=frame.index),
            pd.DataFrame(fluxes, columns=[f"FLUX_{b}" for b in names], index=frame.index),
        ],
        axis=1,
    )


def _gaia_source_ids(rng: np.random.Generator, n: int, taken: pd.Series) -> np.ndarray:
    """``n`` distinct 19-digit integers shaped like Gaia DR3 ``source_id`` values, not ``taken``."""
    ids = np.unique(rng.integers(10**18, 7 * 10**18, size=2 * n + 10, dtype=np.int64))
    if len(taken):
        ids = np.setdiff1d(ids, [int(t) for t in taken if str(t).isdigit()])
    return rng.permutation(ids)[:n]


def finish_sources(
    frame: pd.DataFrame,
    bands: pd.DataFrame,
    wcs: WCS,
    params: SimulateParams,
    rng: np.random.Generator,
    taken: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Add IDs, sky positions, per-band photometry, Gaia G and Gaia source IDs.

    ``taken`` holds already finished sources whose ``ID`` and ``gaia_source_id`` values
    must not be reused (a population finished separately, from its own generator).
    """
    taken_ids = taken["ID"] if taken is not None else pd.Series([], dtype=str)
    taken_gaia = taken["gaia_source_id"] if taken is not None else pd.Series([], dtype=str)
    out = frame.copy()
    out["ID"] = _assign_ids(out, params, rng, taken_ids)
    out["in_catalog"] = out["role"] != "unlisted"
    out["blend_partner"] = _blend_partners(out)
    ra, dec = wcs.all_pix2world(out["x_pix"].to_numpy(), out["y_pix"].to_numpy(), 0)
    out["RA"], out["DEC"] = ra, dec
    is_star = out["TYPE"] == "STAR"
    out["phot_g_mean_mag"] = np.where(
        is_star, gaia_g_mag(out["m550"], out["temp_k"].fillna(6000.0)), np.nan
    )
    in_gaia = (is_star & (out["phot_g_mean_mag"] <= params.gaia_g_max)).to_numpy()
    gaia_ids = np.full(len(out), "", dtype=object)
    gaia_ids[in_gaia] = [str(k) for k in _gaia_source_ids(rng, int(in_gaia.sum()), taken_gaia)]
    out["gaia_source_id"] = pd.Series(gaia_ids, index=out.index, dtype=str)
    return pd.concat([out, _band_photometry(out, bands, params.zp_ref)], axis=1)


def draw_sources(
    layout: FieldLayout,
    bands: pd.DataFrame,
    wcs: WCS,
    params: SimulateParams,
    rngs: tuple[np.random.Generator, np.random.Generator],
    edge: float,
) -> pd.DataFrame:
    """Every source, finished: the field population from ``rngs[0]``, bright stars from ``rngs[1]``.

    The bright stars get their own IDs and Gaia source IDs after the others are finished, so
    the rest of the field (positions, IDs, fluxes) is the same with or without them.
    """
    rng, gaia_rng = rngs
    frame = draw_population(layout, edge, rng, gaia_rng)
    bright = (frame["role"] == "bright_star").to_numpy()
    base = finish_sources(frame[~bright].reset_index(drop=True), bands, wcs, params, rng)
    if not bright.any():
        return base
    extra = frame[bright].reset_index(drop=True)
    extra = finish_sources(extra, bands, wcs, params, gaia_rng, taken=base)
    return pd.concat([base, extra], ignore_index=True)
