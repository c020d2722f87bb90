"""Kedro datasets for 7DT FITS images, image lists, tables, frame sets and ePSF grids."""

from phot7dt.datasets.atomic_csv import AtomicCSVDataset
from phot7dt.datasets.fits_image import FITSHeaderDataset, FITSImageDataset
from phot7dt.datasets.fits_table import FITSTableDataset
from phot7dt.datasets.frame_set import FrameSetDataset
from phot7dt.datasets.image_list import ImageListDataset, read_image_list
from phot7dt.datasets.optional import OptionalDataset
from phot7dt.datasets.parquet_table import ParquetTableDataset
from phot7dt.datasets.patch_models import PatchModelsDataset
from phot7dt.datasets.patch_results_dataset import PatchResultsDataset
from phot7dt.datasets.png import PNGDataset
from phot7dt.datasets.psf_grid_dataset import PSFGridDataset
from phot7dt.datasets.run_report import RunReportDataset
from phot7dt.frames import RawImage

__all__ = [
    "AtomicCSVDataset",
    "FITSHeaderDataset",
    "FITSImageDataset",
    "FITSTableDataset",
    "FrameSetDataset",
    "ImageListDataset",
    "OptionalDataset",
    "ParquetTableDataset",
    "PatchModelsDataset",
    "PatchResultsDataset",
    "PNGDataset",
    "PSFGridDataset",
    "RawImage",
    "RunReportDataset",
    "read_image_list",
]
