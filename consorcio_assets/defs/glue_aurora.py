"""Stages 3 and 4, `transformed/<table>` and `aurora/<table>`: one Glue job run per table, through Pipes.

All tables and views share one subsettable multi-asset because a batch of Glue runs is one unit: independent
tables run concurrently (bounded like Glue's maximum concurrent runs), each run stages its table (keys and
foreign keys validated against the parents the batch staged: a table's run starts once its parents' runs have
started, streams its data meanwhile and waits for them before its foreign keys), and the batch closes with one
`publish` run that swaps every staged table in one PostgreSQL transaction:
a run's loads become visible together or not at all. When any run of the batch failed nothing is published
(the staged tables are dropped), so no table is swapped without the checks that follow the step. One asset per
table would leave no place for that closing step and would pay a step process per table. A batch of one table
(a one-table reload) needs no closing run: its load swaps the table in itself, foreign keys validated inside the
same transaction, with the same all-or-nothing guarantee and one Glue run (and its start-up) fewer.
"""

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg

from consorcio_assets.catalog import Catalog, Table, catalog
from consorcio_assets.checks.runbook import check_metadata
from consorcio_assets.common.stages import (
    AURORA,
    OWNERS,
    S3_RAW,
    TRANSFORMED,
    asset_key,
    reload_on_upstream_change,
    table_for_key,
    target_column_schema,
)
from consorcio_assets.common.units import readable_bytes
from consorcio_assets.glue_runner.resource import GlueResource
from consorcio_assets.glue_runner.spec import table_spec
from consorcio_assets.orchestration.pools import GLUE_POOL
from consorcio_assets.orchestration.startup import require_usable_settings
from consorcio_assets.target.live_views import apply_live_views
from consorcio_assets.target.postgres import TARGET_DB, connect
from consorcio_assets.target.resource import TargetDb
from consorcio_core.names import NO_REJECTED_ROWS

REJECTS_CHECK = NO_REJECTED_ROWS
#: the nightly verification runs every 24 h; two hours of slack before an Aurora table counts as overdue
FRESHNESS_WINDOW = timedelta(hours=26)
NIGHTLY_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=FRESHNESS_WINDOW)
#: a Glue run's fixed cost (process or Glue start-up, DDL, keys) in rows streamed meanwhile, for the run order
RUN_COST_ROWS = 500_000
#: while a skipped load is still running, how often its stop is asked again (its run may not have started yet)
STOP_RECHECK_SECONDS = 0.5


def fk_parents(table: Table) -> list[str]:
    return list(dict.fromkeys(fk.ref_table for fk in table.foreign_keys if fk.ref_table != table.name))


def column_lineage(table: Table, stage: str) -> dg.TableColumnLineage:
    """Each column from the same table's column one stage up (the asset it reads): a transformed column from
    its s3_raw column (an offset companion from its DATETIMEOFFSET column), an Aurora column from the
    transformed column of the same name. One hop per asset, so the UI can follow a column end to end."""
    deps: dict[str, list[dg.TableColumnDep]] = {}
    for c in table.columns:
        if stage == TRANSFORMED:
            dep = [dg.TableColumnDep(asset_key=asset_key(S3_RAW, table), column_name=c.name)]
            deps[c.target_name] = dep
            if c.offset_column:
                deps[c.offset_column] = dep
        else:
            for name in (c.target_name, *([c.offset_column] if c.offset_column else [])):
                deps[name] = [dg.TableColumnDep(asset_key=asset_key(TRANSFORMED, table), column_name=name)]
    return dg.TableColumnLineage(deps_by_column=deps)


def table_name(table: Table) -> str:
    return f"{TARGET_DB}.{table.qualified_target}"


def transformed_spec(table: Table) -> dg.AssetSpec:
    return dg.AssetSpec(
        asset_key(TRANSFORMED, table),
        deps=[asset_key(S3_RAW, table)],
        description=f"{table.qualified_source} transformed by the Glue job: transformed/{table.target_name}/"
        "part-NNNNN.parquet, snake_case and typed as in Aurora (GUIDs as uuid, DATETIMEOFFSET as the "
        "UTC instant plus its offset in minutes, CHAR padding trimmed, exact decimals).",
        group_name=TRANSFORMED,
        kinds={"glue", "parquet"},
        owners=OWNERS,
        tags={"table_type": table.kind},
        automation_condition=reload_on_upstream_change(TRANSFORMED),
        metadata={
            "dagster/column_schema": target_column_schema(table),
            "dagster/column_lineage": column_lineage(table, TRANSFORMED),
        },
    )


