"""Views migrate as data (DMS full-loads them like tables); recomputed in PostgreSQL from the migrated
base tables, each must equal its migrated snapshot row for row.

The view's T-SQL is transpiled by the catalog; two things PostgreSQL rejects are fixed in the tree:
DATEFROMPARTS becomes make_date, and a BIT compared with 1/0 becomes the boolean itself. The local
wall-clock time of a DATETIMEOFFSET (what SQL Server's YEAR()/CAST AS DATE read) is the UTC instant plus
its offset companion column.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlglot
from sqlglot import exp

from ..catalog import Catalog, Table, snake_case
from ..catalog.views import transpile_view
from ..stages import AURORA
from . import sql as q
from .report import MAX_KEYS, Outcome, format_key
from .rows import key_labels
from .sides import Side

CHECK = "view_matches_recomputation"


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
            if (isinstance(column, exp.Column) and column.name in booleans and isinstance(literal, exp.Literal)
                    and literal.this in ("0", "1")):
                return column.copy() if literal.this == "1" else exp.Not(this=column.copy())
        return node

    return fix


def recompute_sql(view: Table, catalog: Catalog) -> str:
    """The view's SELECT for PostgreSQL over the migrated base tables, output typed as the catalog says."""
    sql = transpile_view(view, catalog.by_name, "postgres", table_sql=lambda t: t.qualified_target,
                         column_name=snake_case, local_timestamp=_local_timestamp,
                         cast_type=lambda c: c.postgres_type)
    return sqlglot.parse_one(sql, read="postgres").transform(_fix(_boolean_columns(catalog))).sql("postgres")


def balance_query(target: Side, view: Table, catalog: Catalog) -> sa.Select:
    """One pass over snapshot and recomputation: per distinct row, snapshot copies minus recomputed copies."""
    names = [c.target_name for c in view.columns]
    recomputed = sa.text(recompute_sql(view, catalog)).columns(*(sa.column(n) for n in names)).subquery("recomputed")
    snapshot = target.table(view)
    both = sa.union_all(
        sa.select(*(snapshot.c[n] for n in names), sa.literal_column("1").label("copies")),
        sa.select(*(recomputed.c[n] for n in names), sa.literal_column("-1").label("copies")),
    ).subquery("both_sides")
    columns = [both.c[n] for n in names]
    keys = [both.c[view.column(k).target_name].label(label)
            for k, label in zip(view.primary_key, key_labels(len(view.primary_key)))]
    return (sa.select(*keys, sa.func.sum(both.c.copies).label("balance")).group_by(*columns)
            .having(sa.func.sum(both.c.copies) != 0))


def reconcile(target: Side, view: Table, catalog: Catalog) -> Outcome:
    """Rows of the snapshot not produced by the recomputation and vice versa (a multiset difference)."""
    differences = balance_query(target, view, catalog).subquery("differences")
    balance = differences.c.balance
    totals = sa.select(sa.func.coalesce(sa.func.sum(sa.case((balance > 0, balance), else_=0)), 0),
                       sa.func.coalesce(sa.func.sum(sa.case((balance < 0, -balance), else_=0)), 0))
    keys = [differences.c[k] for k in key_labels(len(view.primary_key))]
    listing = sa.select(*keys, balance).order_by(*keys, balance).limit(MAX_KEYS)
    with target.engine.connect() as conn:
        stale, absent = (int(n) for n in conn.execute(totals).one())
        first = conn.execute(listing).all() if stale or absent else []
    counts = {"snapshot_rows_not_recomputed": stale, "recomputed_rows_not_in_snapshot": absent}
    if not stale and not absent:
        return Outcome(AURORA, view, CHECK, True, "snapshot equals the view recomputed from the migrated tables",
                       counts=counts)
    summary = (f"snapshot differs from the view recomputed from the migrated tables: {stale:,} snapshot rows "
               f"not reproduced, {absent:,} recomputed rows missing from the snapshot")
    named = [f"{format_key(view, row[:-1])} ({'snapshot' if row[-1] > 0 else 'recomputed'})" for row in first]
    return Outcome(AURORA, view, CHECK, False, summary, counts=counts, keys=named,
                   sql=q.compile_sql(balance_query(target, view, catalog), target.engine))
