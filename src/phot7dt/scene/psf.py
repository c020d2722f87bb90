"""Point-spread functions: pixelized stamps, Moffat and Gaussian mixtures.

Every PSF is an immutable, picklable value that plays the roles of the
:class:`PSF` protocol, the only members the engine calls:

``fourier(size)``
    Complex ``(size, size//2 + 1)`` rfft2 transform of the unit-sum PSF whose
    centre sits at array index 0 (so multiplying by a phase ramp places it).
``wing_radius(threshold)``
    Smallest radius (px) beyond which the PSF never exceeds ``threshold``
    (a fraction of unit flux per pixel); used to size source stamps.
``half_size``
    Radius (px) of the PSF's own support (stamp half width, or 5 sigma).
``rms_width()``
    RMS width per axis (px) from the second moments; sizes galaxy stamps and
    sorts bands into the coadds of the coarse pass.
``caches_fourier``
    Whether ``fourier`` keeps its transforms (then :func:`fourier_in` keeps
    its dtype casts too).

:class:`PixelizedPSF` holds an odd-size stamp at native pixel scale, already
pixel-convolved (an ePSF); models built from it are pixel-integrated.  The
Gaussian mixtures are evaluated analytically in Fourier space, which means the
model is *point-sampled* at pixel centres, as the Tractor's MoG path is.
:class:`MoffatPSF` follows tract7dt: the profile is sampled at pixel centres on
a (2*radius + 1)**2 grid and normalised to unit sum, then used as a stamp for
point sources *and* galaxies (the Tractor uses a 3-Gaussian EM fit for galaxies).
:func:`fourier_in` and :class:`FourierStacks` cache the transforms the engine
multiplies with (cast to its dtypes, stacked over bands).
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "PSF",
    "FourierStacks",
    "GaussianMixturePSF",
    "MoffatPSF",
    "NCircularGaussianPSF",
    "PixelizedPSF",
    "fourier_in",
]


@runtime_checkable
class PSF(Protocol):
    """The roles a PSF plays for the engine (see the module docstring)."""

    caches_fourier: ClassVar[bool]

    @property
    def half_size(self) -> float:
        """Radius (px) of the PSF's own support."""

    def fourier(self, size: int) -> np.ndarray:
        """rfft2 transform, complex (size, size//2 + 1), of the unit-sum PSF centred at index 0."""

    def wing_radius(self, threshold) -> np.ndarray:
        """Smallest box half-width (px) beyond which the PSF stays below ``threshold``."""

    def rms_width(self) -> float:
        """RMS width per axis (px): sqrt of half the trace of the second-moment matrix."""


