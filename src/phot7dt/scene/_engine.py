"""Per-patch evaluation: render, solve fluxes exactly, build the reduced Fisher system.

For given nonlinear parameters theta (positions, shapes, n) the model of band b
is sum_s f_sb U_sb(theta_s).  One :meth:`PatchModel.evaluate` call, band by band:

1. renders every source's unit-flux stamp (and derivative stamps) in Fourier space;
2. forms weighted inner products of all overlapping stamp columns (numba);
3. solves the band's fluxes exactly from H_ff f = r (+ Gaussian flux priors);
4. optionally accumulates the Gauss-Newton system for theta with the fluxes
   profiled out (variable projection): S = sum_b H_tt,b - H_tf,b H_ff,b^-1 H_ft,b
   and gradient g = sum_b J_t,b^T W (d - m_b).

chi^2 is computed from the inner products (sum w d^2 - 2 f.r + f H f), so no
residual image is needed.  Non-finite pixels get zero weight.  With a gain the
weights are 1/(1/invvar + max(model, 0)/gain) (source Poisson noise, refreshed
from the current model by :meth:`PatchModel.set_model_weights`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg

from ._kernels import add_model, gram_pairs, overlapping_pairs, project
from .render import base_factors, render_band

__all__ = ["Evaluation", "PatchModel", "noise_sigma"]


@dataclasses.dataclass
class Evaluation:
    """Everything one evaluation at theta produced (internal)."""

    lnlike: float
    fluxes: np.ndarray                      # (n_band, n_src)
    flux_var: np.ndarray                    # (n_band, n_src), diag of H_ff^-1
    singular: bool
    fisher: np.ndarray | None = None        # (n_theta, n_theta)
    grad: np.ndarray | None = None          # (n_theta,)
    z_blocks: list | None = None            # per band: (H_ff^-1 H_ft) restricted
    models: np.ndarray | None = None        # (n_band, ny_pad, nx_pad)


class PatchModel:
    """Data, weights and PSFs of one patch, padded so stamps never clip.

    Parameters
    ----------
    images, invvar : ndarray, shape (n_band, ny, nx)
    psfs : sequence of PSF objects, length n_band
    kinds : sequence of str, length n_src
    flux_prior : tuple of ndarray
        (mean, sigma), each (n_src, n_band); sigma NaN = no prior.
    gain : ndarray, shape (n_band,), optional
        Electrons per image unit for the source Poisson term.
    pad : int
    """

    def __init__(self, images, invvar, psfs, kinds, flux_prior, gain=None, pad=0):
        images = np.asarray(images, dtype=np.float64)
        ivar = np.asarray(invvar, dtype=np.float64)
        good = np.isfinite(images) & np.isfinite(ivar) & (ivar > 0)
        self.n_bad_pixels = int(np.count_nonzero(~(np.isfinite(images) & np.isfinite(ivar))))
        self.n_band, self.ny, self.nx = images.shape
        self.pad = int(pad)
        p = ((0, 0), (self.pad, self.pad), (self.pad, self.pad))
        self.data = np.pad(np.where(good, images, 0.0), p)
        self.ivar = np.pad(np.where(good, ivar, 0.0), p)
        self.psfs = list(psfs)
        self.kinds = list(kinds)
        self.gain = None if gain is None else np.asarray(gain, float)
        mu, sig = flux_prior
        self.prior_prec = np.where(np.isfinite(sig) & (sig > 0), 1.0 / np.where(sig > 0, sig, 1.0) ** 2, 0.0).T
        self.prior_mean = np.where(self.prior_prec > 0, np.asarray(mu).T, 0.0)
        self._psf_ft = {}
        self.set_weights(self.ivar)

    def set_weights(self, w):
        """Use weights ``w`` (n_band, ny_pad, nx_pad) for the following evaluations."""
        self.w = w
        self.wd = w * self.data
        self.wdd = np.einsum("bij,bij->b", self.wd, self.data)

    def set_model_weights(self, models):
        """Poisson-aware weights from model images (no-op without a gain)."""
        if self.gain is None or models is None:
            return
        src_var = np.maximum(models, 0.0) / self.gain[:, None, None]
        self.set_weights(self.ivar / (1.0 + self.ivar * src_var))

    def noise_sigma(self):
        """Typical per-pixel noise sigma of each band, shape (n_band,)."""
        return noise_sigma(self.ivar)

    def psf_fourier(self, b):
        def get(size, _b=b):
            key = (_b, size)
            if key not in self._psf_ft:
                self._psf_ft[key] = self.psfs[_b].fourier(size)
            return self._psf_ft[key]
        return get

    def evaluate(self, params, layout, *, derivs=False, want_model=False):
        """Fluxes, ln-likelihood (incl. flux priors) and, if asked, the reduced system.

        Parameters
        ----------
        params : ndarray, shape (n_src, 6)
        layout : Layout
            Stamp sizes, core boxes and which derivative columns to render.
        derivs : bool
            Build the theta Fisher matrix, gradient and flux-theta coupling.
        want_model : bool
            Also return the model images (padded).
        """
        geo = _Geometry(self, params, layout)
        bases = [base_factors(layout, self.kinds, params, geo.od, g) for g in range(len(layout.groups))]
        th_cols, th_src = _theta_columns(layout, geo.cmax)
        out = _Accumulator(self.n_band, geo.ns, th_cols.size, derivs, want_model, self.data.shape[1:])
        for b in range(self.n_band):
            buf, parts = render_band(layout, bases, self.psf_fourier(b))
            gram, rhs = self._gram(b, buf, parts, geo)
            model = self._band(b, buf, gram, rhs, geo, th_cols, th_src, out)
            if want_model:
                if model is None:
                    model = np.zeros(self.data.shape[1:])
                    add_model(buf, layout.offsets, layout.sizes, geo.ox, geo.oy, out.fluxes[b], model)
                out.models[b] = model
        return out.finish()

    def _gram(self, b, buf, parts, geo):
        """Dense weighted Gram matrix (ns*C)^2 of all columns, and projections on w*d."""
        C, ns, lay = geo.cmax, geo.ns, geo.layout
        self_blocks = np.zeros((ns, C, C))
        rhs = np.zeros((ns, C))
        w, wd = self.w[b].ravel(), self.wd[b].ravel()
        for (_size, _free, members), st, idx in zip(lay.groups, parts, geo.gather, strict=True):
            c = st.shape[1]
            A = st.reshape(members.size, c, -1)
            self_blocks[members, :c, :c] = A @ (A * w[idx][:, None, :]).transpose(0, 2, 1)
            rhs[members, :c] = (A @ wd[idx][:, :, None])[..., 0]
        gram = np.zeros((ns * C, ns * C))
        ar = np.arange(C)
        diag = np.arange(ns)[:, None, None] * C
        gram[diag + ar[None, :, None], diag + ar[None, None, :]] = self_blocks
        if geo.ps.size:
            blocks = gram_pairs(buf, lay.offsets, lay.sizes, lay.ncols, geo.ox, geo.oy, geo.ps, geo.pt,
                                self.w[b], C, geo.bx, geo.by, lay.core)
            r = geo.ps[:, None, None] * C + ar[None, :, None]
            c = geo.pt[:, None, None] * C + ar[None, None, :]
            gram[r, c] = blocks
            gram[c, r] = blocks
        return gram, rhs

    def _band(self, b, buf, gram, rhs, geo, th_cols, th_src, out):
        ns, C, lay = geo.ns, geo.cmax, geo.layout
        u = np.arange(ns) * C
        H = gram[np.ix_(u, u)]
        r0 = rhs[:, 0]
        prec, mu = self.prior_prec[b], self.prior_mean[b]
        hinv, f, active = self._solve_fluxes(H, r0, prec, mu, out)
        model = None
        if geo.approximate:
            # cross terms were cut to core boxes: one exact Newton refinement of the
            # fluxes from the true residual image, then an exact chi^2
            model = np.zeros(self.data.shape[1:])
            add_model(buf, lay.offsets, lay.sizes, geo.ox, geo.oy, f, model)
            resid = self.wd[b] - self.w[b] * model
            g0 = project(buf, lay.offsets, lay.sizes, lay.ncols, geo.ox, geo.oy, resid, 1)[:, 0]
            df = hinv @ (g0 - prec * (f - mu))
            f = f + df
            add_model(buf, lay.offsets, lay.sizes, geo.ox, geo.oy, df, model)
            resid = self.wd[b] - self.w[b] * model
            chi2 = float(np.vdot(self.data[b] - model, resid))
        else:
            chi2 = self.wdd[b] - 2.0 * f @ r0 + f @ H @ f
        out.lnlike += -0.5 * chi2 - 0.5 * np.sum(prec * (f - mu) ** 2)
        out.fluxes[b] = f
        out.flux_var[b] = np.where(active, np.diag(hinv), np.inf)
        if not out.derivs:
            return model
        fs = f[th_src]
        G_tu = gram[np.ix_(th_cols, u)]
        H_tf = G_tu * fs[:, None]
        Z = hinv @ H_tf.T
        out.fisher += gram[np.ix_(th_cols, th_cols)] * np.outer(fs, fs) - H_tf @ Z
        if geo.approximate:
            res = project(buf, lay.offsets, lay.sizes, lay.ncols, geo.ox, geo.oy, resid, C)
            g_f = res[:, 0] - prec * (f - mu)
            out.grad += fs * res.ravel()[th_cols] - Z.T @ g_f
        else:
            out.grad += fs * (rhs.ravel()[th_cols] - G_tu @ f)
        out.z_blocks.append(Z)
        return model

    def _solve_fluxes(self, H, r0, prec, mu, out):
        ns = H.shape[0]
        Hp = H + np.diag(prec)
        active = np.diag(Hp) > 0
        f = np.zeros(ns)
        hinv = np.zeros((ns, ns))
        if active.any():
            ia = np.flatnonzero(active)
            hinv_a, singular = _inverse(Hp[np.ix_(ia, ia)])
            hinv[np.ix_(ia, ia)] = hinv_a
            out.singular |= singular
            f[ia] = hinv_a @ (r0[ia] + prec[ia] * mu[ia])
        return hinv, f, active


class _Geometry:
    """Stamp origins, gather indices and overlapping pairs of one evaluation."""

    def __init__(self, model, params, layout):
        self.layout = layout
        self.od = layout.origins(params[:, 0], params[:, 1])
        self.ox, self.oy = self.od[0], self.od[1]
        nyp, nxp = model.data.shape[1:]
        if self.ox.size and (self.ox.min() < 0 or self.oy.min() < 0 or (self.ox + layout.sizes).max() > nxp
                             or (self.oy + layout.sizes).max() > nyp):
            msg = "a source stamp left the padded patch (position outside its bounds)"
            raise RuntimeError(msg)
        self.ns = params.shape[0]
        self.cmax = int(layout.ncols.max()) if self.ns else 1
        self.gather = []
        for size, _free, members in layout.groups:
            ar = np.arange(size)
            rows = self.oy[members][:, None, None] + ar[None, :, None]
            cols = self.ox[members][:, None, None] + ar[None, None, :]
            self.gather.append((rows * nxp + cols).reshape(members.size, -1))
        off = (layout.sizes - layout.core) // 2
        self.bx, self.by = self.ox + off, self.oy + off
        full_s, _ = overlapping_pairs(self.ox, self.oy, layout.sizes)
        self.ps, self.pt = overlapping_pairs(self.bx, self.by, layout.core)
        self.approximate = bool(full_s.size) and (
            full_s.size != self.ps.size or bool(np.any(layout.core < layout.sizes)))


def noise_sigma(invvar):
    """Median per-pixel noise sigma of each band from invvar (B, ny, nx); inf if all masked."""
    out = np.empty(invvar.shape[0])
    for b in range(invvar.shape[0]):
        v = invvar[b][np.isfinite(invvar[b]) & (invvar[b] > 0)]
        out[b] = 1.0 / np.sqrt(np.median(v)) if v.size else np.inf
    return out


def _theta_columns(layout, cmax):
    """Gram-matrix column and owning source of every free nonlinear parameter."""
    cols, src = [], []
    for s in range(layout.sizes.size):
        for i in range(1, int(layout.ncols[s])):
            cols.append(s * cmax + i)
            src.append(s)
    return np.array(cols, dtype=np.int64), np.array(src, dtype=np.int64)


def _inverse(H):
    """Inverse of a symmetric PSD matrix; pseudo-inverse and a flag if singular."""
    try:
        cf = scipy.linalg.cho_factor(H, check_finite=False)
        return scipy.linalg.cho_solve(cf, np.eye(H.shape[0]), check_finite=False), False
    except np.linalg.LinAlgError:
        return np.linalg.pinv(H, hermitian=True), True


class _Accumulator:
    def __init__(self, n_band, ns, nth, derivs, want_model, shape):
        self.lnlike = 0.0
        self.singular = False
        self.derivs = derivs
        self.fluxes = np.zeros((n_band, ns))
        self.flux_var = np.zeros((n_band, ns))
        self.fisher = np.zeros((nth, nth)) if derivs else None
        self.grad = np.zeros(nth) if derivs else None
        self.z_blocks = [] if derivs else None
        self.models = np.zeros((n_band,) + shape) if want_model else None

    def finish(self):
        return Evaluation(self.lnlike, self.fluxes, self.flux_var, self.singular, self.fisher,
                          self.grad, self.z_blocks, self.models)
