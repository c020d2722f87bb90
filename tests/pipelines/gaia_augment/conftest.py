"""Fixtures: the small field of gaia_field.py."""

from __future__ import annotations

import pandas as pd
import pytest
from gaia_field import make_flagged_catalog, make_frames, make_gaiaxp

from phot7dt.frames import FrameSet


@pytest.fixture
def frames(tmp_path) -> FrameSet:
    return make_frames(tmp_path)


@pytest.fixture
def flagged_catalog() -> pd.DataFrame:
    return make_flagged_catalog()


@pytest.fixture
def gaiaxp() -> pd.DataFrame:
    return make_gaiaxp()
