"""Files written atomically end with the user's umask (0644 under umask 022), not mkstemp's 0600."""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from phot7dt.datasets import AtomicCSVDataset, FITSImageDataset, ImageListDataset
from phot7dt.datasets._files import current_umask
from phot7dt.datasets.patch_results_dataset import PatchResultStore


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request):
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_the_mask_without_changing_it(umask):
    assert current_umask() == umask
    assert current_umask() == umask


def test_written_files_get_the_mode_of_any_new_file(umask, tmp_path):
    expected = 0o666 & ~umask  # 0644, 0640, 0664
    table = pd.DataFrame({"ID": ["a"], "FLUX": [1.0]})
    AtomicCSVDataset(filepath=str(tmp_path / "catalog.csv")).save(table)
    FITSImageDataset(filepath=str(tmp_path / "white.fits")).save(
        (np.zeros((3, 4), np.float32), fits.Header()))
    ImageListDataset(filepath=str(tmp_path / "list" / "image_list.txt")).save(
        {"m400": (np.zeros((3, 4), np.float32), fits.Header({"FILTER": "m400"}))})
    store = PatchResultStore(tmp_path / "patches")
    store.write("r00_c00", table, {"status": "fitted"})
    written = [tmp_path / "catalog.csv", tmp_path / "white.fits",
               tmp_path / "list" / "image_list.txt", tmp_path / "list" / "m400.fits",
               store.table_path("r00_c00"), store.meta_path("r00_c00")]
    assert {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in written} == {
        str(p.relative_to(tmp_path)): oct(expected) for p in written}
    assert pd.read_parquet(store.table_path("r00_c00")).equals(table)
    assert not [p for p in tmp_path.rglob(".*.tmp")]  # no temporary file left
