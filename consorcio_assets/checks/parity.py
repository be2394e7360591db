"""Stage parity: every table and view has as many rows in the transformed zone and in Aurora as in the source.

Lake zones are counted from Parquet footers (no data is read); databases with COUNT inside the database.
"""

from __future__ import annotations

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import sqlalchemy as sa

from consorcio_assets.catalog import Table
from consorcio_assets.checks.outcome import Outcome
from consorcio_assets.checks.sides import Side
from consorcio_assets.checks.sql import compile_sql
from consorcio_assets.common.lake_zones import Lake
from consorcio_assets.common.stages import AURORA, TRANSFORMED
from consorcio_assets.source.queries import count_big

CHECK = "row_count_matches_source"
RAW_FOLDER = "raw"


def count_query(side: Side, table: Table) -> sa.Select:
    return sa.select(count_big().label("row_count")).select_from(side.table(table))


def count_rows(side: Side, table: Table) -> int:
    with side.engine.connect() as conn:
        return int(conn.execute(count_query(side, table)).scalar_one())


def parquet_rows(lake: Lake, *parts: str) -> int | None:
    """Rows in the Parquet files under a lake prefix, from their footers; None when the prefix is empty."""
    fs, _ = lake.filesystem()
    infos = fs.get_file_info(pafs.FileSelector(lake.path(*parts), recursive=True, allow_not_found=True))
    files = [i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(".parquet")]
    if not files:
        return None
    return sum(pq.read_metadata(path, filesystem=fs).num_rows for path in files)


def raw_rows(lake: Lake, table: Table) -> int | None:
    return parquet_rows(lake, RAW_FOLDER, table.schema, table.name)


def transformed_rows(lake: Lake, table: Table) -> int | None:
    return parquet_rows(lake, *lake.transformed_prefix(table.target_name))


def _outcome(
    stage: str,
    table: Table,
    source_rows: int,
    stage_rows: int | None,
    where: str,
    sql: str,
    extra: dict[str, int | None],
) -> Outcome:
    counts = {"source_rows": source_rows, f"{stage}_rows": stage_rows or 0}
    counts.update({k: v for k, v in extra.items() if v is not None})
    if stage_rows is None:
        summary = f"{where} has no data for this table (source has {source_rows:,} rows)"
        return Outcome(stage, table, CHECK, False, summary, counts=counts, sql=sql)
    difference = stage_rows - source_rows
    counts["difference"] = difference
    if difference == 0:
        return Outcome(stage, table, CHECK, True, f"{stage_rows:,} rows in {where}, as in the source", counts=counts)
    verb = "missing" if difference < 0 else "extra"
    summary = f"{abs(difference):,} rows {verb} in {where} ({stage_rows:,} vs {source_rows:,} in the source)"
    return Outcome(stage, table, CHECK, False, summary, counts=counts, sql=sql)


def transformed_parity(source: Side, lake: Lake, table: Table, source_rows: int | None = None) -> Outcome:
    """Rows of transformed/<table>/*.parquet vs the source (the raw zone's count rides along)."""
    source_rows = count_rows(source, table) if source_rows is None else source_rows
    where = f"the transformed zone ({lake.uri_of(*lake.transformed_prefix(table.target_name))})"
    sql = compile_sql(count_query(source, table), source.engine)
    extra = {"raw_rows": raw_rows(lake, table)}
    return _outcome(TRANSFORMED, table, source_rows, transformed_rows(lake, table), where, sql, extra)


def aurora_parity(
    source: Side, target: Side, lake: Lake | None, table: Table, source_rows: int | None = None
) -> Outcome:
    """Rows of consorcio.<table> vs the source (the transformed zone's count rides along)."""
    source_rows = count_rows(source, table) if source_rows is None else source_rows
    target_rows = count_rows(target, table)
    extra = {"transformed_rows": transformed_rows(lake, table) if lake else None}
    sql = compile_sql(count_query(target, table), target.engine)
    return _outcome(AURORA, table, source_rows, target_rows, f"Aurora ({table.qualified_target})", sql, extra)