def aurora_spec(table: Table, cat: Catalog) -> dg.AssetSpec:
    """Its only dep is the table's own transformed asset. Foreign-key parents are not deps: the batch orders the
    swaps by the catalog (`run_in_fk_order`), a parent's swap re-adds and validates its children's foreign keys,
    and as deps they made a table's upstream its whole parent tree (21 assets for `simulacao`) and marked every
    child "Unsynced" after a parent's reload. They are listed in the metadata instead."""
    parents = [cat[p].qualified_target for p in fk_parents(table)]
    return dg.AssetSpec(
        asset_key(AURORA, table),
        deps=[asset_key(TRANSFORMED, table)],
        description=f"{table.qualified_target} in Aurora PostgreSQL, loaded by the Glue job with COPY into a "
        "staging table and swapped in one transaction (readers see the old or the new table).",
        group_name=AURORA,
        kinds={"glue", "postgres"},
        owners=OWNERS,
        tags={"table_type": table.kind},
        automation_condition=reload_on_upstream_change(AURORA),
        freshness_policy=NIGHTLY_FRESHNESS,
        metadata={
            "dagster/column_schema": target_column_schema(table),
            "dagster/table_name": table_name(table),
            "dagster/column_lineage": column_lineage(table, AURORA),
            "foreign_key_parents": ", ".join(parents) or "none",
        },
    )


def rejects_check_spec(table: Table) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        REJECTS_CHECK,
        asset=asset_key(AURORA, table),
        description=f"No row of {table.qualified_source} was rejected by the Glue job for violating its target "
        "type (in reject mode they are in consorcio.consorcio_rejects, keys and reasons only).",
        metadata=check_metadata(REJECTS_CHECK),
    )


@dataclass(frozen=True)
class TableRun:
    table: Table
    stages: tuple[str, ...]
    report_check: bool

    @property
    def loads_aurora(self) -> bool:
        return AURORA in self.stages


def plan_runs(cat: Catalog, keys: Iterable[dg.AssetKey], check_keys: Iterable[dg.AssetCheckKey]) -> list[TableRun]:
    """One run per table with at least one selected stage, in the catalog's load order."""
    stages: dict[str, set[str]] = {}
    for key in keys:
        stages.setdefault(table_for_key(cat, key).name, set()).add(key.path[0])
    checked = {table_for_key(cat, k.asset_key).name for k in check_keys if k.name == REJECTS_CHECK}
    return [
        TableRun(
            t,
            tuple(s for s in (TRANSFORMED, AURORA) if s in stages[t.name]),
            t.name in checked and AURORA in stages[t.name],
        )
        for t in cat.load_order()
        if t.name in stages
    ]


def critical_path(runs: list[TableRun], rows: dict[str, int]) -> dict[str, int]:
    """table → the cost of its heaviest chain of children in the batch, itself included (rows, plus
    RUN_COST_ROWS per run): the runs that start first are the ones the batch's longest wait hangs on (the small
    parents of `simulacao_parcela`)."""
    loading = {r.table.name: r for r in runs if r.loads_aurora}
    children: dict[str, list[str]] = {}
    for name, r in loading.items():
        for parent in fk_parents(r.table):
            if parent in loading:
                children.setdefault(parent, []).append(name)
    weight: dict[str, int] = {}
    for r in reversed(runs):  # load order reversed: children before their parents
        name = r.table.name
        weight[name] = RUN_COST_ROWS + rows.get(name, 0) + max((weight[c] for c in children.get(name, [])), default=0)
    return weight


#: slots a batch needs before one load may start ahead of its parents (`ahead_of_parents`)
AHEAD_MIN_SLOTS = 3


def ahead_of_parents(runs: list[TableRun], waits_for: dict[str, list[str]], weights: dict[str, int]) -> str | None:
    """The one load that may start before its parents: the heaviest that waits for a parent and that no load
    of the batch waits for (None when none qualifies). Nothing can wait on it, and the other slots still start
    parents before their children, so no slot deadlocks. It needs three slots or more: its parents then start
    while a long ancestor (cliente) still loads in the other slot, well within the 10 minutes the job allows a
    parent to appear; with one slot left, a parent's run would start only after that load ends."""
    awaited = {p for parents in waits_for.values() for p in parents}
    leaves = [r.table.name for r in runs if waits_for[r.table.name] and r.table.name not in awaited]
    return max(leaves, key=lambda name: weights.get(name, 0), default=None)


