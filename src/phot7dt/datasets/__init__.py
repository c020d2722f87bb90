"""Kedro datasets for 7DT FITS images, image lists, tables and frame sets."""

from phot7dt.datasets.fits_image import FITSImageDataset
from phot7dt.datasets.fits_table import FITSTableDataset
from phot7dt.datasets.frame_set import FrameSetDataset
from phot7dt.datasets.image_list import ImageListDataset, read_image_list
from phot7dt.frames import RawImage

__all__ = [
    "FITSImageDataset",
    "FITSTableDataset",
    "FrameSetDataset",
    "ImageListDataset",
    "RawImage",
    "read_image_list",
]
