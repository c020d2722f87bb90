"""Kedro datasets for 7DT FITS images, image lists and tables."""