def run_in_fk_order(
    runs: list[TableRun],
    run_one: Callable[[TableRun], list],
    max_workers: int,
    log,
    on_interrupt: Callable[[], None] = lambda: None,
    *,
    weights: dict[str, int] | None = None,
    stop: Callable[[list[str]], None] = lambda names: None,
) -> tuple[dict[str, list], dict[str, str]]:
    """Run tables concurrently. An Aurora load starts once its parents' loads in the batch have started (its
    data streams while they finish; the job waits for them before validating its foreign keys), heaviest chain
    first; it is skipped, or stopped (`stop`) when already running, when one of its parents failed (its foreign
    keys would point at a stale parent). Every parent starts before its children, so the earliest running load
    never waits and `max_workers` slots cannot deadlock. One exception (`ahead_of_parents`, three slots or more):
    the heaviest load nothing waits for starts first, before its parents, so the batch's largest table
    (simulacao_parcela) streams from the start instead of after four generations of small parents, and its keys
    are not the batch's tail. When the step is interrupted (the Dagster run terminated),
    `on_interrupt` stops what is running before the pool waits for its threads."""
    loading = {r.table.name for r in runs if r.loads_aurora}
    waits_for = {r.table.name: [p for p in fk_parents(r.table) if p in loading] if r.loads_aurora else [] for r in runs}
    weights = weights or {}
    order = {r.table.name: i for i, r in enumerate(runs)}
    pending = sorted(runs, key=lambda r: (-weights.get(r.table.name, 0), order[r.table.name]))
    ahead = ahead_of_parents(runs, waits_for, weights) if max_workers >= AHEAD_MIN_SLOTS else None
    if ahead is not None:  # considered first, so the slots do not all go to its ancestors
        pending.sort(key=lambda r: r.table.name != ahead)
    started: set[str] = set()
    results: dict[str, list] = {}
    failures: dict[str, str] = {}
    running: dict[Future, TableRun] = {}
    skipped: dict[str, str] = {}  # running loads stopped because a parent failed → why

    def failed_parents(name: str) -> list[str]:
        return [p for p in waits_for[name] if p in failures]

    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="glue-table") as pool:
        try:
            while pending or running:
                for r in list(pending):
                    name = r.table.name
                    if failed := failed_parents(name):
                        pending.remove(r)
                        failures[name] = f"skipped: parent table(s) {', '.join(failed)} failed to load"
                    elif len(running) < max(1, max_workers) and (
                        name == ahead or all(p in started for p in waits_for[name])
                    ):
                        pending.remove(r)
                        started.add(name)
                        running[pool.submit(run_one, r)] = r
                for r in running.values():
                    if r.table.name not in skipped and (failed := failed_parents(r.table.name)):
                        skipped[r.table.name] = f"skipped: parent table(s) {', '.join(failed)} failed to load"
                doomed = [r.table.name for r in running.values() if r.table.name in skipped]
                if doomed:  # again on every pass: a run whose thread had not started it yet is stopped once it has
                    stop(doomed)
                if not running:
                    continue
                done, _ = wait(running, timeout=STOP_RECHECK_SECONDS if doomed else None, return_when=FIRST_COMPLETED)
                for future in done:
                    r = running.pop(future)
                    try:
                        results[r.table.name] = future.result()
                    except Exception as err:  # noqa: BLE001 - one table's failure must not hide the others'
                        if r.table.name in skipped:
                            failures[r.table.name] = skipped[r.table.name]
                            continue
                        failures[r.table.name] = str(err)
                        log.error(f"{r.table.qualified_source}: Glue run failed: {err}")
        except BaseException:  # interrupted (DagsterExecutionInterruptedError is not an Exception)
            on_interrupt()
            raise
    return results, failures


def expected_rows(instance: dg.DagsterInstance, table: Table) -> int | None:
    """What DMS reported loading into the raw zone (the s3_raw materialization), if known."""
    event = instance.get_latest_materialization_event(asset_key(S3_RAW, table))
    if event is None or event.asset_materialization is None:
        return None
    metadata = event.asset_materialization.metadata
    value = metadata.get("dms/full_load_rows") or metadata.get("dagster/row_count")
    return int(value.value) if value is not None and value.value is not None else None


def enrich(result, table: Table):
    """Reported results with the catalog's column schema and lineage (known here, not in Glue)."""
    if not isinstance(result, dg.MaterializeResult):
        return result
    stage = result.asset_key.path[0]
    extra = {
        "dagster/column_schema": target_column_schema(table),
        "dagster/column_lineage": column_lineage(table, stage),
    }
    if stage == AURORA:
        extra["dagster/table_name"] = table_name(table)
    metadata = readable_bytes({**(result.metadata or {}), **extra})
    return dg.MaterializeResult(
        asset_key=result.asset_key,
        metadata=metadata,
        check_results=result.check_results,
        data_version=result.data_version,
    )


