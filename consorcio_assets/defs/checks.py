"""Integrity and reconciliation checks of every stage, and the `verify_migration` job that runs them all.

Checks are built by factories from the catalog: one multi-asset check per group, one check spec per
(table, check). Every ERROR check is blocking, so a failure stops the next stage in `migrate_all` and
fails its step (hence a non-zero exit of `dagster job execute`); WARN checks never block.
`verify_migration` selects every check that can run on its own (not the ones bundled inside an asset's
materialization) and executes them in process against the current state: nothing is materialized.
"""

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa

from consorcio_assets.catalog import Catalog, Table, catalog
from consorcio_assets.checks import (
    aggregates,
    application,
    business_rules,
    constraints,
    hashdiff,
    parity,
    precision,
    schema,
    views,
)
from consorcio_assets.checks.outcome import ERROR, WARN, Outcome, failed_to_run, to_check_result
from consorcio_assets.checks.runbook import check_metadata
from consorcio_assets.checks.sides import Side
from consorcio_assets.common.lake_resource import LakeResource
from consorcio_assets.common.lake_zones import Lake, get_lake
from consorcio_assets.common.stages import AURORA, SQLSERVER, TRANSFORMED, asset_key, table_for_key
from consorcio_assets.orchestration.check_threads import READ_ONLY, check_threads_executor
from consorcio_assets.orchestration.pools import SQLSERVER_POOL
from consorcio_assets.source.resource import SourceDb
from consorcio_assets.target.resource import TargetDb

VERIFY_JOB = "verify_migration"
#: checks of one step run two at a time: while one waits on PostgreSQL another keeps DuckDB busy
CHECK_WORKERS = 2


class Connections:
    """What one check step reads, opened on first use (by whichever worker thread comes first) and closed
    at the end of the step."""

    def __init__(self, source_db: SourceDb, target_db: TargetDb, cat: Catalog, lake: Lake | None = None):
        self._factories = {"source": source_db.side, "target": target_db.side, "lake": get_lake}
        self._opened: dict[str, Any] = {"lake": lake} if lake else {}
        self._lock = threading.Lock()
        self._keeper: sa.Connection | None = None
        self.catalog = cat

    def _get(self, name: str):
        with self._lock:
            if name not in self._opened:
                self._opened[name] = self._factories[name]()
                if name == "source" and self._opened[name].dialect == "duckdb":
                    # one connection held for the step keeps the stand-in's database instance open: each
                    # check's own connection then attaches to it instead of opening the file (~0.3 s each)
                    self._keeper = self._opened[name].engine.connect()
            return self._opened[name]

    @property
    def source(self) -> Side:
        return self._get("source")

    @property
    def target(self) -> Side:
        return self._get("target")

    @property
    def lake(self) -> Lake:
        return self._get("lake")

    def close(self) -> None:
        if self._keeper is not None:
            self._keeper.close()
        for name in ("source", "target"):
            if name in self._opened:
                self._opened[name].engine.dispose()


@dataclass(frozen=True)
class Kind:
    """One kind of check: where it applies and how it runs on one table."""

    stage: str
    name: str
    description: str
    run: Callable[[Connections, Table], Outcome]
    applies: Callable[[Table], bool] = lambda table: True
    severity: str = ERROR


def _rule_kind(rule: business_rules.Rule) -> Kind:
    return Kind(
        AURORA,
        rule.check,
        f"Business rule ({rule.summary}): " + "; ".join(rule.parts) + ".",
        lambda c, t: business_rules.evaluate(rule, c.target, c.catalog),
        lambda t: t.name == rule.table,
    )


