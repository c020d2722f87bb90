"""PatchModelsDataset (fitted model images), FITSHeaderDataset (merge.wcs_fits), ModelPlan."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from kedro.io import DatasetError

from phot7dt.config.ingest import SUMMARY_PATCHES
from phot7dt.datasets import FITSHeaderDataset, PatchModelsDataset
from phot7dt.datasets.patch_models import ModelImage
from phot7dt.pipelines.fitting.patch_views import ModelPlan


def test_patch_models_round_trip_lazy_and_removal(tmp_path):
    dataset = PatchModelsDataset(str(tmp_path / "models"))
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    dataset.save({"p1/m400": ModelImage(image, 10, 20),
                  "p1/m500": lambda: ModelImage(image, 10, 20)})
    models = dataset.load()
    got = models.get("p1", "m400")
    assert (got.x0, got.y0) == (10, 20) and np.array_equal(got.image, image)
    assert models.cube("p1", ("m400", "m500")).shape == (2, 3, 4)
    assert models.cube("p1", ("m400", "m600")) is None and models.get("p2", "m400") is None
    dataset.save({"p1/m400": None, "p1/m500": None})
    assert models.keys() == [] and not (tmp_path / "models" / "p1").exists()
    for bad in ("../m400", "p1/../m400", "p1"):
        with pytest.raises(DatasetError, match="expected '<patch tag>/<band>'"):
            dataset.save({bad: None})
    assert not list(tmp_path.rglob(".*.tmp"))


def test_fits_header_dataset(tmp_path):
    path = tmp_path / "wcs.fits"
    fits.PrimaryHDU(header=fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN"})).writeto(path)
    assert FITSHeaderDataset(filepath=str(path))._exists()
    assert FITSHeaderDataset(filepath=str(path)).load()["CTYPE1"] == "RA---TAN"
    assert FITSHeaderDataset(filepath=str(tmp_path / "none"), optional=True).load() is None
    with pytest.raises(DatasetError, match=r"FITS file .*missing\.fits: file not found"):
        FITSHeaderDataset(filepath=str(tmp_path / "missing.fits"), optional=True).load()


def test_model_plan_keeps_the_summary_patches_as_they_finish():
    bands = ("m400", "m500", "m600")
    plan = ModelPlan(bands, "summary", "m500")
    assert plan.task_bands == bands
    kept = {}
    # patch i has i unconverged sources: the last SUMMARY_PATCHES patches win
    n = SUMMARY_PATCHES + 3
    for i in range(n):
        save, drop = plan.keys(f"p{i}", pd.Series([False] * i + [True] * 3))
        kept.update(dict.fromkeys(save, True))
        for key in drop:
            kept.pop(key, None)
    full = sorted({k.split("/")[0] for k in kept if not k.endswith("/m500")})
    assert full == [f"p{i}" for i in range(n - SUMMARY_PATCHES, n)]
    assert all(f"p{i}/m500" in kept for i in range(n))  # the report band of every patch
    assert ModelPlan(bands, "none", None).task_bands == ()
    assert ModelPlan(bands, "all", None).keys("p0", pd.Series([True])) == (
        [f"p0/{b}" for b in bands], [])
    assert ModelPlan(bands, "all", "m500").keys("p0", None) == ([], [f"p0/{b}" for b in bands])
