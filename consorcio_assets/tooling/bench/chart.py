"""The benchmark's picture: rows/s per stage beside its anchors, a hand-written SVG written next to the JSON.

Bars are on a log scale (pandas `to_sql` and a server-side COPY differ by orders of magnitude); every bar is
labelled with its figure, so nothing has to be read off the axis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from html import escape
from pathlib import Path

#: (stage label, our figure's key, [(anchor label, its key)]) — the same pairs as the Markdown table
ROWS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "extract (DMS engine)",
        "stages.extract.rows_per_s",
        (("DuckDB COPY TO parquet", "stages.extract.floor_rows_per_s"),),
    ),
    (
        "transform (Glue job)",
        "stages.transform.rows_per_s",
        (("pyarrow read + write", "stages.transform.floor_rows_per_s"),),
    ),
    (
        "Aurora load",
        "stages.aurora_load.rows_per_s",
        (
            ("server-side COPY (floor)", "stages.aurora_load.copy_floor_rows_per_s"),
            ("ADBC adbc_ingest", "stages.aurora_load.adbc_rows_per_s"),
            ("pandas to_sql()", "stages.aurora_load.to_sql_rows_per_s"),
            ("pandas to_sql(multi)", "stages.aurora_load.to_sql_multi_rows_per_s"),
            ("awswrangler to_sql", "stages.aurora_load.awswrangler_rows_per_s"),
        ),
    ),
    ("end to end (migrate_all)", "end_to_end.rows_per_s", ()),
)
OURS, ANCHOR = "#FF9900", "#7B8894"
BAR_H, GAP, LEFT, WIDTH, TOP = 18, 8, 230, 520, 56


def _get(tree: Mapping, dotted: str):
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, (int, float)) else None


def bars(result: Mapping) -> list[tuple[str, str, float, bool]]:
    """(stage, label, rows/s, ours?) for every figure present, in the table's order."""
    out = []
    for stage, key, anchors in ROWS:
        for label, k, ours in ((f"ours: {stage}", key, True), *((a, ak, False) for a, ak in anchors)):
            value = _get(result, k)
            if value is not None and value > 0:
                out.append((stage, label, float(value), ours))
    return out


def _x(value: float, top: float) -> float:
    """Log-scale bar length: 1 row/s is 0, the largest figure is the full width."""
    return WIDTH * math.log10(max(value, 1.0)) / math.log10(max(top, 10.0))


def render_svg(result: Mapping) -> str:
    data = bars(result)
    top = max((v for *_, v, _ in data), default=10.0)
    scale = result.get("scale", {})
    title = (
        f"rows/s per stage beside its anchors — {scale.get('simulacoes', 0):,} simulações, "
        f"{scale.get('rows_total', 0):,} rows, median of {result.get('runs', 0)} run(s) (log scale)"
    )
    height = TOP + len(data) * (BAR_H + GAP) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LEFT + WIDTH + 140}" height="{height}" '
        'font-family="Helvetica, Arial, sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<text x="10" y="40" fill="{OURS}">■ ours</text><text x="70" y="40" fill="{ANCHOR}">■ anchor</text>',
    ]
    y, previous = TOP, None
    for stage, label, value, ours in data:
        if previous is not None and stage != previous:
            parts.append(
                f'<line x1="10" x2="{LEFT + WIDTH + 130}" y1="{y - GAP / 2}" y2="{y - GAP / 2}" stroke="#DDDDDD"/>'
            )
        length = max(_x(value, top), 1.0)
        weight = ' font-weight="bold"' if ours else ""
        parts += [
            f'<text x="{LEFT - 8}" y="{y + BAR_H - 5}" text-anchor="end"{weight}>{escape(label)}</text>',
            f'<rect x="{LEFT}" y="{y}" width="{length:.1f}" height="{BAR_H}" fill="{OURS if ours else ANCHOR}"/>',
            f'<text x="{LEFT + length + 6:.1f}" y="{y + BAR_H - 5}">{value:,.0f} rows/s</text>',
        ]
        y, previous = y + BAR_H + GAP, stage
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def chart_path(json_path: Path) -> Path:
    return json_path.with_suffix(".svg")


def write_chart(result: Mapping, json_path: Path) -> Path:
    """The chart next to the result's JSON (same name, .svg)."""
    path = chart_path(json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_svg(result))
    return path
