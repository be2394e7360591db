"""The table spec: everything the Glue job needs to know about one table, built from the catalog.

Glue has no `consorcio_assets`, so the job receives the catalog's view of a table as JSON: names on both sides,
columns with their type family, Arrow (DMS) and PostgreSQL types, nullability, sizes, the offset companion,
the primary key, the staging and final DDL, and the foreign keys to re-add when the table is swapped.
"""

from __future__ import annotations

import json

from consorcio_assets.catalog import Catalog, Column, Table
from consorcio_assets.common.stages import AURORA, TRANSFORMED, asset_key
from consorcio_assets.target import ddl, semantics
from consorcio_core.names import SPEC_VERSION


def column_spec(c: Column, table_kind: str = "table") -> dict:
    return {
        "source": c.name,
        "target": c.target_name,
        "family": c.family,
        "sql_type": c.sqlserver_type_sql,
        "arrow": c.rule.arrow,
        "postgres_type": c.postgres_type,
        "nullable": c.nullable,
        "length": c.length,
        "precision": c.precision,
        "scale": c.scale,
        "fsp": c.fsp,
        "identity": c.identity,
        "pii": c.pii,
        "offset_column": c.offset_column,
        "free_text": c.free_text,
        # PostgreSQL computes it (GENERATED ALWAYS AS ... STORED): the COPY leaves it out
        "generated": bool(c.postgres_computed) and table_kind == "table",
    }


def table_spec(table: Table, catalog: Catalog, *, expected_rows: int | None = None) -> dict:
    """The spec of `table`; `expected_rows` is what DMS reported loading (None when unknown)."""
    staging = ddl.STAGING_SCHEMA
    return {
        "version": SPEC_VERSION,
        "source": {"schema": table.schema, "name": table.name},
        # a view's DMS snapshot goes to consorcio_snapshot (consorcio.<view> is the live view)
        "target": {"schema": table.target_schema, "name": table.target_name, "staging_schema": staging},
        "kind": table.kind,
        "asset_keys": {stage: asset_key(stage, table).to_user_string() for stage in (TRANSFORMED, AURORA)},
        "columns": [column_spec(c, table.kind) for c in table.columns],
        "primary_key": list(table.primary_key),
        "expected_rows": expected_rows,
        "ddl": {
            "create": [*semantics.collations(table), ddl.create_table(table, staging), *ddl.comments(table, staging)],
            "after_load": ddl.after_load(table, staging),
            "identity": [c.target_name for c in table.columns if c.identity],
            "foreign_keys": ddl.foreign_keys(table, catalog),
            "incoming_foreign_keys": ddl.incoming_foreign_keys(table, catalog),
            "rejects": ddl.rejects_table(table.target_schema),  # the job keeps rejects beside the table
        },
    }


def spec_argument(spec: dict) -> str:
    """The spec as one compact JSON job argument."""
    return json.dumps(spec, separators=(",", ":"), ensure_ascii=False)
