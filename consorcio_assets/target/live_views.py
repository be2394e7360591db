"""The contract's views as live PostgreSQL views under the names the application reads (`consorcio.<view>`).

DMS full-loads a view as a table: that snapshot lands in `consorcio_snapshot` (the catalog's `target_schema`)
and the checks compare it with the live view. The live view's SELECT is the contract's T-SQL transpiled by the
catalog; two things PostgreSQL rejects are fixed in the tree: DATEFROMPARTS becomes make_date, and a BIT
compared with 1/0 becomes the boolean itself. The local wall-clock time of a DATETIMEOFFSET (what SQL Server's
YEAR()/CAST AS DATE read) is the UTC instant plus its offset companion column.

The views are created after a batch publishes (Dagster side, `apply_live_views`); a later swap of a base table
keeps them, because the Glue job re-creates the views that depend on a table it swaps (with grants and comment).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from consorcio_assets.catalog import Catalog, Table, snake_case
from consorcio_assets.catalog.views import transpile_view
from consorcio_assets.target.roles import VIEW_READERS


def _local_timestamp(column_sql: str) -> str:
    return f"({column_sql} AT TIME ZONE 'UTC' + make_interval(mins => {column_sql}_offset_minutes))"


def _boolean_columns(catalog: Catalog) -> set[str]:
    return {c.target_name for t in catalog.base_tables for c in t.columns if c.family == "bool"}


def _fix(booleans: set[str]):
    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.DateFromParts):
            parts = [node.args["year"], node.args["month"], node.args["day"]]
            return exp.Anonymous(this="make_date", expressions=[exp.cast(p.copy(), "int") for p in parts])
        if isinstance(node, exp.EQ):
            column, literal = node.this, node.expression
            if (
                isinstance(column, exp.Column)
                and column.name in booleans
                and isinstance(literal, exp.Literal)
                and literal.this in ("0", "1")
            ):
                return column.copy() if literal.this == "1" else exp.Not(this=column.copy())
        return node

    return fix


def view_select(view: Table, catalog: Catalog) -> str:
    """The view's SELECT for PostgreSQL over the migrated base tables, output typed as the catalog says."""
    sql = transpile_view(
        view,
        catalog.by_name,
        "postgres",
        table_sql=lambda t: t.qualified_target,
        column_name=snake_case,
        local_timestamp=_local_timestamp,
        cast_type=lambda c: c.postgres_type,
    )
    return sqlglot.parse_one(sql, read="postgres").transform(_fix(_boolean_columns(catalog))).sql("postgres")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def create_statements(view: Table, catalog: Catalog) -> list[str]:
    """CREATE OR REPLACE VIEW, its comment and SELECT for the application and checker roles (those that exist:
    on Aurora the DBA creates them). A table of the same name (a snapshot loaded before the snapshots moved to
    their own schema) is dropped first."""
    name = view.qualified_live_view
    schema, relname = name.split(".")
    grants = " ".join(
        f"IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{r}') THEN GRANT SELECT ON {name} TO {r}; END IF;"
        for r in VIEW_READERS
    )
    comment = (
        f"{view.description} Live view of {view.qualified_source}, translated from the contract; "
        f"DMS's snapshot of it is {view.qualified_target}."
    )
    return [
        f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname = '{schema}' AND c.relname = '{relname}' AND c.relkind = 'r') "
        f"THEN DROP TABLE {name}; END IF; END $$",
        f"CREATE OR REPLACE VIEW {name} AS {view_select(view, catalog)}",
        f"COMMENT ON VIEW {name} IS {_literal(comment)}",
        f"DO $$ BEGIN {grants} END $$",
    ]


def live_views_sql(catalog: Catalog) -> list[str]:
    return [s for view in catalog.views for s in create_statements(view, catalog)]


def apply_live_views(conn, catalog: Catalog) -> list[str]:
    """Create every live view whose base tables are all in Aurora, in one transaction; the views created."""
    created = []
    with conn.transaction():
        for view in catalog.views:
            bases = [catalog[name].qualified_target for name in view.depends_on]
            present = conn.execute(
                "SELECT bool_and(to_regclass(t) IS NOT NULL) FROM unnest(%s::text[]) t", (bases,)
            ).fetchone()[0]
            if not present:
                continue
            for statement in create_statements(view, catalog):
                conn.execute(statement)
            created.append(view.qualified_live_view)
    return created
