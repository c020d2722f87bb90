"""The truth of the coadd defects: residual sky and NaN borders per band, and every artefact.

Each kind of defect draws from its own generator, ``default_rng([seed, DEFECT_STREAM,
kind, band_index])`` (field-wide draws without the band index), so switching one kind on
or changing its number leaves the other defects, the sources and the noise unchanged.
Images are rendered from these tables (:mod:`phot7dt.pipelines.simulate.artefacts`), so
the tables are the exact truth of the pixels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from phot7dt.config.simulate import FieldLayout, SimulateParams

#: First element of the defect generators' seed sequence after the seed.
DEFECT_STREAM = 20
_KINDS = {
    "sky_offset": 1,
    "sky_gradient": 2,
    "nan_border": 3,
    "depth_map": 4,
    "hot_pixel": 5,
    "hot_column": 6,
    "cosmic_ray": 7,
    "satellite_trail": 8,
}
#: Per-band defect columns of ``truth_bands.csv``: residual sky ``sky_offset`` (ADU at the
#: image centre ``(psf_xc, psf_yc)``), ``sky_grad_x``/``sky_grad_y`` (ADU/px), NaN border
#: widths (px) on the left (x = 0), right, bottom (y = 0) and top edges.
SKY_COLUMNS = ("sky_offset", "sky_grad_x", "sky_grad_y")
BORDER_COLUMNS = ("nan_left", "nan_right", "nan_bottom", "nan_top")
#: Columns of ``truth_defects.csv``, one row per artefact (see :func:`draw_artefacts`).
ARTEFACT_COLUMNS = ("band", "kind", "x0", "y0", "x1", "y1", "width_pix", "amplitude_adu")
#: Image shape ``(ny, nx)``, pixels.
Shape = tuple[int, int]
#: Cosmic-ray track lengths (px).
CR_LENGTH_PIX = (1.0, 8.0)


def defect_rng(seed: int, kind: str, band_index: int | None = None) -> np.random.Generator:
    """The generator of one defect kind (and band): independent of every other stream."""
    key = [seed, DEFECT_STREAM, _KINDS[kind]]
    return np.random.default_rng(key if band_index is None else [*key, band_index])


def draw_band_defects(
    params: SimulateParams, layout: FieldLayout, bands: pd.DataFrame
) -> pd.DataFrame:
    """Residual sky and NaN-border widths per band (:data:`SKY_COLUMNS`, :data:`BORDER_COLUMNS`).

    The sky is ``sky_offset + sky_grad_x (x - psf_xc) + sky_grad_y (y - psf_yc)`` ADU: an
    offset of ±(0.5–1) ``sky_offset_sigma`` SKYSIG and a plane whose peak-to-peak change over
    the image is ``sky_gradient_sigma`` SKYSIG, in a random direction.
    """
    d, n = params.defects, len(bands)
    skysig = bands["skysig"].to_numpy(dtype=float)
    rng = defect_rng(params.seed, "sky_offset")
    offset = d.sky_offset_sigma * skysig * rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1.0, n)
    angle = defect_rng(params.seed, "sky_gradient").uniform(0.0, 2.0 * np.pi, n)
    span = np.abs(np.cos(angle)) * (layout.width - 1) + np.abs(np.sin(angle)) * (layout.height - 1)
    slope = d.sky_gradient_sigma * skysig / span
    widths = defect_rng(params.seed, "nan_border").integers(0, d.nan_border_pix + 1, (n, 4))
    table = pd.DataFrame(
        {
            "sky_offset": offset + 0.0,
            "sky_grad_x": slope * np.cos(angle) + 0.0,  # + 0.0: no "-0.0" in the CSV
            "sky_grad_y": slope * np.sin(angle) + 0.0,
        },
        index=bands.index,
    )
    table[list(BORDER_COLUMNS)] = widths
    return table


def _log_uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), n))


def _rows(band: str, kind: str, n: int, **columns: np.ndarray | float) -> pd.DataFrame:
    return pd.DataFrame({"band": [band] * n, "kind": [kind] * n, **columns})[
        list(ARTEFACT_COLUMNS)
    ]


def _hot_pixels(
    band: str, params: SimulateParams, shape: Shape, skysig: float, rng: np.random.Generator
) -> pd.DataFrame:
    n, (ny, nx) = params.defects.hot_pixels, shape
    x, y = rng.integers(0, nx, n), rng.integers(0, ny, n)
    amp = _log_uniform(rng, *params.defects.hot_pixel_sigma, n) * skysig
    return _rows(band, "hot_pixel", n, x0=x, y0=y, x1=x, y1=y, width_pix=1.0, amplitude_adu=amp)


def _hot_columns(
    band: str, params: SimulateParams, shape: Shape, skysig: float, rng: np.random.Generator
) -> pd.DataFrame:
    """Half whole columns, half segments of 10–60 % of the height; y0..y1 inclusive."""
    n, (ny, nx) = params.defects.hot_columns, shape
    x = rng.integers(0, nx, n)
    whole = rng.uniform(size=n) < 0.5
    length = np.where(whole, ny, rng.integers(max(ny // 10, 1), max(6 * ny // 10, 2), n))
    y0 = np.where(whole, 0, rng.integers(0, ny - length + 1))
    amp = params.defects.hot_column_sigma * skysig
    return _rows(
        band,
        "hot_column",
        n,
        x0=x,
        y0=y0,
        x1=x,
        y1=y0 + length - 1,
        width_pix=1.0,
        amplitude_adu=amp,
    )


def _cosmic_rays(
    band: str, params: SimulateParams, shape: Shape, skysig: float, rng: np.random.Generator
) -> pd.DataFrame:
    """Straight tracks 1–8 px long, 1–2 px wide, of constant amplitude per track."""
    n, (ny, nx) = params.defects.cosmic_rays, shape
    x0, y0 = rng.uniform(0, nx - 1, n), rng.uniform(0, ny - 1, n)
    length, angle = rng.uniform(*CR_LENGTH_PIX, n), rng.uniform(0.0, np.pi, n)
    width = rng.integers(1, 3, n).astype(float)
    amp = _log_uniform(rng, *params.defects.cosmic_ray_sigma, n) * skysig
    x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
    return _rows(
        band, "cosmic_ray", n, x0=x0, y0=y0, x1=x1, y1=y1, width_pix=width, amplitude_adu=amp
    )


def _trail(
    band: pd.Series, params: SimulateParams, shape: Shape, rng: np.random.Generator
) -> pd.DataFrame:
    """A straight trail through a random point, ends on the pixel-centre box of the image."""
    ny, nx = shape
    point = rng.uniform([0.0, 0.0], [nx - 1.0, ny - 1.0])
    angle = rng.uniform(0.0, np.pi)
    step = np.array([np.cos(angle), np.sin(angle)])
    with np.errstate(divide="ignore", invalid="ignore"):
        limits = [
            (np.array([0.0, nx - 1.0]) - point[0]) / step[0],
            (np.array([0.0, ny - 1.0]) - point[1]) / step[1],
        ]
    t0 = max(np.min(lim) for lim in limits if np.all(np.isfinite(lim)))
    t1 = min(np.max(lim) for lim in limits if np.all(np.isfinite(lim)))
    (x0, y0), (x1, y1) = point + t0 * step, point + t1 * step
    amp = params.defects.trail_sigma * float(band["skysig"])
    return _rows(
        str(band["band"]),
        "satellite_trail",
        1,
        x0=x0,
        y0=y0,
        x1=x1,
        y1=y1,
        width_pix=float(band["fwhm_pix"]),
        amplitude_adu=amp,
    )


def draw_artefacts(
    params: SimulateParams, layout: FieldLayout, bands: pd.DataFrame
) -> pd.DataFrame:
    """``truth_defects.csv``: one row per artefact (columns :data:`ARTEFACT_COLUMNS`).

    ``kind`` is ``hot_pixel`` (pixel ``(x0, y0)``), ``hot_column`` (column ``x0``, rows
    ``y0``..``y1`` inclusive), ``cosmic_ray`` (a track from ``(x0, y0)`` to ``(x1, y1)``,
    ``width_pix`` 1 or 2 px, ``amplitude_adu`` added to every touched pixel) or
    ``satellite_trail`` (a line through ``(x0, y0)`` and ``(x1, y1)`` on the image edges,
    Gaussian profile of FWHM ``width_pix`` px and peak ``amplitude_adu``). Positions are
    0-based pixels; amplitudes ADU on the raw image.
    """
    shape, seed = (layout.height, layout.width), params.seed
    n_trails = min(params.defects.satellite_trails, len(bands))
    trail_bands = set(defect_rng(seed, "satellite_trail").choice(len(bands), n_trails, False))
    parts = [pd.DataFrame(columns=list(ARTEFACT_COLUMNS))]
    for i, (_, band) in enumerate(bands.iterrows()):
        name, skysig = str(band["band"]), float(band["skysig"])
        for kind, draw in (
            ("hot_pixel", _hot_pixels),
            ("hot_column", _hot_columns),
            ("cosmic_ray", _cosmic_rays),
        ):
            parts.append(draw(name, params, shape, skysig, defect_rng(seed, kind, i)))
        if i in trail_bands:
            parts.append(_trail(band, params, shape, defect_rng(seed, "satellite_trail", i)))
    table = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    return table.astype({c: float for c in ARTEFACT_COLUMNS[2:]})
