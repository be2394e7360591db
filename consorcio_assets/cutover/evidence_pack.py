"""The evidence pack: reports/cutover/<timestamp>.json and .html (self-contained, charts as inline SVG), and the
Markdown summary the `reports/cutover_readiness` asset carries. Keys and counts only, never customer values."""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from consorcio_assets.cutover.rehearsal import STAGES, Evidence

BAR_COLOURS = {"PASS": "#2e7d32", "WARN": "#f9a825", "FAIL": "#c62828"}


def _bars(title: str, items: Sequence[tuple[str, float]], colour=lambda label: "#1565c0", unit: str = "") -> str:
    """A horizontal bar chart as inline SVG."""
    width, row, label_w = 640, 22, 260
    top = max((v for _, v in items), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{row * len(items) + 30}" '
        f'role="img" aria-label="{html.escape(title)}"><text x="0" y="14" font-weight="bold">'
        f"{html.escape(title)}</text>"
    ]
    for i, (label, value) in enumerate(items):
        y = 24 + i * row
        w = (width - label_w - 90) * value / top
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12">{html.escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row - 6}" fill="{colour(label)}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="12">{value:,.3g}{unit}</text>'
        )
    return "".join(parts) + "</svg>"


def charts(evidence: Evidence) -> list[str]:
    totals = [(stage, sum(r[stage] or 0 for r in evidence.rows.values())) for stage in STAGES]
    outcomes = Counter(c["status"] for c in evidence.checks)
    return [
        _bars("Rows per stage (all tables)", totals),
        _bars(
            "Checks by outcome",
            [(s, outcomes.get(s, 0)) for s in ("PASS", "WARN", "FAIL")],
            colour=lambda label: BAR_COLOURS[label],
        ),
        _bars("Stage durations", list(evidence.timings.items()), unit=" s"),
    ]


def markdown(evidence: Evidence, report: Path | None = None) -> str:
    failed = [c for c in evidence.checks if c["status"] == "FAIL"]
    lines = [
        f"## Cutover rehearsal: **{evidence.verdict}**",
        "",
        f"- started {evidence.started}; {len(evidence.checks)} checks, {len(failed)} failed; "
        f"{sum(s['passed'] for s in evidence.smoke)}/{len(evidence.smoke)} smoke steps passed",
        f"- source frozen: {all(f['frozen'] for f in evidence.frozen)}",
    ]
    if report:
        lines.append(f"- report: {report}")
    lines += [f"- NO-GO because: {r}" for r in evidence.reasons]
    lines += ["", "| table | " + " | ".join(STAGES) + " |", "|---" * (len(STAGES) + 1) + "|"]
    lines += [
        f"| {t} | " + " | ".join("-" if r[s] is None else f"{r[s]:,}" for s in STAGES) + " |"
        for t, r in evidence.rows.items()
    ]
    return "\n".join(lines)


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(evidence: Evidence) -> str:
    colour = "#2e7d32" if evidence.verdict == "GO" else "#c62828"
    sections = [
        f'<h1>Cutover rehearsal <span style="color:{colour}">{evidence.verdict}</span></h1>',
        f"<p>Started {html.escape(evidence.started)}.</p>",
        "<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in evidence.reasons) + "</ul>" if evidence.reasons else "",
        "".join(f"<div>{svg}</div>" for svg in charts(evidence)),
        "<h2>Rows per table and stage</h2>",
        _table(["table", *STAGES], [[t, *(r[s] for s in STAGES)] for t, r in evidence.rows.items()]),
        "<h2>Source frozen (data version: rows, highest rowversion)</h2>",
        _table(
            ["table", "source", "aurora", "frozen"],
            [[f["table"], json.dumps(f["source"]), json.dumps(f["aurora"]), f["frozen"]] for f in evidence.frozen],
        ),
        "<h2>Application smoke workload (rolled back)</h2>",
        _table(
            ["step", "passed", "accepted", "seconds", "detail", "table", "column", "constraint", "SQLSTATE"],
            [
                [
                    s["name"],
                    s["passed"],
                    s["accepted"],
                    s["seconds"],
                    s["detail"],
                    s["table"],
                    s["column"],
                    s["constraint"],
                    s["sqlstate"],
                ]
                for s in evidence.smoke
            ],
        ),
        "<h2>Checks</h2>",
        _table(
            ["status", "stage", "table", "check", "counts", "seconds", "summary"],
            [
                [c["status"], c["stage"], c["table"], c["check"], json.dumps(c["counts"]), c["seconds"], c["summary"]]
                for c in evidence.checks
            ],
        ),
        "<h2>Accepted semantic differences</h2>",
        _table(["difference", "count"], [[a["what"], a["count"]] for a in evidence.accepted]),
        "<h2>Timings (s)</h2>",
        _table(["stage", "seconds"], [[k, v] for k, v in evidence.timings.items()]),
    ]
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1em}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px;text-align:left}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Cutover rehearsal {evidence.verdict}</title>"
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>"
    )


def write_report(evidence: Evidence, out_dir: Path) -> Path:
    """<out_dir>/<timestamp>.html and .json; returns the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = evidence.started.replace(":", "").replace("-", "").replace("+0000", "Z")
    base = out_dir / stamp
    n = 1
    while base.with_suffix(".json").exists():
        base, n = out_dir / f"{stamp}-{n}", n + 1
    base.with_suffix(".json").write_text(json.dumps(evidence.to_dict(), indent=2, default=str), encoding="utf-8")
    base.with_suffix(".html").write_text(render_html(evidence), encoding="utf-8")
    return base.with_suffix(".html")
