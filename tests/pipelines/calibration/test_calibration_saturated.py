"""zp.use_saturated: stars with a saturated core in a band calibrate it only when switched on."""

from __future__ import annotations

import numpy as np
import pytest
from calibration_field import OFFSETS, frame_set, synthetic_field
from matplotlib.figure import Figure

from phot7dt.pipelines.calibration.nodes import compute_zero_points, plot_zero_points

ZP = {"clip_sigma": 3.0, "clip_max_iters": 10, "zp_err_method": "all_mad"}
BIAS_MAG = 0.05  # wing fits of the saturated band made 0.05 mag too bright


def _field_with_saturated_stars():
    merged, gaia, _ = synthetic_field(np.random.default_rng(5), outlier_fraction=0.0)
    reliable = merged.index[merged["fit_is_reliable"] & merged["ID"].str.startswith("gaia_")]
    saturated = reliable[: len(reliable) // 2]  # half the good stars: enough to move the median
    merged["saturated_bands"] = ""
    merged.loc[saturated, "saturated_bands"] = "m400"
    merged.loc[saturated, "FLUX_m400_fit"] *= 10 ** (0.4 * BIAS_MAG)
    return merged, gaia, set(merged.loc[saturated, "ID"])


def test_saturated_core_stars_are_left_out_by_default():
    merged, gaia, saturated = _field_with_saturated_stars()
    summary, per_object = compute_zero_points(merged, gaia, frame_set(), ZP)
    m400 = per_object[per_object["band"] == "m400"]
    flagged = m400[m400["ID"].isin(saturated)]
    assert (flagged["status"] == "saturated").all() and flagged["saturated_core"].all()
    assert not per_object.loc[per_object["band"] != "m400", "saturated_core"].any()
    row = summary.set_index("band").loc["m400"]
    assert row["n_saturated"] == len(saturated)
    assert row["zp_offset"] == pytest.approx(OFFSETS["m400"], abs=0.01)
    # other bands keep those stars (their cores are not saturated there)
    m525 = per_object[(per_object["band"] == "m525") & per_object["ID"].isin(saturated)]
    assert m525["status"].isin(["kept", "clipped"]).all()


def test_use_saturated_puts_them_in_and_the_plot_marks_them():
    merged, gaia, saturated = _field_with_saturated_stars()
    summary, per_object = compute_zero_points(
        merged, gaia, frame_set(), {**ZP, "use_saturated": True}
    )
    m400 = per_object[(per_object["band"] == "m400") & per_object["ID"].isin(saturated)]
    assert m400["status"].isin(["kept", "clipped"]).all() and m400["saturated_core"].all()
    offset = summary.set_index("band").loc["m400", "zp_offset"]
    assert offset - OFFSETS["m400"] > 0.01  # the biased wing fluxes now pull the zero point
    figures = plot_zero_points(per_object, summary, {**ZP, "use_saturated": True},
                               {"detail": "full"})
    ax = figures["zp_vs_mag_full__m400.png"].axes[0]
    assert isinstance(figures["zp_vs_mag_full__m400.png"], Figure)
    labels = ax.get_legend_handles_labels()[1]
    assert any(label.startswith("saturated core, fitted from the wings") for label in labels)
    default = plot_zero_points(*compute_zero_points(merged, gaia, frame_set(), ZP)[::-1], ZP, {})
    labels = default["zp_vs_mag__m400.png"].axes[0].get_legend_handles_labels()[1]
    assert any(label.startswith("saturated core, not used") for label in labels)
