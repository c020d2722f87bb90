"""The PSF-model error of a source grows with the part of its PSF that is masked."""

from __future__ import annotations

import numpy as np
import pytest

from phot7dt.pipelines.fitting.cleaning import masked_psf_fraction


def test_masked_fraction_of_a_saturated_core_and_of_a_clean_star():
    yy, xx = np.mgrid[0:15, 0:15]
    stamp = np.exp(-((xx - 7) ** 2 + (yy - 7) ** 2) / (2 * 1.5**2))
    stamp /= stamp.sum()
    invvar = np.ones((2, 60, 60), np.float32)
    invvar[0, 19:22, 29:32] = 0.0  # a 3x3 saturated core at (30, 20) in band 0
    got = masked_psf_fraction(invvar, [stamp, stamp], np.array([30.0, 45.0]), np.array([20.0, 45.0]))
    assert got[0, 0] == pytest.approx(stamp[6:9, 6:9].sum())
    assert got[0, 1] == 0.0 and got[1, 0] == 0.0
    # near the patch edge the part of the stamp outside the patch is not counted as masked
    edge = masked_psf_fraction(invvar, [stamp, stamp], np.array([1.0]), np.array([1.0]))
    assert edge[0, 0] == 0.0
