"""phot7dt: forced multi-band photometry for 7-Dimensional Telescope images."""

__version__ = "0.1.0"
