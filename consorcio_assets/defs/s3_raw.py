"""Stage 2, `s3_raw/<table>`: the DMS full-load of every source table and view into the lake's raw zone.

One multi-asset stands for the replication task (selecting a subset of assets loads just those tables), and
the raw-zone checks validate what landed: row counts against the source and DMS, the files' schema against
the catalog's DMS type mapping, and no unexpected or leftover file. The checks block the Glue stage.
"""

from collections.abc import Iterable, Mapping
from itertools import zip_longest

import dagster as dg

from consorcio_assets.catalog import Table, catalog
from consorcio_assets.checks.runbook import check_metadata
from consorcio_assets.common.stages import (
    OWNERS,
    S3_RAW,
    SQLSERVER,
    asset_key,
    reload_on_upstream_change,
    source_column_schema,
    table_for_key,
)
from consorcio_assets.common.units import byte_size
from consorcio_assets.dms.layout import (
    COMPLETED,
    DmsLoadError,
    FullLoadReport,
    TableLoad,
    expected_schema,
    file_facts,
    layout_problems,
    list_files,
    table_prefix,
)
from consorcio_assets.dms.resource import DmsResource
from consorcio_assets.dms.settings_files import EndpointSettings, load_settings
from consorcio_assets.orchestration.check_threads import READ_ONLY
from consorcio_assets.orchestration.pools import SQLSERVER_POOL
from consorcio_assets.orchestration.startup import require_usable_settings

ROW_COUNT_CHECK = "raw_row_count_matches_source"
SCHEMA_CHECK = "raw_schema_matches_dms_mapping"
FILES_CHECK = "raw_no_unexpected_files"


def raw_column_lineage(table: Table) -> dg.TableColumnLineage:
    """DMS keeps names: each raw column comes from the source column of the same name."""
    return dg.TableColumnLineage(
        deps_by_column={
            c.name: [dg.TableColumnDep(asset_key=asset_key(SQLSERVER, table), column_name=c.name)]
            for c in table.columns
        }
    )


def s3_raw_specs() -> list[dg.AssetSpec]:
    endpoint = load_settings().endpoint
    return [
        dg.AssetSpec(
            asset_key(S3_RAW, t),
            deps=[asset_key(SQLSERVER, t)],
            description=f"DMS full-load of {t.qualified_source} into the raw zone: {table_prefix(endpoint, t)}/"
            f"LOAD*{endpoint.extension}, columns and names as in SQL Server.",
            group_name=S3_RAW,
            kinds={"dms", "s3", endpoint.data_format},
            owners=OWNERS,
            tags={"table_type": t.kind},
            metadata={
                "dagster/column_schema": source_column_schema(t),
                "dagster/column_lineage": raw_column_lineage(t),
            },
            automation_condition=reload_on_upstream_change(S3_RAW),
        )
        for t in catalog()
    ]


