"""gaia_augment followed by masking, run in memory with SequentialRunner."""

from __future__ import annotations

import logging

import numpy as np
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure

from phot7dt.pipelines.gaia_augment import create_pipeline as gaia_augment
from phot7dt.pipelines.masking import create_pipeline as masking


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner does not empty after its last consumer, to inspect it."""

    def _release(self) -> None:
        pass


OUTPUTS = ("augmented_catalog", "gaia_augment_summary", "bright_mask", "active_catalog")


def white_stack_of(frames):
    """Inverse-variance white stack and sigma of the frames (small field: whole arrays)."""
    num = np.zeros(frames.shape)
    den = np.zeros(frames.shape)
    for f in frames.frames:
        w = 1.0 / f.sky_sigma**2
        num += w * frames.raw(f.band) * f.scale
        den += w
    header = frames.wcs.to_header()
    return (num / den).astype(np.float32), header, den**-0.5


def test_gaia_augment_then_masking(flagged_catalog, gaiaxp, frames, caplog):
    caplog.set_level(logging.INFO, logger="kedro")
    white, header, sigma = white_stack_of(frames)
    white -= np.median(white)  # sky-subtracted, as the simulated sample
    catalog = DataCatalog(
        {
            "flagged_catalog": MemoryDataset(flagged_catalog),
            "gaiaxp_synphot": MemoryDataset(gaiaxp),
            "frames": MemoryDataset(frames, copy_mode="assign"),
            "white_stack": MemoryDataset((white, header), copy_mode="assign"),
            "white_sigma": MemoryDataset((sigma.astype(np.float32), header), copy_mode="assign"),
            "params:zp": MemoryDataset({}),
            "params:source_saturation_cut": MemoryDataset({"mode": "exclude"}),
            "params:bright_mask": MemoryDataset({}),
            **{name: KeptDataset(copy_mode="assign") for name in OUTPUTS},
        }
    )
    plots = SequentialRunner().run(gaia_augment() + masking(), catalog)
    assert "Pipeline execution completed successfully" in caplog.text
    active = catalog.load("active_catalog")
    assert len(active) == len(flagged_catalog) + 3
    mask, mask_header = catalog.load("bright_mask")
    # the saturated block is bright, listed only by an excluded (saturated) star: masked
    assert mask[40, 150] == 1 and mask_header["BMNPIX"] == mask.sum()
    flags = dict(zip(active["ID"], active["affected_by_bright_mask"], strict=True))
    assert flags["gaia_1004"] and not flags["gaia_1003"]
    assert isinstance(plots["gaia_augmentation_overlay"].load(), Figure)
    assert isinstance(plots["bright_mask_overlay"].load(), Figure)
    assert catalog.load("gaia_augment_summary")["n_injected"] == 3