def _radial_wing(stamp):
    """Sorted box radii and the running max of |stamp| beyond each radius.

    The radius is the Chebyshev distance max(|dx|, |dy|) because source
    stamps are square boxes.
    """
    h, w = stamp.shape
    yy, xx = np.mgrid[:h, :w]
    r = np.maximum(np.abs(xx - w // 2), np.abs(yy - h // 2)).ravel().astype(float)
    order = np.argsort(r)[::-1]
    wing = np.maximum.accumulate(np.abs(stamp.ravel()[order]))
    return r[order][::-1], wing[::-1]


def _wing_lookup(radii, wing, threshold):
    """Largest radius whose wing value reaches ``threshold`` (0 if none)."""
    thr = np.asarray(threshold, float)
    n_ge = wing.size - np.searchsorted(wing[::-1], thr, side="left")
    return np.where(n_ge > 0, radii[np.maximum(n_ge - 1, 0)], 0.0)


class PixelizedPSF:
    """A native-pixel-scale PSF stamp (ePSF), normalised to unit sum.

    Parameters
    ----------
    stamp : array_like, shape (H, W)
        Odd-size, centred PSF image; must be finite with a positive sum.

    Raises
    ------
    ValueError
        If the stamp is not 2-D, has an even side, non-finite values or a
        non-positive sum.
    """

    caches_fourier: ClassVar[bool] = True

    def __init__(self, stamp):
        arr = np.array(stamp, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] % 2 == 0 or arr.shape[1] % 2 == 0:
            msg = f"PSF stamp must be 2-D with odd sides, got shape {arr.shape}"
            raise ValueError(msg)
        total = arr.sum()
        if not np.all(np.isfinite(arr)) or not total > 0:
            msg = f"PSF stamp must be finite with a positive sum (sum={total!r})"
            raise ValueError(msg)
        arr /= total
        arr.flags.writeable = False
        self._stamp = arr
        self._wing = None

    @property
    def stamp(self):
        """The unit-sum stamp, shape (H, W) (read-only)."""
        return self._stamp

    @property
    def half_size(self):
        """Half width of the stamp (px)."""
        return max(self._stamp.shape) // 2

    def fourier(self, size):
        """rfft2 of the stamp embedded (or centre-cropped) in a size x size box (cached)."""
        cache = self.__dict__.setdefault("_ft_cache", {})
        if size not in cache:
            cache[size] = self._fourier(size)
            cache[size].flags.writeable = False
        return cache[size]

    def _fourier(self, size):
        box = np.zeros((size, size))
        h, w = self._stamp.shape
        ys, xs = _embed_slices(h, size), _embed_slices(w, size)
        box[ys[0], xs[0]] = self._stamp[ys[1], xs[1]]
        return np.fft.rfft2(np.fft.ifftshift(box))

    def wing_radius(self, threshold):
        """Smallest box half-width (px) beyond which |PSF| < threshold everywhere.

        ``threshold`` may be an array; the result has its shape.
        """
        if self._wing is None:
            self._wing = _radial_wing(self._stamp)
        return _wing_lookup(*self._wing, threshold)

    def rms_width(self):
        """RMS width per axis (px) of the stamp's positive part about its central pixel (cached)."""
        width = self.__dict__.get("_rms_width")
        if width is None:
            st = np.maximum(self._stamp, 0.0)
            h, w = st.shape
            yy, xx = np.mgrid[:h, :w]
            r2 = (xx - w // 2) ** 2 + (yy - h // 2) ** 2
            width = self.__dict__["_rms_width"] = float(np.sqrt(0.5 * np.sum(st * r2) / st.sum()))
        return width

    def __getstate__(self):
        return {"stamp": self._stamp}

    def __setstate__(self, state):
        self.__init__(state["stamp"])

    def __eq__(self, other):
        return type(other) is type(self) and np.array_equal(self._stamp, other._stamp)

    def __hash__(self):
        return hash((type(self).__name__, self._stamp.shape, self._stamp.tobytes()))

    def __repr__(self):
        return f"{type(self).__name__}(stamp=<{self._stamp.shape[0]}x{self._stamp.shape[1]}>)"


def _embed_slices(n, size):
    """(destination, source) slices centring an odd length n in an even size box."""
    c_src, c_dst = n // 2, size // 2
    lo = max(0, c_src - c_dst)
    hi = min(n, c_src + (size - c_dst))
    return slice(c_dst - (c_src - lo), c_dst + (hi - c_src)), slice(lo, hi)


class MoffatPSF(PixelizedPSF):
    """Moffat profile I ~ (1 + r**2/alpha**2)**-beta sampled on a pixel grid.

    Parameters
    ----------
    fwhm : float
        Full width at half maximum (px), > 0.
    beta : float, optional
        Moffat index (tract7dt default 3.5), > 1.
    radius : int, optional
        Stamp half size (px); the stamp is (2*radius + 1)**2, normalised to 1.
    """

    def __init__(self, fwhm, beta=3.5, radius=25):
        if not (fwhm > 0 and beta > 1 and int(radius) >= 1):
            msg = f"bad Moffat parameters fwhm={fwhm!r}, beta={beta!r}, radius={radius!r}"
            raise ValueError(msg)
        self.fwhm, self.beta, self.radius = float(fwhm), float(beta), int(radius)
        alpha = self.fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / self.beta) - 1.0))
        yy, xx = np.mgrid[-self.radius : self.radius + 1, -self.radius : self.radius + 1]
        super().__init__((1.0 + (xx * xx + yy * yy) / alpha**2) ** (-self.beta))

    def __getstate__(self):
        return {"fwhm": self.fwhm, "beta": self.beta, "radius": self.radius}

    def __setstate__(self, state):
        self.__init__(**state)

    def __eq__(self, other):
        return type(other) is type(self) and self.__getstate__() == other.__getstate__()

    def __hash__(self):
        return hash((type(self).__name__, self.fwhm, self.beta, self.radius))

    def __repr__(self):
        return f"MoffatPSF(fwhm={self.fwhm!r}, beta={self.beta!r}, radius={self.radius!r})"


