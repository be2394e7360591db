"""Views migrate as data (DMS full-loads them like tables, into `consorcio_snapshot`) and live as views
(`consorcio.<view>`, `target/live_views.py`): at load time the live view must equal its snapshot row for row.
Both read the same migrated base tables, so a difference is a snapshot taken on another source state, a base
table loaded wrong, or a live view whose SQL is not the contract's translation.
"""

from __future__ import annotations

import sqlalchemy as sa

from consorcio_assets.catalog import Catalog, Table
from consorcio_assets.checks import sql as q
from consorcio_assets.checks.outcome import MAX_KEYS, Outcome, format_key
from consorcio_assets.checks.rows import key_labels
from consorcio_assets.checks.sides import Side
from consorcio_assets.common.stages import AURORA
from consorcio_assets.target.live_views import view_select

CHECK = "view_matches_recomputation"


def recompute_sql(view: Table, catalog: Catalog) -> str:
    """The view's SELECT for PostgreSQL over the migrated base tables (what the live view runs)."""
    return view_select(view, catalog)


def live_view(target: Side, view: Table) -> sa.TableClause:
    schema, name = view.qualified_live_view.split(".")
    return sa.table(name, *(sa.column(c.target_name) for c in view.columns), schema=schema)


def balance_query(target: Side, view: Table, catalog: Catalog) -> sa.Select:
    """One pass over snapshot and live view: per distinct row, snapshot copies minus live-view copies."""
    names = [c.target_name for c in view.columns]
    recomputed = live_view(target, view)
    snapshot = target.table(view)
    both = sa.union_all(
        sa.select(*(snapshot.c[n] for n in names), sa.literal_column("1").label("copies")),
        sa.select(*(recomputed.c[n] for n in names), sa.literal_column("-1").label("copies")),
    ).subquery("both_sides")
    columns = [both.c[n] for n in names]
    keys = [
        both.c[view.column(k).target_name].label(label)
        for k, label in zip(view.primary_key, key_labels(len(view.primary_key)))
    ]
    return (
        sa.select(*keys, sa.func.sum(both.c.copies).label("balance"))
        .group_by(*columns)
        .having(sa.func.sum(both.c.copies) != 0)
    )


def reconcile(target: Side, view: Table, catalog: Catalog) -> Outcome:
    """Rows of the snapshot not in the live view and vice versa (a multiset difference)."""
    with target.engine.connect() as conn:
        kind = conn.execute(
            sa.text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:v)"), {"v": view.qualified_live_view}
        ).scalar()
    if kind != "v":
        return Outcome(
            AURORA,
            view,
            CHECK,
            False,
            f"live view {view.qualified_live_view} "
            + ("does not exist" if kind is None else f"is not a view (relkind {kind})"),
        )
    differences = balance_query(target, view, catalog).subquery("differences")
    balance = differences.c.balance
    totals = sa.select(
        sa.func.coalesce(sa.func.sum(sa.case((balance > 0, balance), else_=0)), 0),
        sa.func.coalesce(sa.func.sum(sa.case((balance < 0, -balance), else_=0)), 0),
    )
    keys = [differences.c[k] for k in key_labels(len(view.primary_key))]
    listing = sa.select(*keys, balance).order_by(*keys, balance).limit(MAX_KEYS)
    with target.engine.connect() as conn:
        stale, absent = (int(n) for n in conn.execute(totals).one())
        first = conn.execute(listing).all() if stale or absent else []
    counts = {"snapshot_rows_not_recomputed": stale, "recomputed_rows_not_in_snapshot": absent}
    if not stale and not absent:
        return Outcome(
            AURORA, view, CHECK, True, f"snapshot equals the live view {view.qualified_live_view}", counts=counts
        )
    summary = (
        f"snapshot differs from the live view {view.qualified_live_view}: {stale:,} snapshot rows "
        f"not in the view, {absent:,} live-view rows missing from the snapshot"
    )
    named = [f"{format_key(view, row[:-1])} ({'snapshot' if row[-1] > 0 else 'live view'})" for row in first]
    return Outcome(
        AURORA,
        view,
        CHECK,
        False,
        summary,
        counts=counts,
        keys=named,
        sql=q.compile_sql(balance_query(target, view, catalog), target.engine),
    )