def publish(
    context, glue: GlueResource, runs: list[TableRun], results: dict[str, list], failures: dict[str, str], run_id: str
) -> bool:
    """Swap what the batch staged, all at once, only when every run of the batch succeeded (else drop it):
    a table swapped while the step fails would skip the checks that follow the step. True when published."""
    staged = [r.table.target_name for r in runs if r.loads_aurora and r.table.name in results]
    if not staged:
        return False
    if swaps_itself(runs):  # its run swapped it in (or, failing, left the previous version and dropped its staging)
        return not failures
    discard = bool(failures)
    # a discard names every table of the batch: it takes each table's load lock, so it also waits for a stopped
    # child run to end and drops what that run staged (only what this batch staged is ever dropped)
    tables = [r.table.target_name for r in runs if r.loads_aurora] if discard else staged
    try:
        glue.publish(context, tables, run_id=run_id, discard=discard)
    except Exception as err:  # noqa: BLE001 - reported with the tables' failures
        failures["publish" if not discard else "discard staged tables"] = str(err)
        return False
    return not discard


def swaps_itself(runs: list[TableRun]) -> bool:
    """A batch loading one table into Aurora: its run swaps the table in (`--swap immediate`), no publish run."""
    return sum(r.loads_aurora for r in runs) == 1


def create_live_views(context, target_db: TargetDb, failures: dict[str, str]) -> None:
    """After a publish: the application's live views (`consorcio.<view>`) over the base tables now in Aurora.
    Idempotent; a later swap of a base table keeps them (the Glue job re-creates dependent views)."""
    try:
        with connect(target_db.libpq_url()) as conn:
            created = apply_live_views(conn, catalog())
    except Exception as err:  # noqa: BLE001 - reported with the tables' failures
        failures["live views"] = str(err)
        return
    if created:
        context.log.info(f"live views created or replaced: {', '.join(created)}")


def _ordered(results: list) -> list:
    """Materializations before the checks on them."""
    return sorted(
        results, key=lambda r: (not isinstance(r, dg.MaterializeResult), 0 if r.asset_key.path[0] == TRANSFORMED else 1)
    )


def glue_specs() -> list[dg.AssetSpec]:
    cat = catalog()
    return [spec for t in cat for spec in (transformed_spec(t), aurora_spec(t, cat))]


@dg.multi_asset(
    name="glue_transform_and_load",
    specs=glue_specs(),
    check_specs=[rejects_check_spec(t) for t in catalog()],
    can_subset=True,
    pool=GLUE_POOL,
)
def glue_transform_and_load(context: dg.AssetExecutionContext, glue: GlueResource, target_db: TargetDb):
    """One Glue job run per selected table (both stages in one pass when both are selected)."""
    require_usable_settings()
    cat = catalog()
    runs = plan_runs(cat, context.selected_asset_keys, context.selected_asset_check_keys)

    run_id = context.run.run_id
    batch = [r.table.target_name for r in runs if r.loads_aurora]
    own_swap = swaps_itself(runs)

    rows = {r.table.name: expected_rows(context.instance, r.table) for r in runs}

    def run_one(r: TableRun) -> list:
        spec = table_spec(r.table, cat, expected_rows=rows[r.table.name] if TRANSFORMED in r.stages else None)
        arguments = glue.job_arguments(
            spec,
            list(r.stages),
            run_id=run_id,
            report_checks=r.report_check,
            batch_tables=None if own_swap else batch,
            fk_validation="immediate" if own_swap else "deferred",
        )
        invocation = glue.run(context, arguments, r.table.target_name)
        return invocation.get_results(implicit_materializations=False)

    results, failures = run_in_fk_order(
        runs,
        run_one,
        glue.concurrency,
        context.log,
        on_interrupt=lambda: glue.stop_runs(context.log),
        weights=critical_path(runs, {name: n or 0 for name, n in rows.items()}),
        stop=lambda names: glue.stop_runs(context.log, {cat[n].target_name for n in names}),
    )
    published = publish(context, glue, runs, results, failures, run_id)
    if published:
        create_live_views(context, target_db, failures)
    for r in runs:
        for result in _ordered(results.get(r.table.name, [])):
            if published or not r.loads_aurora:  # a batch's transformed parts are swapped in by its publish too
                yield enrich(result, r.table)
    # last, so the results' events are not committed behind the checkpoint's disk writes; no one waits for it
    if target_db.request_checkpoint():
        context.log.info("embedded server: checkpoint requested (the batch's WAL is released when it completes)")
    if failures:
        unpublished = (
            ". Nothing was published to Aurora or the transformed zone: every table keeps its previous version"
            if batch and not published
            else ""
        )
        raise dg.Failure(
            description="Glue runs failed: "
            + "; ".join(f"{name}: {why}" for name, why in failures.items())
            + unpublished,
            metadata={"failed_tables": dg.MetadataValue.json(failures)},
        )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[glue_transform_and_load])