class GaussianMixturePSF:
    """PSF as a mixture of 2-D Gaussians (analytic, point-sampled).

    Parameters
    ----------
    amp : array_like, shape (J,)
        Component weights (normalised to unit sum).
    mean : array_like, shape (J, 2)
        Component centres (x, y) in px relative to the PSF centre.
    var : array_like, shape (J, 2, 2)
        Covariances (px**2), [[xx, xy], [xy, yy]], positive definite.
    """

    caches_fourier: ClassVar[bool] = False

    def __init__(self, amp, mean, var):
        amp = np.array(amp, float).ravel()
        mean = np.array(mean, float).reshape(amp.size, 2)
        var = np.array(var, float).reshape(amp.size, 2, 2)
        if not (amp.sum() > 0 and np.all(np.linalg.det(var) > 0)):
            msg = (
                "Gaussian-mixture PSF needs a positive total weight "
                "and positive-definite covariances"
            )
            raise ValueError(msg)
        self.amp, self.mean, self.var = amp / amp.sum(), mean, var
        for a in (self.amp, self.mean, self.var):
            a.flags.writeable = False

    @classmethod
    def from_stamp(cls, stamp, n_components=4, n_iter=1000):
        """Fit a Gaussian mixture to a pixel stamp by EM (see :mod:`._psf_fit`)."""
        from ._psf_fit import em_fit_stamp

        return cls(*em_fit_stamp(np.asarray(stamp, float), int(n_components), int(n_iter)))

    @property
    def half_size(self):
        """Five times the largest component sigma (px), at least 1."""
        return max(1.0, 5.0 * float(np.sqrt(np.linalg.eigvalsh(self.var).max())))

    def fourier(self, size):
        """Analytic transform at the rfft2 frequencies of a size x size grid."""
        ky = np.fft.fftfreq(size)[:, None]
        kx = np.fft.rfftfreq(size)[None, :]
        out = np.zeros((size, size // 2 + 1), complex)
        for a, m, v in zip(self.amp, self.mean, self.var, strict=True):
            quad = v[0, 0] * kx * kx + 2.0 * v[0, 1] * kx * ky + v[1, 1] * ky * ky
            out += a * np.exp(-2.0 * np.pi**2 * quad - 2j * np.pi * (kx * m[0] + ky * m[1]))
        return out

    def evaluate(self, dx, dy):
        """Point-sampled PSF value at offsets (dx, dy) px from its centre."""
        dx, dy = np.asarray(dx, float), np.asarray(dy, float)
        out = np.zeros(np.broadcast(dx, dy).shape)
        for a, m, v in zip(self.amp, self.mean, self.var, strict=True):
            inv = np.linalg.inv(v)
            x, y = dx - m[0], dy - m[1]
            d2 = inv[0, 0] * x * x + 2 * inv[0, 1] * x * y + inv[1, 1] * y * y
            out += a * np.exp(-0.5 * d2) / (2 * np.pi * np.sqrt(np.linalg.det(v)))
        return out

    def wing_radius(self, threshold):
        """Smallest box half-width (px) beyond which the PSF stays below threshold."""
        wing = self.__dict__.get("_wing")
        if wing is None:
            r = int(np.ceil(self.half_size * 2))
            yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
            wing = self.__dict__["_wing"] = _radial_wing(self.evaluate(xx, yy))
        return _wing_lookup(*wing, threshold)

    def rms_width(self):
        """RMS width per axis (px): sqrt(sum_j amp_j trace(var_j) / 2), offsets ignored."""
        return float(np.sqrt(0.5 * np.sum(self.amp * np.trace(self.var, axis1=1, axis2=2))))

    def __getstate__(self):
        return {"amp": self.amp, "mean": self.mean, "var": self.var}

    def __setstate__(self, state):
        GaussianMixturePSF.__init__(self, **state)

    def __eq__(self, other):
        return type(other) is type(self) and all(
            np.array_equal(getattr(self, k), getattr(other, k)) for k in ("amp", "mean", "var")
        )

    def __hash__(self):
        return hash(
            (type(self).__name__, self.amp.tobytes(), self.mean.tobytes(), self.var.tobytes())
        )

    def __repr__(self):
        return f"{type(self).__name__}(n_components={self.amp.size})"


class NCircularGaussianPSF(GaussianMixturePSF):
    """Concentric circular Gaussians (sigmas in px, weights); fixed, never fitted.

    Parameters
    ----------
    sigmas, weights : array_like, shape (J,)
        Component widths (px, > 0) and weights.
    """

    def __init__(self, sigmas, weights):
        self.sigmas = tuple(float(s) for s in np.ravel(sigmas))
        self.weights = tuple(float(w) for w in np.ravel(weights))
        if len(self.sigmas) != len(self.weights) or min(self.sigmas) <= 0:
            msg = f"need matching positive sigmas/weights, got {self.sigmas!r}, {self.weights!r}"
            raise ValueError(msg)
        var = np.array([s * s * np.eye(2) for s in self.sigmas])
        super().__init__(self.weights, np.zeros((len(self.sigmas), 2)), var)

    def __getstate__(self):
        return {"sigmas": self.sigmas, "weights": self.weights}

    def __setstate__(self, state):
        self.__init__(**state)

    def __repr__(self):
        return f"NCircularGaussianPSF(sigmas={self.sigmas!r}, weights={self.weights!r})"


def fourier_in(psf, size, dtype):
    """``psf.fourier(size)`` in ``dtype``; cast copies are cached where the transform itself is."""
    ft = psf.fourier(size)
    if ft.dtype == dtype:
        return ft
    if not psf.caches_fourier:  # (analytic PSFs: no cache either)
        return ft.astype(dtype)
    cache = psf.__dict__.setdefault("_ft_cast_cache", {})
    key = (size, np.dtype(dtype).str)
    if key not in cache:
        cache[key] = ft.astype(dtype)
        cache[key].flags.writeable = False
    return cache[key]


class FourierStacks:
    """Transforms of a list of PSFs stacked per (size, dtype), computed once; read-only."""

    def __init__(self, psfs):
        self.psfs = psfs
        self.stacks = {}

    def get(self, bands, size, dtype):
        """(len(bands), S, S//2+1): a view of the stack when ``bands`` is a contiguous run."""
        key = (size, np.dtype(dtype).str)
        stack = self.stacks.get(key)
        if stack is None:
            stack = np.stack([fourier_in(psf, size, dtype) for psf in self.psfs])
            stack.flags.writeable = False
            self.stacks[key] = stack
        bands = np.asarray(bands)
        if bands.size and np.all(np.diff(bands) == 1):
            return stack[bands[0] : bands[-1] + 1]
        return stack[bands]
