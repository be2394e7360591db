"""`consorcio cutover --rehearse`: is Aurora ready to be the application's database? GO or NO-GO, with evidence.

In order: the source is frozen (each table's data version, row count and highest rowversion, equals what Aurora
holds: nothing was written since the last load), every check of every stage runs, and the application smoke
workload runs in a rolled-back transaction. GO only when the source is frozen, every ERROR check passes and
every smoke step passes. Nothing in Aurora changes.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from consorcio_assets.catalog import Catalog, Table, catalog
from consorcio_assets.catalog.collations import REMAINING_DIFFERENCES
from consorcio_assets.checks import parity, precision
from consorcio_assets.checks.outcome import ERROR, Outcome, failed_to_run, safe_error
from consorcio_assets.checks.sides import Side
from consorcio_assets.common.lake_zones import Lake
from consorcio_assets.cutover import smoke

GO, NO_GO = "GO", "NO-GO"
STAGES = ("source", "raw", "transformed", "aurora")


@dataclass
class Evidence:
    started: str
    rows: dict[str, dict[str, int | None]] = field(default_factory=dict)  # table -> stage -> rows
    frozen: list[dict] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)
    smoke: list[dict] = field(default_factory=list)
    accepted: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    verdict: str = NO_GO
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def data_version(side: Side, table: Table) -> dict:
    """Rows and highest rowversion of a table on one side (what a write to the source changes)."""
    clause = side.table(table)
    columns: list[sa.ColumnElement] = [sa.func.count()]
    rv = [c for c in table.columns if c.is_rowversion]
    if rv:  # as hex text: PostgreSQL has no max(bytea); equal-length hex sorts as the number does
        col = side.col(clause, rv[0])
        text = sa.func.encode(col, "hex") if side.dialect == "postgresql" else sa.func.lower(sa.func.hex(col))
        columns.append(sa.func.max(text))
    with side.engine.connect() as conn:
        row = conn.execute(sa.select(*columns).select_from(clause)).one()
    return {"rows": int(row[0]), "max_rowversion": row[1] if rv else None}


def source_frozen(source: Side, target: Side, cat: Catalog) -> list[dict]:
    out = []
    for table in cat.base_tables:
        src, tgt = data_version(source, table), data_version(target, table)
        out.append({"table": table.qualified_target, "source": src, "aurora": tgt, "frozen": src == tgt})
    return out


def rows_per_stage(source: Side, target: Side, lake: Lake | None, cat: Catalog) -> dict:
    out = {}
    for table in cat.load_order():
        out[table.qualified_target] = {
            "source": parity.count_rows(source, table),
            "raw": parity.raw_rows(lake, table) if lake else None,
            "transformed": parity.transformed_rows(lake, table) if lake else None,
            "aurora": parity.count_rows(target, table),
        }
    return out


def run_checks(conns, cat: Catalog) -> list[Outcome]:
    """Every kind of check of every group on every table it applies to (in process, nothing materialized),
    as many at once as a Dagster check step runs."""
    from concurrent.futures import ThreadPoolExecutor

    from consorcio_assets.defs.checks import CHECK_WORKERS, GROUPS

    def run(pair) -> Outcome:
        kind, table = pair
        started = time.perf_counter()
        try:
            outcome = kind.run(conns, table)
        except Exception as err:
            outcome = failed_to_run(kind.stage, table, kind.name, err, kind.severity)
        outcome.severity = kind.severity
        outcome.details["seconds"] = round(time.perf_counter() - started, 3)
        return outcome

    pairs = [(kind, table) for kinds in GROUPS.values() for kind in kinds for table in cat if kind.applies(table)]
    with ThreadPoolExecutor(CHECK_WORKERS) as pool:
        return list(pool.map(run, pairs))


def _check_dict(o: Outcome) -> dict:
    status = "PASS" if o.passed else ("FAIL" if o.severity == ERROR else "WARN")
    return {
        "stage": o.stage,
        "table": o.table.qualified_target,
        "check": o.check,
        "status": status,
        "severity": o.severity,
        "summary": o.summary,
        "counts": {k: int(v) for k, v in o.counts.items()},
        "keys": o.keys[:5],
        "seconds": o.details.get("seconds"),
    }


def accepted_differences(outcomes: list[Outcome], steps: list[smoke.Step]) -> list[dict]:
    """The semantic differences the migration accepts, with counts where they are counted."""
    out = []
    for o in outcomes:
        if o.check == precision.SUB_MICROSECOND:
            n = sum(int(v) for v in o.counts.values())
            out.append(
                {"what": f"{o.table.qualified_target}: DATETIME2(7)/DATETIMEOFFSET(7) 100 ns digit dropped", "count": n}
            )
    out += [{"what": f"collation: {note}", "count": None} for note in REMAINING_DIFFERENCES]
    out += [{"what": f"smoke: {s.name}: {s.detail}", "count": None} for s in steps if s.accepted]
    return out


def verdict(evidence: Evidence) -> tuple[str, list[str]]:
    reasons = [f"source changed since the last load: {f['table']}" for f in evidence.frozen if not f["frozen"]]
    reasons += [f"check {c['check']} failed on {c['table']}" for c in evidence.checks if c["status"] == "FAIL"]
    reasons += [
        f"smoke step failed: {s['name']}: {s['detail']}"
        + "".join(f"; {k} {s[k]}" for k in ("table", "column", "constraint", "sqlstate") if s.get(k))
        for s in evidence.smoke
        if not s["passed"]
    ]
    return (NO_GO if reasons else GO), reasons


def rehearse(source: Side, target: Side, target_url: str, lake: Lake | None, cat: Catalog, conns) -> Evidence:
    evidence = Evidence(started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    broken: list[str] = []

    def timed(name: str, fn, empty):
        """A stage that cannot run (e.g. Aurora not loaded yet) is a NO-GO reason, not a crash."""
        started = time.perf_counter()
        try:
            return fn()
        except Exception as err:
            broken.append(f"{name} could not run: {safe_error(err)}")
            return empty
        finally:
            evidence.timings[name] = round(time.perf_counter() - started, 3)

    evidence.frozen = timed("source frozen", lambda: source_frozen(source, target, cat), [])
    evidence.rows = timed("rows per stage", lambda: rows_per_stage(source, target, lake, cat), {})
    outcomes = timed("checks", lambda: run_checks(conns, cat), [])
    evidence.checks = [_check_dict(o) for o in outcomes]
    steps = timed("smoke workload", lambda: smoke.run_smoke(target_url, cat), [])
    evidence.smoke = [s.to_dict() for s in steps]
    evidence.accepted = accepted_differences(outcomes, steps)
    evidence.verdict, evidence.reasons = verdict(evidence)
    if broken or not evidence.smoke:
        evidence.verdict, evidence.reasons = NO_GO, broken + evidence.reasons
    return evidence


def rehearse_current(out_dir: Path, source_db, target_db, lake) -> tuple[Evidence, Path]:
    """The rehearsal against the given source, target and lake resources; writes the evidence pack."""
    from consorcio_assets.cutover.evidence_pack import write_report
    from consorcio_assets.defs.checks import Connections

    cat = catalog()
    conns = Connections(source_db, target_db, cat, lake.lake())
    try:
        started = time.perf_counter()
        evidence = rehearse(conns.source, conns.target, target_db.libpq_url(), conns.lake, cat, conns)
        evidence.timings["total"] = round(time.perf_counter() - started, 3)
    finally:
        conns.close()
    html = write_report(evidence, out_dir)
    return evidence, html
