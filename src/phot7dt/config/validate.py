"""Parameter section of the validate pipeline (phot7dt's own; tract7dt has no truth check)."""

from __future__ import annotations

from pydantic import Field, field_validator

from phot7dt.config import Section


class ValidateParams(Section):
    """``validate``: how the final catalog is compared with the simulator's truth.

    Attributes
    ----------
    snr_bin_edges : list of float
        Edges of the S/N bins (true flux over fitted flux error), increasing.
    headline_snr_min : float
        S/N above which star flux biases enter the headline ``median |bias|``.
    min_per_bin : int
        Bins with fewer sources get no statistics (``n`` is still reported).
    require_converged : bool
        Keep only sources whose optimiser converged.
    theta_min_ell : float
        Position angles are compared only for galaxies at least this elongated (true ELL).
    max_listed_missing : int
        How many IDs of truth sources absent from the catalog the JSON lists.
    """

    snr_bin_edges: list[float] = Field(
        [3.0, 10.0, 20.0, 50.0, 100.0, 300.0, 1000.0, 1.0e6],
        min_length=2,
        description="edges of the S/N bins, S/N = true flux / FLUXERR_fit",
    )
    headline_snr_min: float = Field(20.0, ge=0, description="S/N cut of the headline star bias")
    min_per_bin: int = Field(5, ge=1, description="fewest sources for a bin's statistics")
    require_converged: bool = Field(False, description="keep only sources with opt_converged")
    theta_min_ell: float = Field(
        0.2, ge=0, lt=1, description="smallest true ELL for which THETA is compared"
    )
    max_listed_missing: int = Field(
        50, ge=0, description="truth IDs absent from the catalog listed in the JSON"
    )

    @field_validator("snr_bin_edges")
    @classmethod
    def _increasing(cls, edges: list[float]) -> list[float]:
        if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise ValueError(f"must increase strictly, got {edges}")
        return edges

