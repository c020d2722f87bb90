"""Zero points on the simulator's medium field, with its truth fluxes standing in for the fit.

Checks the zero-point convention end to end against ``truth_bands``: the
recovered ``zp_median - zp_ref`` must equal ``zp_true - ZP_AUTO``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from phot7dt.frames import Box, Frame, FrameSet
from phot7dt.pipelines.calibration.nodes import compute_zero_points
from phot7dt.pipelines.simulate.nodes import build_sim_gaiaxp, draw_sim_bands, draw_sim_sources

SIMULATE = {"preset": "medium", "seed": 7}


def test_zero_point_offsets_match_simulated_zp_auto_errors():
    truth_bands = draw_sim_bands(SIMULATE)
    sources = draw_sim_sources(truth_bands, SIMULATE)
    gaia = build_sim_gaiaxp(sources, SIMULATE)
    rng = np.random.default_rng(0)
    merged = pd.DataFrame({"ID": sources["ID"].astype(str),
                           "gaia_source_id": sources["gaia_source_id"].fillna("").astype(str),
                           "fit_is_reliable": True})
    for band in truth_bands["band"]:
        flux = sources[f"FLUX_{band}"].to_numpy(dtype=float)
        sigma = np.sqrt(np.clip(flux, 0.0, None) * 0.5 + 30.0**2)
        merged[f"FLUX_{band}_fit"] = flux + rng.normal(0.0, sigma)
        merged[f"FLUXERR_{band}_fit"] = sigma
    frames = FrameSet(
        tuple(Frame(band, "/unused", 0, float(zp_auto), 1.0, 1.0, np.inf, np.inf, 3.0, 1.0)
              for band, zp_auto in zip(truth_bands["band"], truth_bands["zp_auto"], strict=True)),
        Box(0, 0, 1, 1), (1, 1), 25.0, "")
    summary, _ = compute_zero_points(merged, gaia, frames, {})
    expected = (truth_bands["zp_true"] - truth_bands["zp_auto"]).to_numpy()
    error = summary["zp_offset"].to_numpy() - expected
    assert summary["n_kept"].min() > 100
    assert np.all(np.abs(error) < np.maximum(0.01, 3 * summary["zp_err"].to_numpy()))
