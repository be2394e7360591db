"""Every statement the platform may send to the source, from one place, rendered for SQL Server or DuckDB.

A DBA reviews the SQL Server rendering (`consorcio sql --dialect mssql`) or runs it in SSMS before the
migration; the test suite lints it for constructs SQL Server 2017 lacks (`source.tsql_lint`) and runs its
transpilation on the DuckDB stand-in against the DuckDB twin (`--dialect duckdb`). Each statement is built
by the very function the check or asset calls, so what is printed is what runs; values the platform
only knows at run time (a hashdiff segment's bounds, a bisection's keys) are shown with representative
constants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from consorcio_assets.catalog import Catalog, Table
from consorcio_assets.catalog import catalog as load_catalog
from consorcio_assets.checks import aggregates, business_rules, hashdiff, parity, precision, rows
from consorcio_assets.checks import schema as schema_check
from consorcio_assets.checks import sql as q
from consorcio_assets.checks.sides import SOURCE, Side
from consorcio_assets.dms import assessment, mappings, preflight
from consorcio_assets.source.queries import observation_query

DIALECTS = ("mssql", "duckdb")


@dataclass(frozen=True)
class Statement:
    """One source statement: the check or asset it serves, the table, and its SQL per dialect."""

    serves: str
    table: str
    build: Callable[[Side], sa.ClauseElement | str | None]  # None: no statement in this dialect

    def render(self, dialect: str) -> str | None:
        built = self.build(source_side(dialect))
        if built is None or isinstance(built, str):
            return built
        return q.compile_sql(built, dialect_of(dialect))


def dialect_of(name: str) -> sa.engine.Dialect:
    if name == "mssql":
        return mssql.dialect()
    if name == "duckdb":
        from duckdb_engine import Dialect

        return Dialect()
    raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, not {name!r}")


def source_side(dialect: str) -> Side:
    """A source Side that only compiles (no connection): statements are built exactly as the checks build them."""
    return Side(SOURCE, SimpleNamespace(dialect=dialect_of(dialect)))


def _per_dialect(mssql_sql: str, duckdb_sql: str | None) -> Callable[[Side], str | None]:
    return lambda side: mssql_sql if side.dialect == "mssql" else duckdb_sql


# ---- statements per table ------------------------------------------------------------------------------------


def _hashdiff(table: Table, serves: str, project: Callable[[Side, Table], hashdiff.Projection]) -> Iterator[Statement]:
    """Bounds, one level of segments, the leaf rows and the keys listing (representative bounds)."""
    name = table.qualified_source

    def with_bounds(build):
        def run(side: Side):
            p = project(side, table)
            lo, hi = (1, 1_000_000) if p.ordered else (0, hashdiff.HASH_SPACE - 1)
            return build(p, lo, hi)

        return run

    yield Statement(f"{serves} (key range)", name, lambda side: hashdiff.bounds_query(project(side, table)))
    yield Statement(
        f"{serves} (segment checksums)",
        name,
        with_bounds(lambda p, lo, hi: hashdiff.segments_query(p, lo, hi, -(-(hi - lo + 1) // 32))),
    )
    yield Statement(f"{serves} (leaf rows)", name, with_bounds(lambda p, lo, hi: hashdiff.rows_query(p, lo, lo + 999)))


def _table_statements(table: Table, cat: Catalog) -> Iterator[Statement]:
    name = table.qualified_source
    yield Statement(f"sqlserver/{table.name} observation", name, lambda side: observation_query(table))
    yield Statement(
        f"{schema_check.SOURCE_DRIFT} (schema drift)",
        name,
        lambda side: schema_check.SOURCE_COLUMNS.bindparams(schema=table.schema, table=table.name),
    )
    yield Statement("dms_full_load pre-flight (schema drift)", name, lambda side: preflight.columns_query(table))
    yield Statement("dms_full_load pre-flight (source rows)", name, lambda side: preflight.count_query(table))
    if preflight.lob_query(table) is not None:
        yield Statement("dms_full_load pre-flight (longest LOB)", name, lambda side: preflight.lob_query(table))
    if mappings.PARALLEL_LOAD_SEGMENTS.get(table.name, 0) > 1:
        yield Statement(
            "dms_full_load pre-flight (parallel-load bounds)", name, lambda side: mappings.bounds_query(table)
        )
    yield Statement(f"{parity.CHECK}", name, lambda side: parity.count_query(side, table))
    yield Statement(
        f"{aggregates.CHECK}", name, lambda side: aggregates.aggregate_query(side, table, aggregates.metrics(table))
    )
    yield from _hashdiff(table, hashdiff.CHECK, lambda side, t: hashdiff.projection(side, t, by_value=True))
    if precision.hundred_ns_columns(table):
        yield Statement(
            f"{precision.SUB_MICROSECOND} (per column)",
            name,
            lambda side: precision.sub_microsecond_queries(side, table)[0],
        )
        yield Statement(
            f"{precision.SUB_MICROSECOND} (rows affected)",
            name,
            lambda side: rows.count_query(precision.sub_microsecond_queries(side, table)[1]),
        )
        yield Statement(
            f"{precision.SUB_MICROSECOND} (first keys)",
            name,
            lambda side: rows.listing_query(precision.sub_microsecond_queries(side, table)[1], len(table.primary_key)),
        )
    if precision.lob_columns(table):
        yield from _hashdiff(table, precision.LOB_TRUNCATION, precision.lob_projection)
        yield Statement(
            f"{precision.LOB_TRUNCATION} (lengths of the differing rows)",
            name,
            lambda side: precision.lengths_query(
                precision.lob_projection(side, table), precision.lob_columns(table), [1, 2]
            ),
        )


def _rule_statements(cat: Catalog) -> Iterator[Statement]:
    for rule in business_rules.RULES:
        name = cat[rule.table].qualified_source
        n_keys = len(rule.key or cat[rule.table].primary_key)
        yield Statement(
            f"{rule.check} (violations per part)",
            name,
            lambda side, r=rule: business_rules.rule_queries(r, side, cat)[0],
        )
        yield Statement(
            f"{rule.check} (first offending keys)",
            name,
            lambda side, r=rule, n=n_keys: rows.listing_query(business_rules.rule_queries(r, side, cat)[1], n),
        )


def _assessment_statements(cat: Catalog) -> Iterator[Statement]:
    for item, mssql_sql, duckdb_sql in assessment.probe_statements(list(cat)):
        yield Statement(f"dms_full_load premigration assessment: {item}", "", _per_dialect(mssql_sql, duckdb_sql))


def statements(cat: Catalog | None = None) -> list[Statement]:
    """The whole inventory, in a stable order: per table, then business rules, then the DMS assessment."""
    cat = cat or load_catalog()
    out = [s for t in cat for s in _table_statements(t, cat)]
    out += list(_rule_statements(cat))
    out += list(_assessment_statements(cat))
    return out


def script(dialect: str, cat: Catalog | None = None) -> str:
    """Every statement for `dialect`, each after a `-- <what it serves>` line and followed by `GO`."""
    dialect_of(dialect)
    parts = []
    for s in statements(cat):
        sql = s.render(dialect)
        header = f"-- {s.serves}" + (f": {s.table}" if s.table else "")
        if sql is None:
            parts.append(f"{header}\n-- (SQL Server only: no twin on the {dialect} stand-in)\nGO\n")
        else:
            parts.append(f"{header}\n{sql.strip()}\nGO\n")
    return "\n".join(parts)
