"""The run report is written when complete and at most every min_interval_s while running."""

from __future__ import annotations

import json

import pytest
from kedro.io import DatasetError

from phot7dt.datasets import RunReportDataset
from phot7dt.datasets import run_report as module


@pytest.fixture
def clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    return now


def test_incomplete_reports_are_thinned_and_the_complete_one_always_written(tmp_path, clock):
    path = tmp_path / "report.json"
    data = RunReportDataset(filepath=str(path), min_interval_s=10, save_args={"indent": 2})
    data.save({"complete": False, "n": 1})
    assert json.loads(path.read_text()) == {"complete": False, "n": 1}
    clock[0] += 5
    data.save({"complete": False, "n": 2})  # too soon: skipped
    assert data.load()["n"] == 1
    clock[0] += 6
    data.save({"complete": False, "n": 3})
    assert data.load()["n"] == 3
    data.save({"complete": True, "n": 4})  # at once
    assert data.load() == {"complete": True, "n": 4}
    data.save({"n": 5})  # a report without the key counts as complete
    assert data.load() == {"n": 5}


def test_bad_values_are_named(tmp_path):
    with pytest.raises(DatasetError, match="min_interval_s must be >= 0"):
        RunReportDataset(filepath=str(tmp_path / "r.json"), min_interval_s=-1)
    data = RunReportDataset(filepath=str(tmp_path / "r.json"))
    with pytest.raises(DatasetError, match="expected a JSON object"):
        data.save([1, 2])
    with pytest.raises(DatasetError, match="run report not found"):
        data.load()
