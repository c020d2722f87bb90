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
    x, y = np.array([30.0, 45.0]), np.array([20.0, 45.0])
    got = masked_psf_fraction(invvar, [stamp, stamp], x, y)
    assert got[0, 0] == pytest.approx(stamp[6:9, 6:9].sum())
    assert got[0, 1] == 0.0 and got[1, 0] == 0.0
    # near the patch edge the part of the stamp outside the patch is not counted as masked
    edge = masked_psf_fraction(invvar, [stamp, stamp], np.array([1.0]), np.array([1.0]))
    assert edge[0, 0] == 0.0


def test_bright_artefacts_are_grown_further_than_faint_ones():
    from phot7dt.pipelines.fitting.cleaning import grow_bright_artefacts

    mask = np.zeros((1, 40, 40), bool)
    signif = np.zeros((1, 40, 40))
    mask[0, 10, 10] = mask[0, 30, 30] = True
    signif[0, 10, 10], signif[0, 30, 30] = 20.0, 800.0
    grown = grow_bright_artefacts(mask, signif)
    assert grown[0, 8:13, 8:13].sum() == 1  # faint: left to the detector's own growth
    # 800 sigma: a disk of 2 px more
    assert grown[0, 28:33, 30].all() and grown[0, 30, 28:33].all() and grown[0, 29:32, 29:32].all()
    assert not grown[0, 27, 27]


def test_masked_pixels_are_counted_within_each_source_radius_over_all_bands():
    from phot7dt.pipelines.fitting.cleaning import masked_pixels_per_source

    art = np.zeros((3, 50, 50), bool)
    art[0, 10, 12] = art[1, 10, 12] = True  # 2 px from source 0, in two bands
    art[2, 40, 40] = True  # far from both
    got = masked_pixels_per_source(art, np.array([10.0, 30.0, np.nan]),
                                   np.array([10.0, 30.0, 5.0]), np.array([3.0, 3.0, 3.0]))
    assert got.tolist() == [2, 0, 0]
