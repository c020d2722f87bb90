"""A synthetic 7DT tile of any size, rendered fast enough for full-tile benchmarks.

The simulate pipeline draws every source in every band with GalSim, which takes
hours for a real tile (50 000 sources x 40 bands). Here bands are grouped into PSF
*families* (``FAMILY_SIZE`` neighbouring bands share one Moffat FWHM and beta, which
their headers state): every source is rendered once per family as a small unit-flux
stamp and added to each band of the family with that band's flux. Stars are
pixel-integrated Moffat profiles with their sub-pixel offsets and their own
position-dependent FWHM; galaxies are Sersic profiles (drawn once, 3x3 sub-sampled)
convolved by FFT with the family's Moffat of their field zone. Calibration, IDs,
catalog, GaiaXP table and truth come from the simulate pipeline's own functions.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from analytic_stamps import chunks, moffat_stamps, sersic_stamps
from astropy.io import fits
from scipy.spatial import cKDTree
from tqdm.auto import tqdm

from phot7dt.config.simulate import MEDIUM_BAND_WAVELENGTHS_NM, SimulateParams
from phot7dt.pipelines.simulate.catalogs import gaiaxp_table, input_catalog, truth_table
from phot7dt.pipelines.simulate.field import finish_sources
from phot7dt.pipelines.simulate.render import add_bad_pixels, add_noise, bleed_and_clip
from phot7dt.pipelines.simulate.sky import (
    adu_per_scaled_flux,
    band_header,
    draw_band_table,
    make_wcs,
    moffat_fwhm_at,
)
from phot7dt.pipelines.simulate.sources import (
    galaxy_shapes,
    number_count_mags,
    population_frame,
    random_galaxy_types,
)

logger = logging.getLogger("benchmarks.synthetic_tile")

#: Neighbouring bands sharing one PSF (FWHM changes ~0.5 % per band: a family spans ~2 %).
FAMILY_SIZE = 5
#: Field zones per axis over which a galaxy's PSF is taken as constant.
ZONES = (4, 3)
#: Stamp half sizes (px); each source gets the smallest one holding its light.
HALF_BUCKETS = (8, 12, 16, 24, 32, 48, 64, 96, 128, 160)
WING_FRACTION_OF_SKYSIG = 0.02


@dataclasses.dataclass(frozen=True)
class TileSpec:
    """Size, bands and source number of a synthetic tile."""

    width: int = 9576
    height: int = 6388
    bands: tuple[str, ...] = tuple(MEDIUM_BAND_WAVELENGTHS_NM)
    nsources: int = 50_000
    seed: int = 7


@dataclasses.dataclass(frozen=True)
class _Stamp:
    """A unit-flux stamp and where it goes: its centre pixel and half size."""

    ix: int
    iy: int
    half: int


def _simulate_params(spec: TileSpec) -> SimulateParams:
    return SimulateParams.model_validate(
        {
            "preset": "large",
            "seed": spec.seed,
            "width": spec.width,
            "height": spec.height,
            "bands": list(spec.bands),
        }
    )


def family_band_table(spec: TileSpec, params: SimulateParams) -> pd.DataFrame:
    """Per-band calibration with the PSF columns shared within each family of bands."""
    bands = draw_band_table(params, params.layout(), np.random.default_rng([spec.seed, 1]))
    bands["family"] = np.arange(len(bands)) // FAMILY_SIZE
    psf_cols = ["fwhm_pix", "moffat_beta", "psf_grad_x", "psf_grad_y", "psf_radial"]
    bands[psf_cols] = bands.groupby("family")[psf_cols].transform("mean")
    return bands.round({"fwhm_pix": 4})


def _place(xy: np.ndarray, placed: np.ndarray, radius: float) -> np.ndarray:
    """Candidates at least ``radius`` from every placed source and from each other."""
    keep = np.ones(len(xy), dtype=bool)
    if len(placed):
        dist, _ = cKDTree(placed).query(xy)
        keep &= dist >= radius
    for i, j in cKDTree(xy).query_pairs(radius):
        if keep[i] and keep[j]:
            keep[j] = False
    return xy[keep]


def draw_population(spec: TileSpec, rng: np.random.Generator) -> pd.DataFrame:
    """Positions, types, shapes and 550 nm magnitudes (the simulate pipeline's roles)."""
    n, lo, hi = spec.nsources, np.array([30.0, 30.0]), np.array([spec.width - 31, spec.height - 31])
    counts = {
        "saturated_star": max(1, n // 1250),
        "unlisted": max(2, n // 1600),
        "psf_star": max(9, n // 30),
        "field_star": n // 7,
        "blend": n // 50,
    }
    placed = np.empty((0, 2))
    groups = []

    def positions(count: int, radius: float) -> np.ndarray:
        nonlocal placed
        xy = _place(rng.uniform(lo, hi, (int(count * 1.3) + 5, 2)), placed, radius)[:count]
        placed = np.vstack([placed, xy])
        return xy

    def stars(role: str, xy: np.ndarray, mag: tuple[float, float]) -> dict:
        m = len(xy)
        return {
            "role": np.full(m, role),
            "TYPE": np.full(m, "STAR"),
            "x_pix": xy[:, 0],
            "y_pix": xy[:, 1],
            "m550": rng.uniform(*mag, m),
            "temp_k": rng.uniform(3500.0, 9000.0, m),
        }

    def galaxies(role: str, xy: np.ndarray, m550: np.ndarray) -> dict:
        types = random_galaxy_types(rng, len(xy))
        return {
            "role": np.full(len(xy), role),
            "TYPE": types,
            "x_pix": xy[:, 0],
            "y_pix": xy[:, 1],
            "m550": m550,
            "sed_slope": rng.uniform(-1.0, 2.0, len(xy)),
            **galaxy_shapes(rng, types, m550),
        }

    groups.append(stars("saturated_star", positions(counts["saturated_star"], 45.0), (9.0, 10.5)))
    unlisted = positions(counts["unlisted"], 25.0)
    groups.append(stars("unlisted", unlisted, (15.0, 16.5)))
    groups.append(stars("psf_star", positions(counts["psf_star"], 15.0), (16.5, 18.5)))
    primary = positions(counts["blend"], 12.0)
    angle, sep = rng.uniform(0, 2 * np.pi, len(primary)), rng.uniform(2.0, 6.0, len(primary))
    secondary = primary + np.column_stack([sep * np.cos(angle), sep * np.sin(angle)])
    pair_mags = rng.uniform(18.5, 21.5, 2 * len(primary))
    pair = galaxies("blend", np.vstack([primary, secondary]), pair_mags)
    pair["pair_index"] = np.tile(np.arange(len(primary)), 2)
    groups.append(pair)
    groups.append(stars("field_star", positions(counts["field_star"], 4.0), (19.0, 22.5)))
    n_gal = n - sum(len(g["x_pix"]) for g in groups)
    gal_xy = positions(n_gal, 4.0)
    groups.append(galaxies("galaxy", gal_xy, number_count_mags(rng, len(gal_xy), 17.5, 22.5)))
    return population_frame(groups)


def _half_sizes(sources: pd.DataFrame, bands: pd.DataFrame, zp_ref: float) -> np.ndarray:
    """Stamp half size per source: PSF wings down to a fraction of the sky noise, or the galaxy."""
    adu = np.stack(
        [
            sources[f"FLUX_{b}"].to_numpy() * adu_per_scaled_flux(r, zp_ref)
            for b, (_, r) in zip(bands["band"], bands.iterrows(), strict=True)
        ]
    )
    fwhm, beta = bands["fwhm_pix"].max() * 1.05, bands["moffat_beta"].min()
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    central = adu.max(axis=0) * (beta - 1.0) / (np.pi * alpha**2)
    ratio = central / (WING_FRACTION_OF_SKYSIG * bands["skysig"].min())
    wing = alpha * np.sqrt(np.clip(ratio ** (1.0 / beta) - 1.0, 0.0, None))
    extent = np.nan_to_num(np.where(sources["sersic_n"] >= 2, 8.0, 5.0) * sources["re_pix"])
    need = np.maximum(wing, extent + 2.0 * fwhm)
    bucket = np.searchsorted(np.array(HALF_BUCKETS), need)
    return np.array(HALF_BUCKETS)[np.clip(bucket, 0, len(HALF_BUCKETS) - 1)]


class FamilyRenderer:
    """Unit-flux stamps of every source per PSF family, added to band images with band fluxes."""

    def __init__(self, sources: pd.DataFrame, bands: pd.DataFrame, spec: TileSpec, zp_ref: float):
        self.sources, self.bands, self.spec = sources, bands, spec
        x, y = sources["x_pix"].to_numpy(), sources["y_pix"].to_numpy()
        self.ix, self.iy = np.rint(x).astype(int), np.rint(y).astype(int)
        self.dx, self.dy = x - self.ix, y - self.iy
        self.half = _half_sizes(sources, bands, zp_ref)
        self.is_star = (sources["TYPE"] == "STAR").to_numpy()
        zx = np.clip((x / spec.width * ZONES[0]).astype(int), 0, ZONES[0] - 1)
        zy = np.clip((y / spec.height * ZONES[1]).astype(int), 0, ZONES[1] - 1)
        self.zone = zy * ZONES[0] + zx
        self.galaxy_stamps = self._galaxy_intrinsic()

    def _groups(self, stars: bool) -> dict[int, np.ndarray]:
        pick = self.is_star if stars else ~self.is_star
        return {int(h): np.flatnonzero(pick & (self.half == h)) for h in np.unique(self.half[pick])}

    def _galaxy_intrinsic(self) -> dict[int, np.ndarray]:
        out = {}
        for half, idx in tqdm(self._groups(False).items(), desc="galaxy profiles", leave=False):
            gal = self.sources.iloc[idx]
            out[half] = np.concatenate(
                [
                    sersic_stamps(half, self.dx[idx[c]], self.dy[idx[c]], gal.iloc[c])
                    for c in chunks(len(idx), half)
                ]
            )
        return out

    def family_stamps(self, band: pd.Series) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """``{half: (source indices, unit-flux stamps)}`` under the PSF of ``band``'s family."""
        beta, out = float(band["moffat_beta"]), {}
        x, y = self.sources["x_pix"].to_numpy(), self.sources["y_pix"].to_numpy()
        for half, idx in self._groups(True).items():
            fwhm = moffat_fwhm_at(band, x[idx], y[idx])
            out[half] = (
                idx,
                np.concatenate(
                    [
                        moffat_stamps(half, self.dx[idx[c]], self.dy[idx[c]], fwhm[c], beta)
                        for c in chunks(len(idx), half)
                    ]
                ),
            )
        for half, idx in self._groups(False).items():
            stamps, size = self.galaxy_stamps[half].copy(), 2 * half + 1
            for zone in np.unique(self.zone[idx]):
                sel = self.zone[idx] == zone
                zx, zy = zone % ZONES[0], zone // ZONES[0]
                cx = (zx + 0.5) * self.spec.width / ZONES[0]
                cy = (zy + 0.5) * self.spec.height / ZONES[1]
                kernel = moffat_stamps(half, [0.0], [0.0], [moffat_fwhm_at(band, cx, cy)], beta)[0]
                transfer = np.fft.rfft2(np.fft.ifftshift(kernel))
                stamps[sel] = np.fft.irfft2(np.fft.rfft2(stamps[sel]) * transfer, s=(size, size))
            prev = out.get(half)
            out[half] = (
                (idx, stamps)
                if prev is None
                else (np.concatenate([prev[0], idx]), np.concatenate([prev[1], stamps]))
            )
        return out

    def band_model(self, stamps: dict, adu: np.ndarray, saturate: float):
        """Noiseless band image (float32 ADU), 1-based bounds of saturating stamps, and which
        sources saturate (bool per source)."""
        image = np.zeros((self.spec.height, self.spec.width), dtype=np.float32)
        ny, nx, saturating = image.shape[0], image.shape[1], []
        is_saturated = np.zeros(len(self.sources), dtype=bool)
        for half, (idx, unit) in stamps.items():
            peaks = unit.reshape(len(idx), -1).max(axis=1) * adu[idx]
            for k, i in enumerate(idx):
                x0, y0 = self.ix[i] - half, self.iy[i] - half
                xa, ya = max(x0, 0), max(y0, 0)
                xb, yb = min(x0 + 2 * half + 1, nx), min(y0 + 2 * half + 1, ny)
                cut = unit[k, ya - y0 : yb - y0, xa - x0 : xb - x0]
                image[ya:yb, xa:xb] += np.float32(adu[i]) * cut
                if peaks[k] >= saturate:
                    is_saturated[i] = True
                    saturating.append(_Bounds(x0 + 1, x0 + 2 * half + 1, y0 + 1, y0 + 2 * half + 1))
        return image, saturating, is_saturated


@dataclasses.dataclass(frozen=True)
class _Bounds:
    """1-based inclusive pixel bounds (the attributes simulate's bleed_and_clip reads)."""

    xmin: int
    xmax: int
    ymin: int
    ymax: int


def write_tile(spec: TileSpec, out_dir: Path) -> dict[str, Path]:
    """Render and write the tile: FITS per band, image_list.txt, catalog, GaiaXP, truth."""
    out_dir.mkdir(parents=True, exist_ok=True)
    params = _simulate_params(spec)
    layout = params.layout()
    bands = family_band_table(spec, params)
    wcs = make_wcs(params, layout)
    rng = np.random.default_rng([spec.seed, 2])
    sources = finish_sources(draw_population(spec, rng), bands, wcs, params, rng)
    logger.info(
        "synthetic tile %dx%d, %d bands, %d sources (%d Gaia)",
        spec.width,
        spec.height,
        len(bands),
        len(sources),
        int((sources["gaia_source_id"] != "").sum()),
    )
    renderer = FamilyRenderer(sources, bands, spec, params.zp_ref)
    saturated, paths, stamps = {}, [], None
    for index, (_, band) in enumerate(tqdm(list(bands.iterrows()), desc="bands")):
        if index % FAMILY_SIZE == 0:
            stamps = renderer.family_stamps(band)
        adu = sources[f"FLUX_{band['band']}"].to_numpy() * adu_per_scaled_flux(band, params.zp_ref)
        image, regions, saturated[band["band"]] = renderer.band_model(
            stamps, adu, float(band["saturate"])
        )
        band_rng = np.random.default_rng([spec.seed, 3, index])
        image = add_noise(image, band, band_rng)
        bleed_and_clip(image, float(band["saturate"]), regions)
        add_bad_pixels(image, params.nan_pixels, params.nan_columns, band_rng)
        path = out_dir / f"tile_{band['band']}.fits"
        fits.PrimaryHDU(image, band_header(band, wcs, params.pixel_scale_arcsec)).writeto(
            path, overwrite=True
        )
        paths.append(path.name)
        del image
    (out_dir / "image_list.txt").write_text("\n".join(paths) + "\n")
    files = {
        "image_list": out_dir / "image_list.txt",
        "input_catalog": out_dir / "catalog.csv",
        "gaiaxp_synphot": out_dir / "gaiaxp_synphot.csv",
    }
    input_catalog(sources, wcs, params, np.random.default_rng([spec.seed, 4])).to_csv(
        files["input_catalog"], index=False
    )
    gaiaxp_table(sources, params, np.random.default_rng([spec.seed, 5])).to_csv(
        files["gaiaxp_synphot"], index=False
    )
    truth_table(sources, saturated).to_csv(out_dir / "truth.csv", index=False)
    bands.to_csv(out_dir / "truth_bands.csv", index=False)
    return files