GROUPS: dict[str, list[Kind]] = {
    "sqlserver_checks": [
        Kind(
            SQLSERVER,
            schema.SOURCE_DRIFT,
            "No column added, removed or retyped in the source since the catalog.",
            lambda c, t: schema.source_drift(c.source, t),
            severity=WARN,
        ),
    ],
    "transformed_checks": [
        Kind(
            TRANSFORMED,
            parity.CHECK,
            "Rows in the transformed Parquet files (footers) = rows in the source.",
            lambda c, t: parity.transformed_parity(c.source, c.lake, t),
        ),
    ],
    "aurora_reconciliation": [
        Kind(
            AURORA,
            parity.CHECK,
            "Rows in Aurora = rows in the source.",
            lambda c, t: parity.aurora_parity(c.source, c.target, c.lake, t),
        ),
        Kind(
            AURORA,
            aggregates.CHECK,
            "Per column: SUM of numbers, MIN/MAX of dates and timestamps, NULL counts, "
            "SUM of text lengths equal the source's, computed inside each database.",
            lambda c, t: aggregates.reconcile(c.source, c.target, t),
        ),
        Kind(
            AURORA,
            hashdiff.CHECK,
            "Every row equals the source's (segment checksums of canonical row text, "
            "bisected to the differing primary keys).",
            lambda c, t: hashdiff.reconcile(c.source, c.target, t),
        ),
        Kind(
            AURORA,
            precision.SUB_MICROSECOND,
            "DATETIME2(7)/DATETIMEOFFSET(7) values whose 100 ns digit DMS drops (expected: counted and reported).",
            lambda c, t: precision.sub_microsecond(c.source, t),
            lambda t: bool(precision.hundred_ns_columns(t)),
            WARN,
        ),
        Kind(
            AURORA,
            precision.LOB_TRUNCATION,
            "No LOB value shorter than in the source (DMS limited-LOB mode).",
            lambda c, t: precision.lob_truncation(c.source, c.target, t),
            lambda t: bool(precision.lob_columns(t)),
        ),
    ],
    "aurora_integrity": [
        Kind(
            AURORA,
            schema.AURORA_SCHEMA,
            "Columns, types, nullability and constraints as the catalog says.",
            lambda c, t: schema.aurora_schema(c.target, t, c.catalog),
        ),
        Kind(
            AURORA,
            constraints.PRIMARY_KEY,
            "Primary key unique and not null.",
            lambda c, t: constraints.primary_key(c.target, t),
        ),
        Kind(
            AURORA,
            constraints.FOREIGN_KEYS,
            "Every foreign key resolves to a parent row.",
            lambda c, t: constraints.foreign_keys(c.target, t, c.catalog),
            lambda t: bool(t.foreign_keys),
        ),
        Kind(
            AURORA,
            constraints.UNIQUE_KEYS,
            "Unique keys hold.",
            lambda c, t: constraints.unique_keys(c.target, t),
            lambda t: bool(t.unique_keys),
        ),
        Kind(
            AURORA,
            constraints.CHECKS,
            "The contract's CHECK constraints hold, row by row.",
            lambda c, t: constraints.check_constraints(c.target, t),
            lambda t: bool(t.checks),
        ),
        Kind(
            AURORA,
            views.CHECK,
            "The snapshot equals the live view (consorcio.<view>) the application reads.",
            lambda c, t: views.reconcile(c.target, t, c.catalog),
            lambda t: t.is_view,
        ),
        Kind(
            AURORA,
            application.IDENTITY,
            "Each IDENTITY column's next value is above every loaded id.",
            lambda c, t: application.identity_continues(c.target, t),
            lambda t: bool(application.identity_columns(t)),
        ),
        Kind(
            AURORA,
            application.SEMANTICS,
            "DEFAULTs attached, ROWVERSION stamped by its trigger past every "
            "migrated value, computed columns generated by PostgreSQL.",
            lambda c, t: application.application_semantics(c.target, t),
            application.has_semantics,
        ),
    ],
    "aurora_business_rules": [_rule_kind(rule) for rule in business_rules.RULES],
}
#: The groups that read the source, so hold a slot of the SQL Server pool (deploy/dagster.yaml caps it).
READS_SOURCE = frozenset({"sqlserver_checks", "transformed_checks", "aurora_reconciliation"})


def check_specs(kinds: list[Kind], cat: Catalog) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            kind.name,
            asset=asset_key(kind.stage, t),
            blocking=kind.severity == ERROR,
            description=f"{t.qualified_target}: {kind.description}",
            metadata=check_metadata(kind.name),
        )
        for kind in kinds
        for t in cat
        if kind.applies(t)
    ]


