"""Names shared by every stage: asset keys, groups, kinds and column-schema metadata."""

from __future__ import annotations

import dagster as dg

from consorcio_assets.catalog import Catalog, Table
from consorcio_assets.catalog.descriptions import column_description, offset_description
from consorcio_core.names import AURORA, S3_RAW, SQLSERVER, STAGES, TRANSFORMED  # noqa: F401 - shared with the job

OWNERS = ["team:data-platform"]


def asset_key(stage: str, table: Table | str) -> dg.AssetKey:
    name = table if isinstance(table, str) else table.target_name
    return dg.AssetKey([stage, name])


def table_for_key(catalog: Catalog, key: dg.AssetKey) -> Table:
    """The catalog table behind any stage's asset key."""
    by_target = {t.target_name: t for t in catalog}
    return by_target[key.path[-1]]


def source_column_schema(table: Table) -> dg.TableSchema:
    """Columns as SQL Server (and DMS, which keeps the names) sees them."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                c.sqlserver_type_sql,
                description=column_description(table, c),
                constraints=dg.TableColumnConstraints(nullable=c.nullable, unique=(c.name,) == table.primary_key),
                tags={"pii": ""} if c.pii else {},
            )
            for c in table.columns
        ]
    )


def target_column_schema(table: Table) -> dg.TableSchema:
    """Columns as they land in the transformed zone and in Aurora (snake_case, PostgreSQL types)."""
    columns = []
    for c in table.columns:
        columns.append(
            dg.TableColumn(
                c.target_name,
                c.postgres_type,
                description=column_description(table, c),
                constraints=dg.TableColumnConstraints(nullable=c.nullable, unique=(c.name,) == table.primary_key),
                tags={"pii": ""} if c.pii else {},
            )
        )
        if c.offset_column:
            columns.append(
                dg.TableColumn(
                    c.offset_column,
                    "smallint",
                    description=offset_description(c),
                    constraints=dg.TableColumnConstraints(nullable=c.nullable),
                )
            )
    return dg.TableSchema(columns=columns)


def reload_on_upstream_change(stage: str) -> dg.AutomationCondition:
    """Declarative automation for every stage after `sqlserver`: when the same table's upstream asset updates
    (a new source data version, a new load), reload it, the whole chain in one run. Aurora assets ignore each
    other (none is another's dep today; kept so a parent's reload never reloads its children).
    Evaluated only while the `source_automation` sensor is on."""
    condition = dg.AutomationCondition.eager()
    return condition.ignore(dg.AssetSelection.groups(AURORA)) if stage == AURORA else condition
