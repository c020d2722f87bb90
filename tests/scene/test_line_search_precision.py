"""Line search near a very bright star: single-precision ln P cannot rank tiny steps, double can."""

from __future__ import annotations

import numpy as np

from phot7dt import scene
from phot7dt.scene._engine import PatchModel
from phot7dt.scene._lm import _settle, _Stage, _Trial
from phot7dt.scene._problem import make_problem
from phot7dt.scene._render import Layout

SHAPE = (64, 64)
N_BAND = 4
FLUX = 3e6  # per band, sky sigma 1: a saturated-star brightness (fitted on its wings)


def _stage():
    psfs = [scene.MoffatPSF(4.0, radius=20)] * N_BAND
    truth = np.array([[31.37, 30.81, 0.0, 0.0, 0.0, 2.0]])
    images = scene.render_model(SHAPE, psfs, ["STAR"], truth, np.full((1, N_BAND), FLUX))
    images += np.random.default_rng(1).normal(0.0, 1.0, images.shape)
    table = scene.SourceTable({"x": [31.37], "y": [30.81], "type": ["STAR"]}, N_BAND)
    prob = make_problem(table, SHAPE, scene.FitSettings())
    model = PatchModel(images, np.ones(images.shape), psfs, ["STAR"], table.flux_prior(), pad=64)
    free = np.zeros((1, 6), bool)
    free[0, :2] = True
    return _Stage(
        model, prob, truth.copy(), Layout(np.array([64]), free, 64), estimate=False, lam=1e-3
    ), truth


def test_single_precision_cannot_rank_steps_near_a_very_bright_star_but_double_can():
    st, truth = _stage()
    A, g = st.system()
    newton = truth.copy()
    newton[0, :2] += np.linalg.solve(A, g)  # the exact optimum (a quadratic problem this close)
    sigma = np.sqrt(np.diag(np.linalg.inv(A)))
    worse = newton.copy()
    worse[0, 0] += 0.1 * sigma[0]  # 0.1 sigma from the optimum: ln P lower by 0.005
    lnp_single = [st.evaluate(p)[0].lnlike for p in (newton, worse)]
    assert (
        abs((lnp_single[0] - lnp_single[1]) - 0.005) > 0.02
    )  # single precision: noise >> the gain
    lnp_double = [st.model.evaluate(p, st.layout.model_only()).lnlike for p in (newton, worse)]
    assert (
        abs((lnp_double[0] - lnp_double[1]) - 0.005) < 0.002
    )  # double precision: the quadratic gain
    st.params = worse
    assert st.better_in_double(newton)
    st.params = newton
    assert not st.better_in_double(worse)


def test_a_stage_ending_on_rejected_trials_takes_the_first_one_if_double_precision_prefers_it():
    st, truth = _stage()
    A, g = st.system()
    best = truth.copy()
    best[0, :2] += np.linalg.solve(A, g)
    ev_best, exact = st.evaluate(best)
    first = _Trial(best, ev_best, st.lnp - 0.1, exact, 0.05)  # looked 0.1 worse in single precision
    trial, _, outcome = _settle(st, first, 1e-2, "converged")
    assert outcome == "accepted" and trial.params is best
    far = _Trial(best, ev_best, st.lnp - 5.0, exact, 5.0)  # a real loss is not second-guessed
    assert _settle(st, far, 1e-2, "converged")[2] == "converged"
