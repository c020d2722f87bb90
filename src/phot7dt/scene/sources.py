"""The source list of a patch: validated, immutable arrays plus initial values.

Input is a mapping of column name -> array (a dict, a numpy structured array
or anything with ``[]`` and ``keys``/``dtype.names``); pandas is not needed.

Columns (n = sources, B = bands); all but ``x``, ``y`` are optional:

=============  ==========  ===================================================
name           shape       meaning
=============  ==========  ===================================================
x, y           (n,)        position in patch pixels (0-based, centres at ints)
type           (n,)        STAR / EXP / DEV / SERSIC (case-insensitive)
flux           (n, B)      initial flux per band (NaN = unknown)
re_pix         (n,)        major-axis half-light radius (px)
ell            (n,)        1 - b/a
theta_deg      (n,)        major-axis angle, deg CCW from +x (SExtractor)
sersic_n       (n,)        Sersic index
pos_err        (n,)        prior sigma on x and y (px)
flux_err       (n, B)      prior sigma on each band's flux
re_err         (n,)        prior sigma on Re (px) -> sigma(log r_e) = re_err/Re
ell_err        (n,)        prior sigma on ELL  } both needed for ee priors
theta_err      (n,)        prior sigma on THETA (deg) }
target         (n,)        bool, default True: the source's results are wanted.
                           Others (a patch's halo sources, reported by their
                           own patch) are fitted too, but the optimiser never
                           iterates a group only because one of them has not
                           converged.
=============  ==========  ===================================================

NaN (or a non-positive sigma) means "no prior".  Missing shape values follow
tract7dt's catalog rules: Re NaN -> 3 px, clipped to [0.3, 100]; ELL NaN ->
0 and q = clip(1 - ELL, 0.1, 1); THETA NaN -> 0; n NaN or <= 0 -> 3, and n is
clipped to the mixture range [0.29, 6.3] (tract7dt does not clip).
"""

from __future__ import annotations

import numpy as np

from .ellipse import catalog_to_soft, soft_prior_sigmas
from .mixtures import SERSIC_N_MAX, SERSIC_N_MIN

__all__ = ["KINDS", "PER_SOURCE_COLUMNS", "SourceTable"]

#: Source model names accepted in the ``type`` column.
KINDS = ("STAR", "EXP", "DEV", "SERSIC")
#: Per-source columns of a source table besides ``type``, ``target`` and the flux columns.
PER_SOURCE_COLUMNS = (
    "x",
    "y",
    "re_pix",
    "ell",
    "theta_deg",
    "sersic_n",
    "pos_err",
    "re_err",
    "ell_err",
    "theta_err",
)


def _column(mapping, name):
    names = mapping.dtype.names if hasattr(mapping, "dtype") else tuple(mapping.keys())
    return mapping[name] if name in names else None