def _text(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")


def table_metadata(result: TableLoad, report: FullLoadReport, table: Table, resource: DmsResource) -> dict:
    endpoint = resource.settings().endpoint
    checked = report.preflight
    overflows = [str(o) for o in (checked.overflows if checked else []) if o.table == table.name]
    return {
        "dagster/row_count": result.full_load_rows,
        "source_row_count": checked.source_rows.get(table.name) if checked else None,
        "dms/full_load_rows": result.full_load_rows,
        "dms/table_state": result.state,
        "dms/full_load_start": _text(result.started_at),
        "dms/full_load_end": _text(result.ended_at),
        "dms/task_arn": report.task_arn or "local engine",
        "dms/mode": report.mode,
        "dms/statistics": dg.MetadataValue.json(
            {k: _text(v) if not isinstance(v, (int, float)) else v for k, v in result.statistics.items()}
        ),
        "dms/segments": result.segments,
        "dms/data_format": endpoint.data_format,
        "s3_uri": dg.MetadataValue.path(resource.lake().uri_of(table_prefix(endpoint, table)) + "/"),
        "files_written": len(result.files),
        "bytes_written": byte_size(result.bytes),
        "files": dg.MetadataValue.json([{"path": f.path, "bytes": f.size, "rows": f.rows} for f in result.files]),
        "duration_seconds": round(result.duration_seconds, 3),
        "rows_per_second": round(result.rows_per_second, 1),
        "lob_values_truncated": sum(result.lob_truncated.values()),
        "lob_truncation_risk": dg.MetadataValue.json(overflows),
        "dagster/column_lineage": raw_column_lineage(table),
        # the source's data version around the extraction: a table written meanwhile is not a snapshot
        "source_version_before": dg.MetadataValue.json(
            result.version_before.to_dict() if result.version_before else {}
        ),
        "source_version_after": dg.MetadataValue.json(result.version_after.to_dict() if result.version_after else {}),
        "source_changed_during_load": dg.MetadataValue.json(result.source_changes or {}),
    }


@dg.multi_asset(
    name="dms_full_load",
    specs=s3_raw_specs(),
    can_subset=True,
    pool=SQLSERVER_POOL,  # DMS reads the production SQL Server
    description="The DMS replication task's full-load (AWS DMS in aws mode, the local engine otherwise), "
    "after a pre-flight of the source: only the selected tables and views are loaded.",
)
def dms_full_load(context: dg.AssetExecutionContext, dms: DmsResource):
    require_usable_settings()  # the run's first step: a bad setting stops it here, before the extract
    cat = catalog()
    order = {t.name: i for i, t in enumerate(cat.load_order())}
    tables = sorted((table_for_key(cat, k) for k in context.selected_asset_keys), key=lambda t: order[t.name])
    failure = None
    try:
        report = dms.full_load(tables, log=context.log)
    except DmsLoadError as err:
        if err.report is None:
            raise
        report, failure = err.report, err
    for table in tables:
        result = report.tables.get(table.name)
        if result is not None and result.state == COMPLETED:
            context.log.info(
                f"{table.qualified_source}: {result.full_load_rows} rows in {len(result.files)} file(s), "
                f"{result.rows_per_second:,.0f} rows/s"
            )
            yield dg.MaterializeResult(
                asset_key=asset_key(S3_RAW, table), metadata=table_metadata(result, report, table, dms)
            )
    if failure is not None:
        raise dg.Failure(description=str(failure))


# -- raw-zone checks -------------------------------------------------------------------------------------------


def raw_zone_check_specs(tables: Iterable[Table]) -> list[dg.AssetCheckSpec]:
    descriptions = {
        ROW_COUNT_CHECK: "Rows in the LOAD files = the source's row count at load time = DMS's FullLoadRows.",
        SCHEMA_CHECK: "Every LOAD file's columns and types are the catalog's DMS type mapping.",
        FILES_CHECK: "Only this load's LOAD files under the table's prefix: DMS names, numbered without gaps.",
    }
    return [
        dg.AssetCheckSpec(
            name, asset=asset_key(S3_RAW, t), description=text, blocking=True, metadata=check_metadata(name)
        )
        for t in tables
        for name, text in descriptions.items()
    ]


def _metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> Mapping:
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _row_count(table: Table, facts, meta: Mapping) -> dg.AssetCheckResult:
    in_files = sum(f.rows for f in facts)
    source, dms = meta.get("source_row_count"), meta.get("dms/full_load_rows")
    changed = meta.get("source_changed_during_load") or {}
    description = None if meta else "no materialization of this asset to compare with"
    if changed:
        n = changed.get("rows_changed")
        description = (
            f"{table.qualified_source} changed while DMS extracted it (rows {changed.get('rows_before')} "
            f"-> {changed.get('rows_after')}"
            + (f", {n} row(s) written after the start" if n is not None else "")
            + "): not a consistent snapshot; freeze the "
            "source (runbook) and reload"
        )
    return dg.AssetCheckResult(
        asset_key=asset_key(S3_RAW, table),
        check_name=ROW_COUNT_CHECK,
        passed=bool(meta) and in_files == source == dms and not any(f.error for f in facts) and not changed,
        metadata={
            "rows_in_files": in_files,
            "source_row_count": source,
            "dms_full_load_rows": dms,
            "rows_changed_during_load": int(changed.get("rows_changed") or 0) if changed else 0,
        },
        description=description,
    )


def _schema(table: Table, facts, endpoint: EndpointSettings) -> dg.AssetCheckResult:
    expected = expected_schema(table, endpoint)
    want = [(f.name, str(f.type)) for f in expected]
    problems = [f.error for f in facts if f.error]
    for f in facts:
        got = [(x.name, str(x.type)) for x in f.schema] if f.schema is not None else None
        if got is not None and got != want:
            diff = [f"{g or '-'} instead of {w or '-'}" for g, w in zip_longest(got, want) if g != w]
            problems.append(f"{f.path}: " + "; ".join(map(str, diff[:5])))
    return dg.AssetCheckResult(
        asset_key=asset_key(S3_RAW, table),
        check_name=SCHEMA_CHECK,
        passed=not problems,
        metadata={
            "files_checked": len(facts),
            "problems": dg.MetadataValue.json(problems[:50]),
            "expected_schema": dg.MetadataValue.json([f"{n}: {t}" for n, t in want]),
        },
    )


def _files(table: Table, present: list[str], meta: Mapping, endpoint: EndpointSettings) -> dg.AssetCheckResult:
    prefix = table_prefix(endpoint, table) + "/"
    relative = [p[len(prefix) :] for p in present]
    problems = layout_problems(relative, endpoint)
    recorded = {f["path"] for f in (meta.get("files") or [])}
    problems += [f"{p}: not written by the latest load" for p in present if meta and p not in recorded]
    problems += [f"{p}: written by the latest load but missing" for p in sorted(recorded - set(present))]
    return dg.AssetCheckResult(
        asset_key=asset_key(S3_RAW, table),
        check_name=FILES_CHECK,
        passed=bool(meta) and not problems,
        metadata={"files_found": len(present), "problems": dg.MetadataValue.json(problems[:50])},
    )


def build_raw_zone_checks(tables: Iterable[Table]) -> dg.AssetChecksDefinition:
    """The three blocking raw-zone checks of every table in `tables`, evaluated by one op (a subset runs
    just the selected ones); each reads the files' footers once."""

    @dg.multi_asset_check(
        specs=raw_zone_check_specs(tables), can_subset=True, name="raw_zone_checks", op_tags=READ_ONLY
    )
    def raw_zone_checks(context: dg.AssetCheckExecutionContext, dms: DmsResource):
        cat, endpoint = catalog(), dms.settings().endpoint
        fs, root = dms.lake().filesystem()
        selected: dict[dg.AssetKey, set[str]] = {}
        for check in context.selected_asset_check_keys:
            selected.setdefault(check.asset_key, set()).add(check.name)
        for key, names in sorted(selected.items(), key=lambda kv: kv[0].to_user_string()):
            table = table_for_key(cat, key)
            present = [f.path for f in list_files(fs, root, table_prefix(endpoint, table))]
            meta = _metadata(context.instance, key)
            facts = [file_facts(fs, root, p, table, endpoint) for p in present] if names - {FILES_CHECK} else []
            if ROW_COUNT_CHECK in names:
                yield _row_count(table, facts, meta)
            if SCHEMA_CHECK in names:
                yield _schema(table, facts, endpoint)
            if FILES_CHECK in names:
                yield _files(table, present, meta, endpoint)

    return raw_zone_checks


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[dms_full_load], asset_checks=[build_raw_zone_checks(catalog())])
