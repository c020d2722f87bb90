"""The per-band-block solve of one evaluation: exact fluxes, chi^2 and the reduced system.

:func:`solve_chunk` takes the rendered stamps of a block of bands (from
:meth:`._engine.PatchModel._render`) and adds to the evaluation's
:class:`._evaluation.Accumulator`: per-source Gram blocks and projections on
the data, the exact flux solve (one source at a time when no stamps overlap,
dense otherwise), chi^2, and with derivatives the Fisher matrix of theta with
the fluxes profiled out, its gradient and the flux response.  ``patch`` is
the :class:`._engine.PatchModel` (data, weights, flux priors).
"""

from __future__ import annotations

import numpy as np

from . import _solve
from ._kernels import add_model, gram_pairs, project, self_terms, weighted_residual

__all__ = ["SPARSE_RHO", "solve_chunk"]

#: Normalised model overlap <u_s, W u_t> / sqrt(<u_s, W u_s><u_t, W u_t>) above which a
#: sparse (optimiser-step) Fisher matrix keeps the derivative cross terms of a pair.
SPARSE_RHO = 1e-4


def solve_chunk(patch, bands, buf, geo, th, out):
    """Solve the bands ``bands`` from their stamps ``buf`` (nb, total) into ``out``."""
    blocks, rhs = _self_terms(patch, bands, buf, geo)
    if geo.separable:
        _separable(patch, bands, buf, blocks, rhs, geo, th, out)
    else:
        _general(patch, bands, buf, blocks, rhs, geo, th, out)


def _self_terms(patch, bands, buf, geo):
    """Per-source Gram blocks (nb, ns, C, C) and projections on w*d (nb, ns, C)."""
    lay = geo.layout
    blocks = np.empty((bands.size, geo.ns, geo.cmax, geo.cmax))
    rhs = np.empty((bands.size, geo.ns, geo.cmax))
    for i, b in enumerate(bands):
        blocks[i], rhs[i] = self_terms(
            buf[i],
            lay.offsets,
            lay.sizes,
            lay.ncols,
            geo.ox,
            geo.oy,
            patch.w[b],
            patch.data[b],
            geo.cmax,
        )
    return blocks, rhs


def _finish_bands(patch, bands, f, var, chi2, out):
    """Add the bands' ln L (flux priors included), fluxes and flux variances to ``out``."""
    prec, mu = patch.prior_prec[bands], patch.prior_mean[bands]
    out.lnlike += float(np.sum(-0.5 * chi2) - 0.5 * np.sum(prec * (f - mu) ** 2))
    out.fluxes[bands] = f
    out.flux_var[bands] = var


def _separable(patch, bands, buf, blocks, rhs, geo, th, out):
    """Flux solve and reduced system of bands where no two stamps overlap."""
    f_fisher = None if out.fisher_flux is None else out.fisher_flux[bands]
    res = _solve.separable(
        blocks,
        rhs,
        patch.wdd[bands],
        patch.prior_prec[bands],
        patch.prior_mean[bands],
        th,
        out.derivs,
        f_fisher,
    )
    _finish_bands(patch, bands, res.f, res.var, res.chi2, out)
    if out.adjoint is not None:
        _refine(patch, bands, buf, None, res.f, geo, out, derivs=False)
    if out.derivs:
        out.fisher += res.fisher
        out.grad += res.grad
        out.z_blocks.extend(res.z)
    if out.models is not None:
        lay = geo.layout
        for i, b in enumerate(bands):
            add_model(buf[i], lay.offsets, lay.sizes, geo.ox, geo.oy, res.f[i], out.models[b])


