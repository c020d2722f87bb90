"""Kedro pipelines of phot7dt, one folder per stage."""
