"""Truth tests of :mod:`phot7dt.artefacts` on synthetic 7DT-like patches.

Stars are pixel-integrated Gaussians / Moffats (S/N 5 to 3000, colours differ
by band), galaxies are PSF-convolved exponential discs, the sky noise varies
by +-30 % over the patch and by band, the sources add Poisson noise (the
fitter's ``gain`` convention: invvar holds the sky only). Every injected
artefact is known, so completeness and purity are counted pixel by pixel.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from phot7dt.artefacts import ArtefactMask, ArtefactSettings, find_artefacts, psf_sharpness_bound

N = 200  # patch side, px
GAIN = 5.0  # electrons per flux unit (sky sigma ~ 1): a harsh Poisson term


def psf_stamp(fwhm, dx, dy, half, beta=None, over=4):
    """Unit-flux PSF centred (dx, dy) px off the stamp centre, integrated over pixels."""
    g = (np.arange(-half, half + 1)[:, None] + (np.arange(over) + 0.5) / over - 0.5).ravel()
    r2 = ((g[None, :] - dx) ** 2 + (g[:, None] - dy) ** 2) / fwhm**2
    if beta is None:
        p = np.exp(-4 * np.log(2) * r2)
    else:
        p = (1 + 4 * (2 ** (1 / beta) - 1) * r2) ** -beta
    p = p.reshape(2 * half + 1, over, 2 * half + 1, over).sum(axis=(1, 3))
    return p / p.sum()


def add(img, stamp, y0, x0):
    h = stamp.shape[0] // 2
    ya, yb, xa, xb = max(y0 - h, 0), min(y0 + h + 1, N), max(x0 - h, 0), min(x0 + h + 1, N)
    img[ya:yb, xa:xb] += stamp[ya - y0 + h : yb - y0 + h, xa - x0 + h : xb - x0 + h]


@cache
def field(seed, nb, fwhm, beta=None, nstar=30, ngal=4, shrink=1.0):
    """Stars, galaxies and noise; ``shrink`` < 1 renders a narrower PSF than stated."""
    rng = np.random.default_rng(seed)
    fw = fwhm * (1 + 0.1 * rng.uniform(-1, 1, nb)) if nb > 1 else np.array([fwhm])
    yy, xx = np.mgrid[0:N, 0:N] / N
    sig = (1 + 0.3 * np.sin(2 * np.pi * (yy + 0.7 * xx)))[None] * rng.uniform(0.7, 1.4, (nb, 1, 1))
    truth = np.zeros((nb, N, N))
    stars = np.c_[rng.uniform(4, N - 4, (nstar, 2)), np.geomspace(5, 3000, nstar)]
    for y, x, snr in stars:
        sed = np.exp(rng.normal(0, 0.5, nb))
        for b in range(nb):
            half = 30 if snr > 200 else 12  # px: bright stars get their wings
            st = psf_stamp(fw[b] * shrink, x - round(x), y - round(y), half, beta)
            flux = snr * sed[b] / sed.max() * sig[b, int(y), int(x)] / np.sqrt((st**2).sum())
            add(truth[b], flux * st, round(y), round(x))
    for _ in range(ngal):  # exponential discs, r_e 2-8 px, PSF-convolved by FFT
        y0, x0 = rng.integers(30, N - 30, 2)
        re, q, th, mu = rng.uniform([2, 0.3, 0, 1], [8, 1, np.pi, 20])  # mu: peak, sigma
        X, Y = np.meshgrid(np.arange(-25, 26), np.arange(-25, 26))
        u, v = X * np.cos(th) + Y * np.sin(th), (Y * np.cos(th) - X * np.sin(th)) / q
        prof = mu * np.exp(-1.678 * np.hypot(u, v) / re)
        for b in range(nb):
            k = np.fft.fft2(np.fft.ifftshift(psf_stamp(fw[b], 0, 0, 25)))
            add(truth[b], np.real(np.fft.ifft2(np.fft.fft2(prof) * k)) * sig[b, y0, x0], y0, x0)
    z = rng.normal(size=truth.shape)  # the same deviates with and without sources
    return dict(img=(truth + z * np.sqrt(sig**2 + truth.clip(0) / GAIN)).astype(np.float32),
                sky=(z * sig).astype(np.float32), ivar=(1 / sig**2).astype(np.float32),
                sig=sig, fwhm=fw, stars=stars, truth=truth)


def near_stars(d, radius_fwhm=2.0, pad=0.0):
    yy, xx = np.mgrid[0:N, 0:N]
    r = radius_fwhm * d["fwhm"].max() + pad
    return np.any([(yy - y) ** 2 + (xx - x) ** 2 < r * r for y, x, _ in d["stars"]], axis=0)


def add_cosmics(d, rng, per_band):
    """Hot pixels, 1-px tracks (2-8 px) and 2x2 blobs, peak 6-300 sigma, off the stars."""
    img, keep_out = d["img"].copy(), near_stars(d, pad=12)  # tracks <= 8 px, growth 1
    cr = np.zeros(img.shape)
    for b in range(len(img)):
        for _ in range(per_band):
            y, x = rng.uniform(12, N - 12, 2)
            while keep_out[int(y), int(x)]:
                y, x = rng.uniform(12, N - 12, 2)
            amp = np.exp(rng.uniform(np.log(6), np.log(300))) * d["sig"][b, int(y), int(x)]
            kind = rng.integers(3)
            if kind == 0:
                cr[b, int(y), int(x)] += amp
            elif kind == 1:
                length, th = rng.uniform(2, 8), rng.uniform(0, np.pi)
                for t in np.linspace(0, length, int(3 * length)):
                    yx = b, int(y + t * np.sin(th)), int(x + t * np.cos(th))
                    cr[yx] += amp / 3 * rng.uniform(0.5, 1.5)
            else:
                cr[b, int(y) : int(y) + 2, int(x) : int(x) + 2] += amp * rng.uniform(0.5, 1, (2, 2))
    return img + cr.astype(np.float32), cr / d["sig"]


def trail(d, b, y0, angle, peak):
    """A straight trail of ``peak`` sigma with a Gaussian profile of the band's FWHM."""
    yy, xx = np.mgrid[0:N, 0:N]
    dist = (yy - y0) * np.cos(angle) - (xx - N / 2) * np.sin(angle)
    return peak * np.exp(-0.5 * (dist * 2.3548 / d["fwhm"][b]) ** 2)  # in sigma


