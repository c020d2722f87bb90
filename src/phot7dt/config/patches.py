"""Parameter sections of the patching stage: tract7dt's ``patches`` and ``patch_inputs``.
The patch grid itself (``epsf.epsf_ngrid`` cells, ``epsf.ngrid`` patches per cell axis,
``epsf.final_psf_size`` for the halo) is read from the ``epsf`` section, where tract7dt
keeps it.
"""

from __future__ import annotations

from pydantic import Field

from phot7dt.config import Section


class PatchesParams(Section):
    """``patches``: patch geometry.

    Attributes
    ----------
    halo_pix_min : int
        Smallest halo around a patch's base box; the halo is
        ``max((epsf.final_psf_size - 1) // 2 + 2, halo_pix_min)``, pixels.
    """

    halo_pix_min: int = Field(20, ge=0)


class PatchInputsParams(Section):
    """``patch_inputs``: per-patch payloads.

    Payloads here are rows of one table (sources with patch-local positions and
    initial values) that reference pixel regions of the memory-mapped frames;
    no pixels are copied. tract7dt's keys about pickled pixel payloads
    (``save_patch_inputs``, ``include_wcs_in_payload``, ``max_workers``,
    ``gzip_compresslevel``, ``keep_payloads_in_memory``) are accepted so a
    tract7dt configuration validates, and have no effect.

    Attributes
    ----------
    skip_empty_patch : bool
        Drop patches whose base box holds no active source.
    save_patch_inputs, include_wcs_in_payload, keep_payloads_in_memory : bool
        tract7dt key; accepted, no effect.
    max_workers, gzip_compresslevel : int
        tract7dt key; accepted, no effect.
    """

    skip_empty_patch: bool = True
    save_patch_inputs: bool = True
    include_wcs_in_payload: bool = False
    max_workers: int = Field(16, ge=1)
    gzip_compresslevel: int = Field(1, ge=0, le=9)
    keep_payloads_in_memory: bool = False

