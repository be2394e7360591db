"""Planted differences: three known damages in the target that every row-level diff must find, by key.

A diff that reports "equal" on a faithful target proves nothing about a tool; one that names exactly the rows
we damaged does. After the load, one centavo is added to a numeric column of one instalment, one instalment
is deleted and one simulation's timestamp is moved by a millisecond; both tools must report those three keys
and nothing else. The originals are kept in a scratch schema (`bench_planted`) and put back afterwards, so
the rest of the benchmark (and a later run, should this one stop midway) sees the target as loaded.

Triggers stay off while planting and restoring (`session_replication_role = replica`): the rowversion
trigger of `simulacao` would otherwise stamp a new `versao_linha` and leave a second difference behind.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from consorcio_assets.catalog import TARGET_SCHEMA

PLANT_SCHEMA = "bench_planted"
#: (table, key columns, what is done, column): the three damages, in the order they are planted
PLANTS = (
    ("simulacao_parcela", ("simulacao_id", "numero_parcela"), "changed", "valor_total"),  # one centavo more
    ("simulacao_parcela", ("simulacao_id", "numero_parcela"), "missing", None),  # the row deleted
    ("simulacao", ("simulacao_id",), "changed", "atualizada_em"),  # one millisecond later
)
#: where in the key range each damage lands (fraction of the first key column's span): distinct simulations
POSITIONS = (0.25, 0.5, 0.75)
CHANGES = {"valor_total": "valor_total + 0.01", "atualizada_em": "atualizada_em + interval '1 millisecond'"}


@dataclass(frozen=True)
class Plant:
    table: str
    kind: str  # "changed" or "missing"
    column: str | None
    key: tuple[str, ...]  # the primary key, as text


def expected(plants: list[Plant]) -> dict[str, dict[str, list[list[str]]]]:
    """{table: {kind: [key, ...]}}: what a diff must report, and all it may report."""
    out: dict[str, dict[str, list[list[str]]]] = {}
    for p in plants:
        out.setdefault(p.table, {}).setdefault(p.kind, []).append(list(p.key))
    return {t: {k: sorted(v) for k, v in kinds.items()} for t, kinds in out.items()}


def _q(name: str) -> str:
    return f'"{name}"'


def _key_at(
    conn: psycopg.Connection, table: str, keys: tuple[str, ...], fraction: float, after: int | None = None
) -> tuple[str, ...]:
    """The first row at or after `fraction` of the first key column's range (one index probe), and past
    `after` (a first key already planted in this table: each damage in a row of its own)."""
    qualified = f"{_q(TARGET_SCHEMA)}.{_q(table)}"
    lo, hi = conn.execute(f"SELECT min({_q(keys[0])}), max({_q(keys[0])}) FROM {qualified}").fetchone() or (None, None)
    if lo is None:
        raise RuntimeError(f"{TARGET_SCHEMA}.{table} is empty: nothing to plant a difference in")
    at = max(lo + int((hi - lo) * fraction), after + 1 if after is not None else lo)
    cols = ", ".join(_q(k) + "::text" for k in keys)
    order = ", ".join(_q(k) for k in keys)
    row = conn.execute(
        f"SELECT {cols} FROM {qualified} WHERE {_q(keys[0])} >= %s ORDER BY {order} LIMIT 1", (at,)
    ).fetchone()
    if row is None:
        raise RuntimeError(f"{TARGET_SCHEMA}.{table} has too few rows to plant {len(PLANTS)} differences in")
    return tuple(row)


def _where(keys: tuple[str, ...]) -> str:
    """Key columns equal to text parameters (sent untyped, so PostgreSQL reads them as the column's type and
    the primary-key index serves the lookup)."""
    return " AND ".join(f"{_q(k)} = %s" for k in keys)


def plant(url: str) -> list[Plant]:
    """Damage the target as `PLANTS` says, keeping the originals; returns what was planted."""
    restore(url)  # a run stopped between plant and restore left its originals: put them back first
    plants: list[Plant] = []
    with psycopg.connect(url) as conn:
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(f"CREATE SCHEMA {_q(PLANT_SCHEMA)}")
        for i, ((table, keys, kind, column), fraction) in enumerate(zip(PLANTS, POSITIONS)):
            used = [int(p.key[0]) for p in plants if p.table == table]
            key = _key_at(conn, table, keys, fraction, max(used) if used else None)
            source = f"{_q(TARGET_SCHEMA)}.{_q(table)}"
            saved = f"{_q(PLANT_SCHEMA)}.{_q(f'{i}_{table}')}"
            conn.execute(f"CREATE TABLE {saved} AS SELECT * FROM {source} WHERE {_where(keys)}", key)
            if kind == "missing":
                conn.execute(f"DELETE FROM {source} WHERE {_where(keys)}", key)
            else:
                assert column is not None  # a "changed" plant names its column
                conn.execute(f"UPDATE {source} SET {_q(column)} = {CHANGES[column]} WHERE {_where(keys)}", key)
            plants.append(Plant(table, kind, column, key))
    return plants


def restore(url: str) -> int:
    """Put every saved original back (deleted rows inserted, changed columns reset); rows restored."""
    restored = 0
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (PLANT_SCHEMA,)).fetchone()
        if not exists:
            return 0
        conn.execute("SET LOCAL session_replication_role = replica")
        for i, (table, keys, kind, column) in reversed(list(enumerate(PLANTS))):  # the reverse of planting
            source = f"{_q(TARGET_SCHEMA)}.{_q(table)}"
            saved = f"{_q(PLANT_SCHEMA)}.{_q(f'{i}_{table}')}"
            found = conn.execute("SELECT to_regclass(%s)", (f"{PLANT_SCHEMA}.{i}_{table}",)).fetchone()[0]  # type: ignore[index]
            if found is None:
                continue
            match = " AND ".join(f"t.{_q(k)} = s.{_q(k)}" for k in keys)
            if kind == "missing":
                cur = conn.execute(
                    f"INSERT INTO {source} SELECT s.* FROM {saved} s "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {source} t WHERE {match})"
                )
            else:
                assert column is not None
                cur = conn.execute(f"UPDATE {source} t SET {_q(column)} = s.{_q(column)} FROM {saved} s WHERE {match}")
            restored += cur.rowcount
        conn.execute(f"DROP SCHEMA {_q(PLANT_SCHEMA)} CASCADE")
    return restored
