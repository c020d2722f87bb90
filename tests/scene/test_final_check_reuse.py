"""The final check may stand on the last group evaluation: it must equal a fresh whole-patch one."""

from __future__ import annotations

import numpy as np

from phot7dt import scene
from phot7dt.scene import _schedule


def test_joined_final_evaluation_equals_the_whole_patch_one(monkeypatch):
    rng = np.random.default_rng(2)
    n_band, shape = 8, (140, 140)
    psfs = [scene.MoffatPSF(f) for f in np.linspace(3.4, 4.2, n_band)]
    kinds = ["STAR", "EXP", "STAR", "EXP", "STAR"]
    lr, e1, e2 = scene.catalog_to_soft(2.5, 0.3, 30.0)
    truth = np.array(
        [
            [18.3, 20.6, 0, 0, 0, 1],
            [22.1, 23.4, lr, e1, e2, 1],
            [25.7, 17.9, 0, 0, 0, 1],
            [121.2, 120.4, lr, e1, e2, 1],
            [117.5, 124.8, 0, 0, 0, 1],
        ]
    )
    flux = rng.uniform(800, 3000, (5, n_band))
    flux[1] *= (
        0.15  # a faint galaxy in the blend converges after the stars (active set, then re-test)
    )
    model = scene.render_model(shape, psfs, kinds, truth, flux)
    images = model + rng.normal(0, 1.0, model.shape)
    src = {
        "x": truth[:, 0] + [0.05, 0.9, -0.05, 0.3, 0.2],
        "y": truth[:, 1] + [0.05, -0.8, 0.02, 0.1, 0.1],
        "type": kinds,
        "re_pix": [np.nan, 3.5, np.nan, 2.5, np.nan],
        "ell": [np.nan, 0.1, np.nan, 0.3, np.nan],
        "theta_deg": [np.nan, 0.0, np.nan, 30.0, np.nan],
        "target": [True, True, True, False, False],
    }  # the far pair: neighbours modelled for their light
    checked = []
    real_check, real_joined = _schedule.final_check, _schedule._joined

    def both(model, prob, params, sizes, free, anchors, reusable=()):
        joined = real_joined(model, params, sizes, free, anchors, reusable)
        fresh_ev, fresh_ok = real_check(model, prob, params, sizes, free, anchors)
        ev, ok = real_check(model, prob, params, sizes, free, anchors, reusable)
        checked.append(joined is not None)
        assert np.array_equal(ok, fresh_ok)
        assert abs(ev.lnlike - fresh_ev.lnlike) < 1e-9 * abs(fresh_ev.lnlike)
        for name in ("fluxes", "flux_var", "fisher", "grad"):
            np.testing.assert_allclose(
                getattr(ev, name), getattr(fresh_ev, name), rtol=1e-9, atol=1e-12
            )
        np.testing.assert_allclose(
            np.stack(ev.z_blocks), np.stack(fresh_ev.z_blocks), rtol=1e-9, atol=1e-12
        )
        return ev, ok

    monkeypatch.setattr(_schedule, "final_check", both)
    res = scene.fit_patch(images, np.ones_like(images), psfs, src, gain=np.full(n_band, 5.0))
    assert any(checked)  # the joined evaluation was used, not only the fallback
    assert res.converged[:3].all()