def _general(patch, bands, buf, blocks, rhs, geo, th, out):
    """Flux solve and reduced system of bands whose stamps overlap (dense Gram matrices)."""
    C, ns = geo.cmax, geo.ns
    gram = np.zeros((bands.size, ns * C, ns * C))
    ar = np.arange(C)
    diag = np.arange(ns)[:, None, None] * C
    gram[:, diag + ar[None, :, None], diag + ar[None, None, :]] = blocks
    if geo.ps.size:
        r = geo.ps[:, None, None] * C + ar[None, :, None]
        c = geo.pt[:, None, None] * C + ar[None, None, :]
        for i, b in enumerate(bands):
            cross = _cross_blocks(patch, buf[i], b, blocks[i], geo, C, out.sparse)
            gram[i, r, c] = cross
            gram[i, c, r] = cross
    prec, mu = patch.prior_prec[bands], patch.prior_mean[bands]
    H, hinv, f, active, singular = _solve.flux_solve(gram, rhs, prec, mu, C)
    out.singular |= singular
    resid_proj = None
    # (a step's Fisher bands: fluxes and gradient come from all bands)
    fisher_only = out.fisher_flux is not None
    from_residual = (geo.approximate or out.sparse) and not fisher_only
    if from_residual or out.models is not None or out.adjoint is not None:
        chi2, f, resid_proj = _refine(patch, bands, buf, hinv, f, geo, out, derivs=out.derivs)
    else:
        chi2 = (
            patch.wdd[bands] - 2 * np.sum(f * rhs[..., 0], 1) + np.einsum("bi,bij,bj->b", f, H, f)
        )
    var = np.where(active, np.diagonal(hinv, axis1=1, axis2=2), np.inf)
    _finish_bands(patch, bands, f, var, chi2, out)
    if out.derivs:
        f_fisher = out.fisher_flux[bands] if fisher_only else f
        fisher, grad, z = _solve.general(
            gram, hinv, f_fisher, rhs, th, resid_proj if from_residual else None, prec, mu
        )
        out.fisher += fisher
        out.grad += grad
        out.z_blocks.extend(z)


def _cross_blocks(patch, buf_b, b, blocks_b, geo, C, sparse):
    """Gram blocks (n_pair, C, C) of the overlapping pairs in band ``b``.

    ``sparse``: the model x model entry of every pair, the other entries
    only for pairs whose normalised model overlap exceeds SPARSE_RHO.
    """
    lay = geo.layout
    args = (lay.offsets, lay.sizes, lay.ncols, geo.ox, geo.oy)
    box = (geo.bx, geo.by, lay.core)
    if not sparse or C == 1:
        return gram_pairs(buf_b, *args, geo.ps, geo.pt, patch.w[b], C, *box)
    cross = np.zeros((geo.ps.size, C, C))
    cross[:, :1, :1] = gram_pairs(buf_b, *args, geo.ps, geo.pt, patch.w[b], 1, *box)
    norm = np.sqrt(blocks_b[geo.ps, 0, 0] * blocks_b[geo.pt, 0, 0])
    strong = np.abs(cross[:, 0, 0]) > SPARSE_RHO * norm
    if strong.any():
        cross[strong] = gram_pairs(
            buf_b, *args, geo.ps[strong], geo.pt[strong], patch.w[b], C, *box
        )
    return cross


def _refine(patch, bands, buf, hinv, f, geo, out, derivs):
    """Exact residual-image chi^2, one Newton refinement of the fluxes, projections.

    Works on the bounding box of the stamps (the padded image can be much
    larger); outside it the model is 0 and chi^2 gets w d^2, inside
    chi^2 = w d^2 + w m (m - 2 d).
    """
    lay, C = geo.layout, geo.cmax
    y0, y1, x0, x1 = geo.box
    ox, oy = geo.ox - x0, geo.oy - y0
    chi2 = np.empty(bands.size)
    proj = np.zeros((bands.size, geo.ns, C)) if derivs else None
    f = f.copy()
    if out.adjoint is not None:
        out.adjoint.start(bands.size)
    for i, b in enumerate(bands):
        d, w = patch.data[b, y0:y1, x0:x1], patch.w[b, y0:y1, x0:x1]
        model = np.zeros(d.shape, buf.dtype)  # (single-precision stamps: a float32 model)
        add_model(buf[i], lay.offsets, lay.sizes, ox, oy, f[i], model)
        if geo.approximate:
            g0 = project(
                buf[i],
                lay.offsets,
                lay.sizes,
                lay.ncols,
                ox,
                oy,
                weighted_residual(d, w, model)[0],
                1,
            )[:, 0]
            df = hinv[i] @ (g0 - patch.prior_prec[b] * (f[i] - patch.prior_mean[b]))
            f[i] += df
            add_model(buf[i], lay.offsets, lay.sizes, ox, oy, df, model)
        wr, dchi2 = weighted_residual(d, w, model)
        chi2[i] = patch.wdd[b] + dchi2
        if out.adjoint is not None:
            out.adjoint.add(i, wr, ox, oy)
        if derivs:
            proj[i] = project(buf[i], lay.offsets, lay.sizes, lay.ncols, ox, oy, wr, C)
        if out.models is not None:
            out.models[b, y0:y1, x0:x1] = model
    if out.adjoint is not None:
        out.adjoint.finish(bands, f)
    return chi2, f, proj