def run(img, d, **kw):
    return find_artefacts(img, d["ivar"], d["fwhm"], gain=GAIN, settings=ArtefactSettings(**kw))


# --------------------------------------------------------------------------- bound
def test_bound_is_the_sharpest_psf_and_tight():
    rho = np.array([psf_sharpness_bound(f) for f in (2.0, 2.2, 3.5, 5.0, 8.0)])
    assert np.all(np.diff(rho, axis=0) < 0) and rho[1] == pytest.approx([1.92, 1.14], abs=0.03)
    for fwhm in (2.2, 3.5, 5.0):  # no rendered star is sharper; a Gaussian comes close
        worst = np.zeros(2)
        for beta in (None, 2.5, 4.765):
            for dx, dy in [(0, 0), (0.5, 0.5), (0.25, 0.5), (0.1, 0.3)]:
                p = psf_stamp(fwhm, dx, dy, 6, beta, over=15)
                for y in range(1, 12):
                    for x in range(1, 12):
                        nbr = np.delete(p[y - 1 : y + 2, x - 1 : x + 2].ravel(), 4)
                        if p[y, x] >= 1e-3 * p.max():
                            e = p[y, x] - np.median(nbr)
                            worst = np.maximum(worst, [e / np.median(nbr), e / nbr.mean()])
        assert np.all(worst <= psf_sharpness_bound(fwhm))
        assert np.all(worst > 0.9 * np.array(psf_sharpness_bound(fwhm)))


# --------------------------------------------------------------------- completeness
@pytest.mark.parametrize("fwhm", [2.2, 3.5, 5.0])
@pytest.mark.parametrize("nb", [1, 8])
def test_cosmic_rays_found(nb, fwhm):
    """>= 95 % of the injected pixels above 5 sigma, over 3 fields (one band holds ~90)."""
    found = total = 0
    for seed in (1, 2, 3):
        d = field(seed, nb, fwhm)
        img, cr = add_cosmics(d, np.random.default_rng(seed + 1), 25)
        r = run(img, d)
        assert isinstance(r, ArtefactMask) and r.mask.shape == img.shape and np.all(r.n_sharp > 0)
        found, total = found + r.mask[cr > 5].sum(), total + (cr > 5).sum()
        spill = r.mask & (cr == 0) & ~run(d["img"], d).mask  # noise alone flags ~1e-5
        assert spill[:, near_stars(d)].sum() == 0  # nothing leaks onto the stars
    assert found / total >= 0.95


def clear_span(clear, length, start, rows=False):
    """First line >= ``start`` with ``length`` consecutive px away from the stars."""
    for j in range(start, N - 5):
        run = np.convolve(clear[j] if rows else clear[:, j], np.ones(length), "valid") == length
        if run.any():
            return j, int(np.argmax(run))
    raise AssertionError("no clear span")


@pytest.mark.parametrize("fwhm", [2.2, 5.0])
def test_bad_columns_and_rows_found(fwhm):
    """Hot and cold columns and a hot row, 1.5 sigma over 80-100 px, in one band each."""
    d = field(3, 8, fwhm, nstar=15, ngal=0)
    img, clear, hit = d["img"].copy(), ~near_stars(d, pad=4), []
    for b, start, length, off, rows in ((0, 30, 90, 1.5, False), (5, 120, 80, -1.5, False),
                                         (2, 40, 100, 1.5, True)):
        j, i0 = clear_span(clear, length, start, rows)
        sl = (b, j, slice(i0, i0 + length)) if rows else (b, slice(i0, i0 + length), j)
        img[sl] += off * d["sig"][sl].astype(np.float32)
        hit.append(sl)
    r = run(img, d)
    for sl in hit:
        assert r.mask[sl].mean() >= 0.9
    assert list(np.flatnonzero(r.n_column)) == [0, 2, 5]  # and nowhere else


