"""GaiaXP ``ra``/``dec`` out of range: the catalog's rule (wrap RA, DEC outside [-90, 90] stops)."""

from __future__ import annotations

import pandas as pd
import pytest

from phot7dt.datasets import AtomicCSVDataset
from phot7dt.pipelines.gaia_augment.nodes import augment_catalog_with_gaia

SAT = {"enabled": True, "mode": "exclude", "radius_pix": 20.0, "require_all_bands": False}


def test_declination_outside_the_sphere_names_file_column_row_and_source_id(
    flagged_catalog, gaiaxp, frames, tmp_path
):
    gaiaxp.loc[2, "dec"] = -91.5
    path = tmp_path / "gaiaxp.csv"
    gaiaxp.to_csv(path, index=False)
    table = AtomicCSVDataset(filepath=str(path), load_args={"dtype": {"source_id": str}}).load()
    with pytest.raises(ValueError) as err:
        augment_catalog_with_gaia(flagged_catalog, table, frames, {}, SAT)
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        f"gaiaxp_synphot {path}: column 'dec' must be within [-90, 90] deg; first bad value "
        "-91.5 (data row 2, ID '1003'; 1 bad value(s) in all)"
    )


def test_right_ascension_is_wrapped_so_stars_still_match(flagged_catalog, gaiaxp, frames):
    reference, _ = augment_catalog_with_gaia(flagged_catalog, gaiaxp, frames, {}, SAT)
    shifted = gaiaxp.assign(ra=gaiaxp["ra"] - 360.0)  # the [-180, 180) convention
    out, _ = augment_catalog_with_gaia(flagged_catalog, shifted, frames, {}, SAT)
    pd.testing.assert_frame_equal(out, reference)
    assert out.loc[out["ID"] == "s1", "gaia_source_id"].item() == "1001"
