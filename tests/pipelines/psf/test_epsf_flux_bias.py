"""PSF-fit fluxes measured with a built ePSF are unbiased (GalSim Moffat stars, known centres).

The ePSF is built from noisy pixel-integrated Moffat stars at random sub-pixel
positions (sky and photon noise, centres known to ~0.1 px as SEP gives them);
independent noiseless stars at other sub-pixel positions are then measured
with the ePSF placed by the fitter's own renderer (``phot7dt.scene``), so any
narrowing, off-centring, normalisation or interpolation mismatch of the stamp
shows up as a flux bias.
"""

from __future__ import annotations

import galsim
import numpy as np
import pytest

from phot7dt import scene
from phot7dt.config.epsf import EpsfParams
from phot7dt.pipelines.psf.epsf_build import build_cell_epsf
from phot7dt.pipelines.psf.epsf_stack import StarCutouts, fourier_shift, stack_epsf
from phot7dt.pipelines.psf.stamp_models import fit_moffat

BETA, FWHM, SKY, GAIN = 3.3, 3.6, 3.0, 1.5
CUTOUT, STAMP, PROBE = 41, 35, 31
PARAMS = EpsfParams(
    cutout_size=CUTOUT,
    final_psf_size=STAMP,
    star_local_bkg_annulus_rin_pix=14.0,
    star_local_bkg_annulus_rout_pix=19.0,
)


def moffat(dx: float, dy: float, n: int) -> np.ndarray:
    """Unit-flux pixel-integrated Moffat centred ``(dx, dy)`` from the central pixel."""
    profile = galsim.Moffat(beta=BETA, fwhm=FWHM)
    image = profile.drawImage(nx=n, ny=n, scale=1.0, offset=(dx, dy), method="auto")
    return image.array.astype(float)


def noisy_stars(
    rng: np.random.Generator, snr: np.ndarray, true_centres: list | None = None
) -> StarCutouts:
    """Star cutouts with aperture S/N ``snr`` (r = 1.5 FWHM), sky + photon noise, and input
    centres perturbed by 0.1 px; the true centres are appended to ``true_centres`` if given."""
    c = (CUTOUT - 1) / 2
    area = np.pi * (1.5 * FWHM) ** 2
    data, cx, cy = [], [], []
    for s in snr:
        dx, dy = rng.uniform(-0.5, 0.5, 2)
        if true_centres is not None:
            true_centres.append((c + dx, c + dy))
        model = s * SKY * np.sqrt(area) / 0.85 * moffat(dx, dy, CUTOUT)
        photons = rng.poisson(np.clip(model, 0.0, None) * GAIN) / GAIN
        data.append(photons + rng.normal(0.0, SKY, model.shape))
        cx.append(c + dx + rng.normal(0.0, 0.1))
        cy.append(c + dy + rng.normal(0.0, 0.1))
    data = np.asarray(data)
    return StarCutouts(
        data,
        np.zeros(data.shape, bool),
        np.asarray(cx),
        np.asarray(cy),
        data.sum(axis=(1, 2)),
        np.zeros((len(data), 2), int),
    )


def probe_flux_bias(stamp: np.ndarray, rng: np.random.Generator, n: int = 12) -> float:
    """Mean relative error of linear PSF fluxes of unit-flux stars, model from the scene."""
    psf = [scene.PixelizedPSF(stamp)]
    c = (PROBE - 1) / 2
    errors = []
    for dx, dy in rng.uniform(-0.5, 0.5, (n, 2)):
        truth = moffat(dx, dy, PROBE)
        model = scene.render_model(
            (PROBE, PROBE), psf, ["STAR"], np.array([[c + dx, c + dy, 0, 0, 0, 1]]), np.ones((1, 1))
        )[0]
        errors.append((model * truth).sum() / (model * model).sum() / truth.sum() - 1.0)
    return float(np.mean(errors))


def test_fourier_shift_moves_a_moffat_to_its_subpixel_position():
    image = moffat(0.0, 0.0, CUTOUT)
    moved = fourier_shift(image, 0.3, -0.2)
    truth = moffat(0.3, -0.2, CUTOUT)
    # the engine's shift tapers frequencies above 0.375 cycles/px: 5e-4 of the peak
    np.testing.assert_allclose(moved, truth, atol=5e-4 * truth.max())
    assert moved.sum() == pytest.approx(image.sum(), rel=1e-12)  # a shift keeps the flux


def test_stack_recentres_and_fits_star_centres():
    rng = np.random.default_rng(11)
    truth: list[tuple[float, float]] = []
    stars = noisy_stars(rng, np.geomspace(100, 600, 12), truth)
    truth_x, truth_y = np.asarray(truth).T
    input_x, input_y = stars.cx.copy(), stars.cy.copy()
    res = stack_epsf(
        stars, SKY, GAIN, FWHM, maxiters=10, clip_sigma=5.0, aperture_fwhm=2.0, gradient_stars=None
    )
    assert res.converged and res.used.all()
    centre = fit_moffat(res.stamp, 10.0)
    half = (CUTOUT - 1) / 2
    assert abs(centre.x0 - half) < 0.01 and abs(centre.y0 - half) < 0.01
    assert res.stamp.sum() == pytest.approx(1.0)
    # Fitted centres are closer to the truth than the 0.1 px perturbed inputs.
    assert np.std(res.cx - truth_x) < min(0.05, np.std(input_x - truth_x))
    assert np.std(res.cy - truth_y) < min(0.05, np.std(input_y - truth_y))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bright_star_epsf_gives_unbiased_psf_fluxes(seed):
    rng = np.random.default_rng(seed)
    build = build_cell_epsf(
        noisy_stars(rng, np.geomspace(100, 1000, 20)), {}, PARAMS, FWHM, 0, SKY, GAIN
    )
    assert build.nstars_used == 20
    assert fit_moffat(build.stamp, 10.0).fwhm == pytest.approx(FWHM, rel=0.01)
    assert abs(probe_flux_bias(build.stamp, rng)) < 0.002


def test_faint_star_epsf_flux_bias_stays_small_on_average():
    """S/N 20-300 as in the simulated field's blue bands: bias averaged over builds < 0.3 %."""
    biases = []
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        stars = noisy_stars(rng, np.geomspace(20, 300, 15))
        build = build_cell_epsf(stars, {}, PARAMS, FWHM, 0, SKY, GAIN)
        biases.append(probe_flux_bias(build.stamp, rng))
    assert abs(np.mean(biases)) < 0.003
    assert np.max(np.abs(biases)) < 0.01
