"""Stages 3 and 4, `transformed/<table>` and `aurora/<table>`: one Glue job run per table, through Pipes.

All tables and views share one subsettable multi-asset because a batch of Glue runs is one unit: independent
tables run concurrently (bounded like Glue's maximum concurrent runs), a table's run starts once its
foreign-key parents in the batch are swapped in, and the batch closes with one run that validates the
foreign keys the swaps left NOT VALID. One asset per table would leave no place for that closing step and
would pay a step process per table.
"""

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import dagster as dg

from consorcio_core.names import NO_REJECTED_ROWS

from ..catalog import Catalog, Table, catalog
from ..glue.resource import GlueResource
from ..glue.spec import table_spec
from ..stages import (
    AURORA, OWNERS, S3_RAW, TRANSFORMED, asset_key, reload_on_upstream_change, table_for_key, target_column_schema,
)
from ..target.postgres import TARGET_DB

REJECTS_CHECK = NO_REJECTED_ROWS


def fk_parents(table: Table) -> list[str]:
    return list(dict.fromkeys(fk.ref_table for fk in table.foreign_keys if fk.ref_table != table.name))


def column_lineage(table: Table) -> dg.TableColumnLineage:
    """Each target column from its s3_raw column (an offset companion from its DATETIMEOFFSET column)."""
    raw = asset_key(S3_RAW, table)
    deps: dict[str, list[dg.TableColumnDep]] = {}
    for c in table.columns:
        dep = [dg.TableColumnDep(asset_key=raw, column_name=c.name)]
        deps[c.target_name] = dep
        if c.offset_column:
            deps[c.offset_column] = dep
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
        group_name=TRANSFORMED, kinds={"glue", "parquet"}, owners=OWNERS, tags={"table_type": table.kind},
        automation_condition=reload_on_upstream_change(TRANSFORMED),
        metadata={"dagster/column_schema": target_column_schema(table)},
    )


def aurora_spec(table: Table, cat: Catalog) -> dg.AssetSpec:
    return dg.AssetSpec(
        asset_key(AURORA, table),
        deps=[asset_key(TRANSFORMED, table), *(asset_key(AURORA, cat[p]) for p in fk_parents(table))],
        description=f"{table.qualified_target} in Aurora PostgreSQL, loaded by the Glue job with COPY into a "
                    "staging table and swapped in one transaction (readers see the old or the new table).",
        group_name=AURORA, kinds={"glue", "postgres"}, owners=OWNERS, tags={"table_type": table.kind},
        automation_condition=reload_on_upstream_change(AURORA),
        metadata={"dagster/column_schema": target_column_schema(table), "dagster/table_name": table_name(table)},
    )


def rejects_check_spec(table: Table) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        REJECTS_CHECK, asset=asset_key(AURORA, table),
        description=f"No row of {table.qualified_source} was rejected by the Glue job for violating its target "
                    "type (in reject mode they are in consorcio.consorcio_rejects, keys and reasons only).",
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
    return [TableRun(t, tuple(s for s in (TRANSFORMED, AURORA) if s in stages[t.name]),
                     t.name in checked and AURORA in stages[t.name])
            for t in cat.load_order() if t.name in stages]


def run_in_fk_order(runs: list[TableRun], run_one: Callable[[TableRun], list], max_workers: int,
                    log, on_interrupt: Callable[[], None] = lambda: None) -> tuple[dict[str, list], dict[str, str]]:
    """Run tables concurrently; an Aurora load waits for its parents' loads in the batch, and is skipped
    when one of them failed (its foreign keys would point at a stale parent). When the step is interrupted
    (the Dagster run terminated), `on_interrupt` stops what is running before the pool waits for its threads."""
    loading = {r.table.name for r in runs if r.loads_aurora}
    waits_for = {r.table.name: [p for p in fk_parents(r.table) if p in loading] if r.loads_aurora else []
                 for r in runs}
    pending = list(runs)
    results: dict[str, list] = {}
    failures: dict[str, str] = {}
    running: dict[Future, TableRun] = {}
    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="glue-table") as pool:
        try:
            while pending or running:
                for r in list(pending):
                    parents = waits_for[r.table.name]
                    failed = [p for p in parents if p in failures]
                    if failed:
                        pending.remove(r)
                        failures[r.table.name] = f"skipped: parent table(s) {', '.join(failed)} failed to load"
                    elif all(p in results for p in parents):
                        pending.remove(r)
                        running[pool.submit(run_one, r)] = r
                if not running:
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    r = running.pop(future)
                    try:
                        results[r.table.name] = future.result()
                    except Exception as err:  # noqa: BLE001 - one table's failure must not hide the others'
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


