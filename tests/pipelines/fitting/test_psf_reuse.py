"""Engine PSFs are shared by patches with the same PSF stamp; the PSF transform stack is exact."""

from __future__ import annotations

import types

import numpy as np

from phot7dt.pipelines.fitting.psf_audit import build_psfs
from phot7dt.psf_grid import PSFChoice
from phot7dt.scene import GaussianMixturePSF, PixelizedPSF
from phot7dt.scene._engine import PatchModel


def _stamp(sigma, size=25):
    y, x = np.mgrid[:size, :size] - size // 2
    s = np.exp(-0.5 * (x**2 + y**2) / sigma**2)
    return s / s.sum()


def _choice(stamp, fallback=False):
    return PSFChoice(
        "moffat" if fallback else "epsf", stamp, 2.355 * 1.5, None, 0 if fallback else 12, "test"
    )


def _config(model="pixelized", n=3):
    return types.SimpleNamespace(bands=("a", "b"), psf_model=model, gaussian_mixture_n=n)


def test_patches_with_the_same_stamps_share_their_engine_psfs():
    first, _ = build_psfs([_choice(_stamp(1.5)), _choice(_stamp(2.0))], _config())
    again, _ = build_psfs([_choice(_stamp(1.5).copy()), _choice(_stamp(2.1))], _config())
    assert isinstance(first[0], PixelizedPSF)
    assert again[0] is first[0]  # same pixels: the same object, with its cached transforms
    assert again[1] is not first[1]
    np.testing.assert_allclose(again[1].stamp, _stamp(2.1))


def test_the_psf_model_setting_is_part_of_the_key():
    pix, _ = build_psfs([_choice(_stamp(1.7))] * 2, _config("pixelized"))
    mix, _ = build_psfs([_choice(_stamp(1.7))] * 2, _config("gaussian_mixture_from_stamp"))
    fallback, _ = build_psfs(
        [_choice(_stamp(1.7), fallback=True)] * 2, _config("gaussian_mixture_from_stamp")
    )
    assert isinstance(pix[0], PixelizedPSF)
    assert isinstance(mix[0], GaussianMixturePSF)
    assert isinstance(fallback[0], PixelizedPSF)  # a fallback stamp is always used as pixels


def test_psf_transform_stack_equals_each_band_transform():
    psfs = [PixelizedPSF(_stamp(s)) for s in (1.2, 1.6, 2.0, 2.4)]
    img = np.zeros((4, 40, 40))
    model = PatchModel(
        img, np.ones_like(img), psfs, ["STAR"], (np.full((1, 4), np.nan), np.full((1, 4), np.nan))
    )
    for bands in (np.arange(4), np.array([1, 2]), np.array([3, 0]), np.array([2])):
        for dtype in (np.complex128, np.complex64):
            stack = model.psf_fourier_stack(bands, 32, dtype)
            assert stack.dtype == dtype
            for row, b in zip(stack, bands, strict=True):
                np.testing.assert_allclose(
                    row, psfs[b].fourier(32).astype(dtype), rtol=0, atol=1e-7
                )
