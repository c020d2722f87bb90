"""The HTML page of the report: inline CSS, figures as base64 PNG, nothing fetched from outside."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { border-bottom: 2px solid #446; } h2 { margin-top: 1.6em; color: #335; }
table { border-collapse: collapse; margin: 0.6em 0; }
td, th { border: 1px solid #bbb; padding: 3px 9px; text-align: right; }
th { background: #eef; } td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ccc; }
figcaption { font-size: 0.8em; color: #555; } .note { color: #777; font-style: italic; }
"""


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(v, digits)}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _headline(summary: Mapping[str, Any]) -> str:
    cat, patches = summary.get("catalog", {}), summary.get("patches", {})
    conv = cat.get("fraction_converged")
    rows = [
        ("catalog rows", cat.get("n_rows")),
        ("sources fitted", cat.get("n_fitted")),
        ("sources excluded", cat.get("n_excluded")),
        ("converged fraction", None if conv is None else f"{100 * conv:.1f} %"),
        ("patches fitted / failed", f"{patches.get('n_fitted')} / {patches.get('n_failed')}"),
    ]
    rows += [
        (f"excluded: {reason}", n) for reason, n in summary.get("excluded_reasons", {}).items()
    ]
    return "<h2>Headline</h2>" + _table(("quantity", "value"), rows)


def _bands(summary: Mapping[str, Any]) -> str:
    rows = [
        (b["band"], b["n_measured"], b["median_snr"], b["zp_median"], b["zp_err"], b["n_zp_stars"])
        for b in summary.get("bands", [])
    ]
    header = (
        "band",
        "sources measured",
        "median flux S/N",
        "ZP (mag)",
        "ZP error (mag)",
        "ZP stars",
    )
    return "<h2>Bands</h2>" + _table(header, rows, digits=4)


def _validation(summary: Mapping[str, Any]) -> str:
    val = dict(summary.get("validation", {}))
    if not val.pop("truth_available", False):
        return (
            "<h2>Validation</h2><p class='note'>No truth for this field (validation skipped).</p>"
        )
    snr_min = val.get("headline_snr_min")
    labels = {
        "star_pull_std": "star pull std, all bands",
        "star_pull_robust_std": "star pull robust std (1.4826 MAD)",
        "star_median_abs_bias_snr_gt": f"star median |flux bias|, S/N > {snr_min}",
        "max_abs_zp_error_mag": "max |ZP error| (mag)",
        "fraction_converged": "converged fraction",
    }
    rows = [(label, val.get(key)) for key, label in labels.items()]
    return "<h2>Validation against truth</h2>" + _table(("metric", "value"), rows, digits=4)


def _provenance(summary: Mapping[str, Any]) -> str:
    prov = summary.get("provenance") or {}
    if not prov:
        return "<h2>Provenance</h2><p class='note'>No provenance record for this catalog.</p>"
    rows = [
        ("phot7dt version", prov.get("phot7dt_version")),
        ("git commit", prov.get("git_commit")),
        ("pipeline", prov.get("pipeline")),
        ("run started (UTC)", prov.get("started_utc")),
        ("catalog written (UTC)", prov.get("catalog_utc")),
        ("parameters SHA-256", prov.get("parameters_sha256")),
    ]
    inputs = [(i["name"], i["path"], i["bytes"], i["sha256"]) for i in prov.get("inputs", [])]
    return ("<h2>Provenance</h2>" + _table(("item", "value"), rows)
            + _table(("input", "path", "bytes", "SHA-256"), inputs))


def shrink_png(png: bytes, max_width: int) -> bytes:
    """The PNG resampled to at most ``max_width`` pixels wide (unchanged when narrower)."""
    with Image.open(io.BytesIO(png)) as image:
        if image.width <= max_width:
            return png
        height = max(1, round(image.height * max_width / image.width))
        # bilinear: antialiased (its support widens with the reduction) and a third cheaper
        # than Lanczos; the shrink is at most a few-fold, so the text stays sharp
        small = image.convert("RGB").resize((max_width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    small.save(out, format="PNG", compress_level=1)  # zlib level 1: a few % larger, faster
    return out.getvalue()


def _figures(title: str, figures: Sequence[tuple[str, bytes]], max_width: int) -> str:
    if not figures:
        return (
            f"<h2>{html.escape(title)}</h2><p class='note'>No figure produced for this section.</p>"
        )
    items = "".join(
        f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,"
        f"{base64.b64encode(shrink_png(png, max_width)).decode('ascii')}'>"
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
        for name, png in figures
    )
    return f"<h2>{html.escape(title)}</h2>{items}"


def render_report(
    title: str,
    summary: Mapping[str, Any],
    sections: Mapping[str, Sequence[tuple[str, bytes]]],
    max_width: int = 1000,
) -> str:
    """The whole page: headline, bands, validation, each figure section (figures at most
    ``max_width`` pixels wide), then the catalog's provenance."""
    parts = [_headline(summary), _bands(summary), _validation(summary)]
    parts += [_figures(name, figs, max_width) for name, figs in sections.items()]
    parts.append(_provenance(summary))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{''.join(parts)}</body></html>\n"
    )