def pending_foreign_keys(results: list) -> int:
    """Foreign keys a table's swap left NOT VALID (the job reports them with the aurora materialization)."""
    return sum(int(r.metadata["foreign_keys_not_valid"].value) for r in results
               if isinstance(r, dg.MaterializeResult) and r.asset_key.path[0] == AURORA
               and "foreign_keys_not_valid" in (r.metadata or {}))


def enrich(result, table: Table):
    """Reported results with the catalog's column schema and lineage (known here, not in Glue)."""
    if not isinstance(result, dg.MaterializeResult):
        return result
    extra = {"dagster/column_schema": target_column_schema(table), "dagster/column_lineage": column_lineage(table)}
    if result.asset_key.path[0] == AURORA:
        extra["dagster/table_name"] = table_name(table)
    return dg.MaterializeResult(asset_key=result.asset_key, metadata={**(result.metadata or {}), **extra},
                                check_results=result.check_results, data_version=result.data_version)


def _ordered(results: list) -> list:
    """Materializations before the checks on them."""
    return sorted(results, key=lambda r: (not isinstance(r, dg.MaterializeResult),
                                          0 if r.asset_key.path[0] == TRANSFORMED else 1))


def glue_specs() -> list[dg.AssetSpec]:
    cat = catalog()
    return [spec for t in cat for spec in (transformed_spec(t), aurora_spec(t, cat))]


@dg.multi_asset(
    name="glue_transform_and_load",
    specs=glue_specs(),
    check_specs=[rejects_check_spec(t) for t in catalog()],
    can_subset=True,
)
def glue_transform_and_load(context: dg.AssetExecutionContext, glue: GlueResource):
    """One Glue job run per selected table (both stages in one pass when both are selected)."""
    cat = catalog()
    runs = plan_runs(cat, context.selected_asset_keys, context.selected_asset_check_keys)

    def run_one(r: TableRun) -> list:
        rows = expected_rows(context.instance, r.table) if TRANSFORMED in r.stages else None
        spec = table_spec(r.table, cat, expected_rows=rows)
        arguments = glue.job_arguments(spec, list(r.stages), run_id=context.run.run_id, report_checks=r.report_check)
        invocation = glue.run(context, arguments, r.table.target_name)
        return invocation.get_results(implicit_materializations=False)

    results, failures = run_in_fk_order(runs, run_one, glue.concurrency, context.log,
                                        on_interrupt=lambda: glue.stop_runs(context.log))
    loaded = [r.table.target_name for r in runs if r.loads_aurora and r.table.name in results]
    if any(pending_foreign_keys(res) for res in results.values()):
        try:
            glue.validate_foreign_keys(context, loaded)
        except Exception as err:  # noqa: BLE001 - reported with the tables' results below
            failures["foreign keys"] = str(err)
    for r in runs:
        for result in _ordered(results.get(r.table.name, [])):
            yield enrich(result, r.table)
    if failures:
        raise dg.Failure(
            description="Glue runs failed: " + "; ".join(f"{name}: {why}" for name, why in failures.items()),
            metadata={"failed_tables": dg.MetadataValue.json(failures)},
        )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[glue_transform_and_load], resources={"glue": GlueResource.from_env()})