def build_checks(name: str, kinds: list[Kind], cat: Catalog) -> dg.AssetChecksDefinition:
    """One multi-asset check running the given kinds on every table they apply to (subsettable)."""
    by_key = {dg.AssetCheckKey(asset_key(k.stage, t), k.name): k for k in kinds for t in cat if k.applies(t)}

    def run(conns: Connections, key: dg.AssetCheckKey) -> Outcome:
        kind, table = by_key[key], table_for_key(cat, key.asset_key)
        started = time.perf_counter()
        try:
            outcome = kind.run(conns, table)
        except Exception as err:  # one table's failure must not hide the other tables' results
            outcome = failed_to_run(kind.stage, table, kind.name, err, kind.severity)
        # what this check cost (the step runs several at once, so the gaps between results do not tell)
        outcome.details["seconds"] = round(time.perf_counter() - started, 3)
        return outcome

    @dg.multi_asset_check(
        specs=check_specs(kinds, cat),
        can_subset=True,
        name=name,
        pool=SQLSERVER_POOL if name in READS_SOURCE else None,
        op_tags=READ_ONLY,
    )
    def _checks(context: dg.AssetCheckExecutionContext, source_db: SourceDb, target_db: TargetDb, lake: LakeResource):
        conns = Connections(source_db, target_db, cat, lake.lake())
        keys = sorted(context.selected_asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name))
        try:
            with ThreadPoolExecutor(CHECK_WORKERS) as pool:
                for outcome in pool.map(lambda key: run(conns, key), keys):
                    yield to_check_result(outcome)
        finally:
            conns.close()

    return _checks


def standalone_check_definitions() -> list[dg.AssetChecksDefinition]:
    """Every check that runs without materializing an asset: the groups above and the raw-zone checks (a check
    bundled in an asset's op, e.g. the Glue job's rejected rows, has no result without a load)."""
    from consorcio_assets.defs.s3_raw import build_raw_zone_checks

    cat = catalog()
    return [*(build_checks(name, kinds, cat) for name, kinds in GROUPS.items()), build_raw_zone_checks(cat)]


def _by_key(key: dg.AssetCheckKey) -> tuple[str, str]:
    return key.asset_key.to_user_string(), key.name


def excluded_checks(defs: dg.Definitions | dg.RepositoryDefinition) -> list[tuple[dg.AssetCheckKey, str]]:
    """The checks `verify_migration` does not run, each with why: a check computed inside an asset's
    materialization (e.g. the Glue job counting the rows it rejected) has no result without a load. `defs` may be
    the built repository (a caller that has one need not build the definitions again)."""
    assets = (
        set(defs.assets_defs_by_key.values())
        if isinstance(defs, dg.RepositoryDefinition)
        else [ad for ad in defs.assets or [] if isinstance(ad, dg.AssetsDefinition)]
    )
    bundled = {key: ad.op.name for ad in assets if ad.keys for key in (spec.key for spec in ad.check_specs)}
    return [
        (
            key,
            f"evaluated only while `{bundled[key]}` materializes {key.asset_key.to_user_string()} "
            "(run migrate_all or reload the table)",
        )
        for key in sorted(bundled, key=_by_key)
    ]


def excluded_summary(defs: dg.Definitions | dg.RepositoryDefinition) -> list[str]:
    """One line per excluded check name (with how many assets): what `consorcio verify` prints."""
    by_name: dict[tuple[str, str], int] = {}
    for key, why in excluded_checks(defs):
        reason = why.replace(key.asset_key.to_user_string(), "the table")
        by_name[(key.name, reason)] = by_name.get((key.name, reason), 0) + 1
    return [f"not run: {name} on {n} asset(s): {reason}" for (name, reason), n in sorted(by_name.items())]


verify_migration = dg.define_asset_job(
    VERIFY_JOB,
    selection=dg.AssetSelection.checks(*standalone_check_definitions()),
    executor_def=check_threads_executor,
    description="Run every integrity and reconciliation check against the current state of every stage, "
    "materializing nothing; fails when any ERROR check fails.",
)


@dg.definitions
def defs() -> dg.Definitions:
    cat = catalog()
    return dg.Definitions(
        asset_checks=[build_checks(name, kinds, cat) for name, kinds in GROUPS.items()],
        jobs=[verify_migration],
    )