class SourceTable:
    """Validated, read-only source list for one patch.

    Parameters
    ----------
    mapping : mapping or structured ndarray
        Columns described in the module docstring.
    n_band : int
        Number of bands (columns of ``flux`` / ``flux_err``).
    """

    def __init__(self, mapping, n_band):
        x = _column(mapping, "x")
        if x is None or _column(mapping, "y") is None:
            msg = "sources need 'x' and 'y' columns"
            raise ValueError(msg)
        n = np.asarray(x).size
        self.n_band = int(n_band)
        cols = {}
        for name in PER_SOURCE_COLUMNS:
            v = _column(mapping, name)
            arr = np.full(n, np.nan) if v is None else np.asarray(v, float).reshape(n)
            cols[name] = arr
        for name in ("flux", "flux_err"):
            v = _column(mapping, name)
            cols[name] = (
                np.full((n, self.n_band), np.nan)
                if v is None
                else np.asarray(v, float).reshape(n, self.n_band)
            )
        kinds = _column(mapping, "type")
        kinds = (
            np.full(n, "STAR") if kinds is None else np.char.upper(np.asarray(kinds).astype(str))
        )
        bad = sorted(set(kinds.tolist()) - set(KINDS))
        if bad:
            msg = f"unknown source type(s) {bad}; allowed: {list(KINDS)}"
            raise ValueError(msg)
        if not (np.all(np.isfinite(cols["x"])) and np.all(np.isfinite(cols["y"]))):
            msg = "source positions x, y must be finite"
            raise ValueError(msg)
        cols["type"] = kinds
        target = _column(mapping, "target")
        cols["target"] = np.ones(n, bool) if target is None else np.asarray(target, bool).reshape(n)
        for arr in cols.values():
            arr.flags.writeable = False
        self._cols = cols

    def __getattr__(self, name):
        cols = self.__dict__.get("_cols")
        if cols is not None and name in cols:
            return cols[name]
        raise AttributeError(name)

    def __len__(self):
        return self._cols["x"].size

    def __getstate__(self):
        return {"cols": self._cols, "n_band": self.n_band}

    def __setstate__(self, state):
        self.n_band = state["n_band"]
        self._cols = state["cols"]

    def __eq__(self, other):
        return (
            type(other) is type(self)
            and self.n_band == other.n_band
            and all(
                np.array_equal(v, other._cols[k], equal_nan=v.dtype.kind == "f")
                for k, v in self._cols.items()
            )
        )

    def __hash__(self):
        return hash((len(self), self.n_band, self._cols["x"].tobytes(), self._cols["y"].tobytes()))

    def __repr__(self):
        return f"SourceTable(n_src={len(self)}, n_band={self.n_band})"

    def band(self, b):
        """The same sources with only band ``b`` (for single-band fits)."""
        cols = {k: (v[:, b : b + 1] if v.ndim == 2 else v) for k, v in self._cols.items()}
        return SourceTable(cols, 1)

    def with_flux(self, flux):
        """The same sources with other bands: catalog fluxes ``flux`` (n_src, k), no flux errors."""
        cols = {k: v for k, v in self._cols.items() if k not in ("flux", "flux_err")}
        flux = np.asarray(flux, float)
        return SourceTable({**cols, "flux": flux}, flux.shape[1])

    def catalog_shapes(self):
        """Initial (Re px, ELL, THETA deg, n) after tract7dt's NaN rules and clips."""
        re = np.clip(np.where(np.isfinite(self.re_pix), self.re_pix, 3.0), 0.3, 100.0)
        ell = np.where(np.isfinite(self.ell), self.ell, 0.0)
        ell = 1.0 - np.clip(1.0 - ell, 0.1, 1.0)
        theta = np.where(np.isfinite(self.theta_deg), self.theta_deg, 0.0)
        n = np.where(np.isfinite(self.sersic_n) & (self.sersic_n > 0), self.sersic_n, 3.0)
        return re, ell, theta, np.clip(n, SERSIC_N_MIN, SERSIC_N_MAX)

    def initial_params(self):
        """Initial nonlinear parameters, shape (n, 6): x, y, logre, ee1, ee2, n."""
        re, ell, theta, n = self.catalog_shapes()
        logre, ee1, ee2 = catalog_to_soft(re, ell, theta)
        return np.stack([self.x, self.y, logre, ee1, ee2, n], axis=1)

    def prior_sigmas(self):
        """Prior sigmas (n, 6) for the nonlinear parameters (NaN = none).

        Shape priors apply to galaxies only and only where the catalog value
        itself was finite (tract7dt's rule).
        """
        re, ell, theta, _n = self.catalog_shapes()
        s_logre, s1, s2 = soft_prior_sigmas(
            re, ell, theta, self.re_err, self.ell_err, self.theta_err
        )
        gal = self.type != "STAR"
        s_logre = np.where(gal & np.isfinite(self.re_pix), s_logre, np.nan)
        ok_ee = gal & np.isfinite(self.ell) & np.isfinite(self.theta_deg)
        pos = np.where(self.pos_err > 0, self.pos_err, np.nan)
        none = np.full(len(self), np.nan)
        return np.stack(
            [pos, pos, s_logre, np.where(ok_ee, s1, np.nan), np.where(ok_ee, s2, np.nan), none],
            axis=1,
        )

    def flux_prior(self):
        """(mean, sigma), each (n, B); sigma NaN where there is no usable prior."""
        ok = np.isfinite(self.flux) & (self.flux_err > 0)
        return np.where(ok, self.flux, 0.0), np.where(ok, self.flux_err, np.nan)
