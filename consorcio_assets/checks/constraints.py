"""Keys and constraints in Aurora, proven by queries that list the offending rows.

A constraint PostgreSQL holds and has validated is proof already (it rejected every violating row), so
that constraint costs no scan. A missing constraint, a NOT VALID foreign key, or one dropped to load
faster proves nothing: then a query checks every row and names the offending ones instead of failing
an ALTER.
"""

from __future__ import annotations

import sqlalchemy as sa

from consorcio_assets.catalog import Catalog, Table, snake_case
from consorcio_assets.checks.outcome import Outcome
from consorcio_assets.checks.rows import Found, find, key_labels
from consorcio_assets.checks.schema import constraints_of
from consorcio_assets.checks.sides import Side
from consorcio_assets.common.stages import AURORA

PRIMARY_KEY, FOREIGN_KEYS, UNIQUE_KEYS, CHECKS = (
    "primary_key_valid",
    "foreign_keys_resolve",
    "unique_keys_hold",
    "check_constraints_hold",
)


def _keys(side: Side, clause, table: Table) -> list[sa.ColumnElement]:
    return [
        side.col(clause, table.column(k)).label(label)
        for k, label in zip(table.primary_key, key_labels(len(table.primary_key)))
    ]


def duplicate_keys_query(side: Side, table: Table, columns: list[str]) -> sa.Select:
    """Rows whose `columns` (all set) appear more than once, by primary key."""
    clause = side.table(table)
    cols = [side.col(clause, table.column(c)) for c in columns]
    dup = sa.select(*cols).where(*(c.is_not(None) for c in cols)).group_by(*cols).having(sa.func.count() > 1)
    dup = dup.subquery("dup")
    joined = clause.join(dup, sa.and_(*(c == dup.c[c.name] for c in cols)))
    return sa.select(*_keys(side, clause, table)).select_from(joined)


def null_keys_query(side: Side, table: Table) -> sa.Select:
    clause = side.table(table)
    keys = [side.col(clause, table.column(k)) for k in table.primary_key]
    return sa.select(*_keys(side, clause, table)).where(sa.or_(*(k.is_(None) for k in keys)))


def _targets(table: Table, names) -> tuple[str, ...]:
    return tuple(table.column(n).target_name for n in names)


def _enforced(conn: sa.Connection, table: Table, shape: tuple) -> str | None:
    """The name of the validated constraint of this shape on the table, if PostgreSQL enforces one."""
    name, validated = constraints_of(conn, table).get(shape, (None, False))
    return name if validated else None


_NONE = Found(0, [], "")


def primary_key(target: Side, table: Table) -> Outcome:
    key = ", ".join(table.primary_key)
    with target.engine.connect() as conn:
        enforced = _enforced(conn, table, ("primary key", _targets(table, table.primary_key)))
        if enforced:
            return Outcome(
                AURORA,
                table,
                PRIMARY_KEY,
                True,
                f"primary key ({key}) unique and not null: enforced by constraint {enforced}",
            )
        dups = find(conn, duplicate_keys_query(target, table, list(table.primary_key)), table)
        nulls = find(conn, null_keys_query(target, table), table)
    counts = {"duplicate_key_rows": dups.count, "null_key_rows": nulls.count}
    if not dups.count and not nulls.count:
        return Outcome(
            AURORA,
            table,
            PRIMARY_KEY,
            True,
            f"primary key ({key}) unique and not null (no constraint enforces it: every row checked)",
            counts=counts,
        )
    summary = f"primary key ({key}): {dups.count:,} rows share a key, {nulls.count:,} rows have a NULL key part"
    sql = dups.sql if dups.count else nulls.sql
    return Outcome(AURORA, table, PRIMARY_KEY, False, summary, counts=counts, keys=dups.keys + nulls.keys, sql=sql)


def orphans_query(target: Side, table: Table, fk, catalog: Catalog) -> sa.Select:
    """Child rows whose foreign key (all parts set) has no parent row."""
    parent = catalog[fk.ref_table]
    child_clause, parent_clause = target.table(table, "c"), target.table(parent, "p")
    child_cols = [target.col(child_clause, table.column(c)) for c in fk.columns]
    parent_cols = [target.col(parent_clause, parent.column(c)) for c in fk.ref_columns]
    joined = child_clause.outerjoin(parent_clause, sa.and_(*(c == p for c, p in zip(child_cols, parent_cols))))
    return (
        sa.select(*_keys(target, child_clause, table))
        .select_from(joined)
        .where(*(c.is_not(None) for c in child_cols), parent_cols[0].is_(None))
    )


def _per_constraint(outcomes: list[tuple[str, Found, bool]], table: Table, check: str, what: str) -> Outcome:
    counts = {f"{name}_rows": found.count for name, found, _ in outcomes}
    bad = [(name, found) for name, found, _ in outcomes if found.count]
    if not bad:
        enforced = sum(1 for *_, by_constraint in outcomes if by_constraint)
        return Outcome(
            AURORA,
            table,
            check,
            True,
            f"{len(outcomes)} {what} hold ({enforced} enforced by validated "
            f"constraints, {len(outcomes) - enforced} checked row by row)",
            counts=counts,
        )
    keys = [f"{k} ({name})" for name, found in bad for k in found.keys]
    summary = "; ".join(f"{name}: {found.count:,} rows" for name, found in bad)
    return Outcome(
        AURORA, table, check, False, f"{what} violated: {summary}", counts=counts, keys=keys, sql=bad[0][1].sql
    )


def _unless_enforced(conn, table: Table, name: str, shape: tuple, query: sa.Select) -> tuple[str, Found, bool]:
    if _enforced(conn, table, shape):
        return name, _NONE, True
    return name, find(conn, query, table), False


def foreign_keys(target: Side, table: Table, catalog: Catalog) -> Outcome:
    with target.engine.connect() as conn:
        found = [
            _unless_enforced(
                conn,
                table,
                snake_case(fk.name),
                (
                    "foreign key",
                    _targets(table, fk.columns),
                    catalog[fk.ref_table].target_name,
                    _targets(catalog[fk.ref_table], fk.ref_columns),
                ),
                orphans_query(target, table, fk, catalog),
            )
            for fk in table.foreign_keys
        ]
    return _per_constraint(found, table, FOREIGN_KEYS, "foreign keys")


def unique_keys(target: Side, table: Table) -> Outcome:
    with target.engine.connect() as conn:
        found = [
            _unless_enforced(
                conn,
                table,
                snake_case(name),
                ("unique", _targets(table, cols)),
                duplicate_keys_query(target, table, list(cols)),
            )
            for name, cols in table.unique_keys
        ]
    return _per_constraint(found, table, UNIQUE_KEYS, "unique keys")


def check_violations_query(target: Side, table: Table, check) -> sa.Select:
    """Rows for which the contract's CHECK predicate is false (NULL passes, as in SQL)."""
    clause = target.table(table)
    return (
        sa.select(*_keys(target, clause, table))
        .select_from(clause)
        .where(sa.literal_column(f"NOT ({check.to_sql('postgres')})", sa.Boolean()))
    )


def check_constraints(target: Side, table: Table) -> Outcome:
    """A validated CHECK of the contract's name is trusted (the schema check compares names, not predicates)."""
    with target.engine.connect() as conn:
        found = [
            _unless_enforced(
                conn, table, snake_case(c.name), ("check", snake_case(c.name)), check_violations_query(target, table, c)
            )
            for c in table.checks
        ]
    return _per_constraint(found, table, CHECKS, "CHECK constraints")
