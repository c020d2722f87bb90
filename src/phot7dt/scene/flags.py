"""One registry of per-source fit outcome bit flags (after photutils' psf/flags.py).

A source's ``flags`` value is the OR of the bits below; 0 means a clean fit.
Use :func:`decode_flags` to turn a value into names.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["FLAGS", "FlagDefinition", "decode_flags", "flag_bit"]


class FlagDefinition(NamedTuple):
    """One outcome flag: bit value, short name, description."""

    bit_value: int
    name: str
    description: str


FLAGS = (
    FlagDefinition(
        1, "not_converged", "the final joint Gauss-Newton step failed the convergence test"
    ),
    FlagDefinition(
        2, "hit_max_iters", "not converged and its group used all n_opt_iters in its last stage"
    ),
    FlagDefinition(4, "pos_at_bound", "x or y ended on its pos_max_shift_pix box"),
    FlagDefinition(8, "re_at_bound", "r_e ended on re_min_pix or re_max_pix"),
    FlagDefinition(16, "ell_at_bound", "the axis ratio ended on q_min"),
    FlagDefinition(32, "sersic_n_at_bound", "Sersic n ended on 0.29 or 6.3"),
    FlagDefinition(64, "no_data", "at least one band has no unmasked pixel under the source"),
    FlagDefinition(128, "fully_masked", "no band has an unmasked pixel under the source"),
    FlagDefinition(256, "singular_fisher", "a Fisher block was singular (degenerate sources)"),
    FlagDefinition(
        512,
        "early_stage_not_converged",
        "a warm-up stage (positions, shapes) did not converge for its group",
    ),
    FlagDefinition(1024, "stalled", "no damped step improved ln P before convergence"),
    FlagDefinition(
        2048,
        "shape_unconstrained",
        "shape and n kept at the catalog values (Fisher errors above freeze_shape_sigma)",
    ),
    FlagDefinition(
        4096,
        "sersic_n_unconstrained",
        "Sersic n kept at the catalog value (Fisher error above freeze_sersic_n_sigma)",
    ),
    FlagDefinition(
        8192,
        "re_runaway",
        "r_e grew beyond re_runaway_factor x its catalog value: catalog shape and n kept",
    ),
)

_BY_NAME = {f.name: f for f in FLAGS}


def flag_bit(name):
    """Bit value of a flag name (KeyError naming the flag if unknown)."""
    try:
        return _BY_NAME[name].bit_value
    except KeyError:
        msg = f"unknown fit flag {name!r}; known: {sorted(_BY_NAME)}"
        raise KeyError(msg) from None


def decode_flags(value):
    """Names of the flags set in ``value`` (int), in bit order."""
    return [f.name for f in FLAGS if int(value) & f.bit_value]
