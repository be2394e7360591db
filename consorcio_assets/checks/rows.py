"""Offending rows of a query: how many, the first primary keys, and the SQL that lists them."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from consorcio_assets.catalog import Table
from consorcio_assets.checks.outcome import MAX_KEYS, format_key
from consorcio_assets.checks.sql import compile_sql


@dataclass(frozen=True)
class Found:
    count: int
    keys: list[str]
    sql: str


def key_labels(n: int) -> list[str]:
    return [f"k{i}" for i in range(n)]


def count_query(query: sa.Select) -> sa.Select:
    return sa.select(sa.func.count()).select_from(query.subquery("offending"))


def listing_query(query: sa.Select, n_keys: int, limit: int = MAX_KEYS) -> sa.Select:
    """The first offending keys, in key order."""
    sub = query.subquery("offending")
    keys = [sub.c[k] for k in key_labels(n_keys)]
    return sa.select(*keys).order_by(*keys).limit(limit)


def find(
    conn: sa.Connection,
    query: sa.Select,
    table: Table,
    key_names: list[str] | None = None,
    limit: int = MAX_KEYS,
    count: int | None = None,
) -> Found:
    """`query` selects the offending rows' keys labelled k0, k1, ...; count them (unless the caller did)
    and list the first ones."""
    names = list(key_names or table.primary_key)
    if count is None:
        count = conn.execute(count_query(query)).scalar_one()
    listing = listing_query(query, len(names), limit)
    keys = [format_key(table, row, names) for row in conn.execute(listing)] if count else []
    return Found(int(count), keys, compile_sql(query, conn.engine))