@pytest.mark.parametrize("fwhm", [2.2, 3.5, 5.0])
def test_trails_found(fwhm):
    d = field(4, 8, fwhm)
    img = d["img"].copy()
    tr = {b: trail(d, b, 90, ang, 4.0) for b, ang in ((3, 0.35), (6, 1.2))}
    for b, t in tr.items():
        img[b] += (t * d["sig"][b]).astype(np.float32)
    r = run(img, d)
    for b, t in tr.items():
        assert r.mask[b][t > 1].mean() >= 0.8
    others = [b for b in range(8) if b not in tr]
    assert r.n_trail[others].sum() == 0 and r.n_trail[list(tr)].min() > 0


# ------------------------------------------------------------------------ purity
@pytest.mark.parametrize("beta", [None, 2.5])
@pytest.mark.parametrize("fwhm", [2.2, 3.5, 5.0])
@pytest.mark.parametrize("nb", [1, 8])
def test_stars_are_not_masked(nb, fwhm, beta):
    """No mask within 2 FWHM of a star that the same noise without stars would not give."""
    for seed in (5, 6):
        d = field(seed, nb, fwhm, beta)
        caused = run(d["img"], d).mask & ~run(d["sky"], d).mask
        assert caused[:, near_stars(d)].sum() == 0
        assert caused.sum() == 0  # nor anywhere else: galaxies


def test_stars_narrower_than_stated_psf():
    """A 10 % FWHM overestimate at the sharpest FWHM is within the margin."""
    for nb in (1, 8):
        d = field(7, nb, 2.2, None, shrink=0.9)
        caused = run(d["img"], d).mask & ~run(d["sky"], d).mask
        assert caused[:, near_stars(d)].sum() == 0


def test_pure_noise_false_positives():
    rng = np.random.default_rng(8)
    sig = rng.uniform(0.5, 2.0, (40, 1, 1)) * (1 + 0.3 * rng.random((40, N, N)))
    img = (rng.normal(size=sig.shape) * sig).astype(np.float32)
    r = find_artefacts(img, (1 / sig**2).astype(np.float32), np.full(40, 3.0))
    assert r.mask.mean() < 1e-3
    assert r.n_column.sum() == 0 and r.n_trail.sum() == 0


# ----------------------------------------------------------- switches and inputs
def test_each_detector_switches_off():
    d = field(1, 8, 3.5)
    img, cr = add_cosmics(d, np.random.default_rng(2), 10)
    img[1, 20:120, 30] += 3 * d["sig"][1, 20:120, 30].astype(np.float32)
    img[4] += (trail(d, 4, 100, 0.5, 5.0) * d["sig"][4]).astype(np.float32)
    full = run(img, d)
    assert full.n_sharp.sum() and full.n_column[1] and full.n_trail[4]
    for key, count in (("sharp", "n_sharp"), ("columns", "n_column"), ("trails", "n_trail")):
        off = run(img, d, **{key: False})
        assert getattr(off, count).sum() == 0
        assert off.mask.sum() < full.mask.sum()
    assert run(img, d, sharp=False, columns=False, rows=False, trails=False).mask.sum() == 0
    assert run(img, d, grow_radius=0).mask.sum() < full.mask.sum()


def test_masked_pixels_stay_out_and_nan_is_fine():
    d = field(1, 8, 3.5)
    img, cr = add_cosmics(d, np.random.default_rng(2), 10)
    ivar = d["ivar"].copy()
    ivar[:, :, :50] = 0
    img[:, :, :20] = np.nan
    r = find_artefacts(img, ivar, d["fwhm"], gain=GAIN)
    assert not r.mask[:, :, :50].any() and r.mask[:, :, 50:][cr[:, :, 50:] > 5].mean() > 0.95


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        find_artefacts(np.zeros((2, 10, 10)), np.ones((2, 10, 11)), [3, 3])
    with pytest.raises(ValueError):
        find_artefacts(np.zeros((2, 10, 10)), np.ones((2, 10, 10)), [3])
    with pytest.raises(ValueError):
        find_artefacts(np.zeros((1, 10, 10)), np.ones((1, 10, 10)), [0.0])
    with pytest.raises(ValueError):
        ArtefactSettings(sharp_sigma=-1)


# ------------------------------------------- the tests would catch broken detectors
def test_tests_catch_broken_detectors():
    d = field(5, 8, 2.2)
    no_margin = run(d["img"], d, sharp_psf_margin=0.3).mask & ~run(d["sky"], d,
                                                                   sharp_psf_margin=0.3).mask
    assert no_margin[:, near_stars(d)].sum() > 0  # a bound below the PSF's masks stars
    img, cr = add_cosmics(d, np.random.default_rng(2), 25)
    assert run(img, d, sharp_sigma=20).mask[cr > 5].mean() < 0.95  # a deaf detector misses
    assert run(img, d, line_clip=50.0, line_sigma=2.0).n_column.sum() > 0  # stars make lines
