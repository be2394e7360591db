"""Schema checks: Aurora's tables are what the catalog says; the source has not drifted from the catalog.

Aurora: column names, types (as PostgreSQL itself spells the catalog's types: the expected columns are
created in a temporary table and read back with format_type, then rolled back), nullability, identity,
primary key, unique keys, foreign keys and CHECK constraints (named as in the contract, snake_case).
Source: columns added, removed or retyped since the catalog was parsed are a WARN before a load.
"""

from __future__ import annotations

import sqlalchemy as sa

from consorcio_assets.catalog import Catalog, Column, Table, snake_case
from consorcio_assets.checks.outcome import WARN, Outcome
from consorcio_assets.checks.sides import Side
from consorcio_assets.common.stages import AURORA, SQLSERVER

AURORA_SCHEMA, SOURCE_DRIFT = "schema_matches_catalog", "source_schema_unchanged"

_COLUMNS = sa.text("""
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity <> ''
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema AND c.relname = :table AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum""")

_CONSTRAINTS = sa.text("""
SELECT con.conname, con.contype, con.convalidated,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
       fc.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
WHERE n.nspname = :schema AND c.relname = :table AND con.contype IN ('p', 'u', 'f', 'c')""")


def expected_ddl(table: Table, name: str) -> str:
    """A temporary table with the catalog's columns, so PostgreSQL spells the expected types itself."""
    cols = []
    for c in table.columns:
        cols.append(f'"{c.target_name}" {c.postgres_type}')
        if c.offset_column:
            cols.append(f'"{c.offset_column}" smallint')
    return f'CREATE TEMPORARY TABLE "{name}" ({", ".join(cols)})'


def expected_columns(conn: sa.Connection, table: Table) -> dict[str, tuple[str, bool, bool]]:
    """{column: (type, not null, identity)} as the catalog wants them in Aurora."""
    name = f"expected_{table.target_name}"
    savepoint = conn.begin_nested()
    try:
        conn.exec_driver_sql(expected_ddl(table, name))
        schema = conn.execute(sa.text("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()")).scalar()
        types = {r[0]: r[1] for r in conn.execute(_COLUMNS, {"schema": schema, "table": name})}
    finally:
        savepoint.rollback()
    out = {}
    for c in table.columns:
        out[c.target_name] = (types[c.target_name], not c.nullable, c.identity)
        if c.offset_column:
            out[c.offset_column] = (types[c.offset_column], not c.nullable, False)
    return out


def actual_columns(conn: sa.Connection, table: Table) -> dict[str, tuple[str, bool, bool]]:
    rows = conn.execute(_COLUMNS, {"schema": table.target_schema, "table": table.target_name})
    return {name: (type_, bool(notnull), bool(identity)) for name, type_, notnull, identity in rows}


def _targets(table: Table, names) -> tuple[str, ...]:
    return tuple(table.column(n).target_name for n in names)


def expected_constraints(table: Table, catalog: Catalog) -> set[tuple]:
    out: set[tuple] = {("primary key", _targets(table, table.primary_key))}
    out |= {("unique", _targets(table, cols)) for _, cols in table.unique_keys}
    out |= {
        (
            "foreign key",
            _targets(table, fk.columns),
            catalog[fk.ref_table].target_name,
            _targets(catalog[fk.ref_table], fk.ref_columns),
        )
        for fk in table.foreign_keys
    }
    out |= {("check", snake_case(c.name)) for c in table.checks}
    return out


def constraints_of(conn: sa.Connection, table: Table) -> dict[tuple, tuple[str, bool]]:
    """{constraint as in `expected_constraints`: (name, validated)} of consorcio.<table>."""
    out: dict[tuple, tuple[str, bool]] = {}
    for name, kind, validated, cols, ref_table, ref_cols in conn.execute(
        _CONSTRAINTS, {"schema": table.target_schema, "table": table.target_name}
    ):
        if kind == "p":
            shape: tuple = ("primary key", tuple(cols))
        elif kind == "u":
            shape = ("unique", tuple(cols))
        elif kind == "f":
            shape = ("foreign key", tuple(cols), ref_table, tuple(ref_cols))
        else:
            shape = ("check", name)
        out[shape] = (name, bool(validated))
    return out


def actual_constraints(conn: sa.Connection, table: Table) -> set[tuple]:
    return set(constraints_of(conn, table))


def _describe(constraint: tuple) -> str:
    kind, rest = constraint[0], constraint[1:]
    if kind == "foreign key":
        return f"foreign key ({', '.join(rest[0])}) -> {rest[1]} ({', '.join(rest[2])})"
    if kind == "check":
        return f"check {rest[0]}"
    return f"{kind} ({', '.join(rest[0])})"


def column_differences(expected: dict, actual: dict) -> list[str]:
    diffs = [f"column {n} missing" for n in expected if n not in actual]
    diffs += [f"column {n} not in the catalog" for n in actual if n not in expected]
    for name in expected.keys() & actual.keys():
        (e_type, e_nn, e_id), (a_type, a_nn, a_id) = expected[name], actual[name]
        if e_type != a_type:
            diffs.append(f"column {name} is {a_type}, catalog says {e_type}")
        if e_nn != a_nn:
            diffs.append(
                f"column {name} is {'NOT NULL' if a_nn else 'nullable'}, catalog says "
                f"{'NOT NULL' if e_nn else 'nullable'}"
            )
        if e_id and not a_id:
            diffs.append(f"column {name} is not an identity column")
    return diffs


def aurora_schema(target: Side, table: Table, catalog: Catalog) -> Outcome:
    """Columns, types, nullability and constraints of consorcio.<table> against the catalog."""
    with target.engine.connect() as conn:
        actual = actual_columns(conn, table)
        if not actual:
            return Outcome(AURORA, table, AURORA_SCHEMA, False, f"table {table.qualified_target} does not exist")
        diffs = column_differences(expected_columns(conn, table), actual)
        want, have = expected_constraints(table, catalog), actual_constraints(conn, table)
    diffs += [f"{_describe(c)} missing" for c in sorted(want - have)]
    diffs += [f"{_describe(c)} not in the catalog" for c in sorted(have - want)]
    counts = {"columns": len(actual), "differences": len(diffs)}
    if not diffs:
        return Outcome(
            AURORA,
            table,
            AURORA_SCHEMA,
            True,
            f"{len(actual)} columns and {len(have)} constraints as the catalog says",
            counts=counts,
        )
    return Outcome(
        AURORA,
        table,
        AURORA_SCHEMA,
        False,
        f"{len(diffs)} differences from the catalog: " + "; ".join(diffs[:6]) + (" …" if len(diffs) > 6 else ""),
        counts=counts,
        details={"differences": diffs},
    )


# ---- source drift ----------------------------------------------------------------------------------

SOURCE_COLUMNS = sa.text("""
SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, datetime_precision
FROM information_schema.columns WHERE table_schema = :schema AND table_name = :table
ORDER BY ordinal_position""")


def _sqlserver_type(data_type: str, length, precision, scale, fsp) -> str:
    """INFORMATION_SCHEMA's description of a SQL Server column, spelled like the contract."""
    t = data_type.lower()
    if t == "timestamp":
        return "ROWVERSION"
    if t in ("decimal", "numeric"):
        return f"DECIMAL({precision},{scale})"
    if t in ("char", "nchar", "varchar", "nvarchar", "binary", "varbinary"):
        return f"{t.upper()}({'MAX' if length == -1 else length})"
    if t in ("datetime2", "datetimeoffset", "time"):
        return f"{t.upper()}({fsp})"
    return t.upper()


def _expected_source_type(column: Column, dialect: str) -> str:
    return column.sqlserver_type_sql if dialect == "mssql" else column.duckdb_type.upper()


def source_columns(source: Side, table: Table) -> dict[str, str]:
    with source.engine.connect() as conn:
        rows = conn.execute(SOURCE_COLUMNS, {"schema": table.schema, "table": table.name}).all()
    if source.dialect == "mssql":
        return {r[0]: _sqlserver_type(*r[1:]) for r in rows}
    return {r[0]: r[1].upper() for r in rows}


def source_drift(source: Side, table: Table) -> Outcome:
    """Columns added, removed or retyped in the source since the catalog (WARN: the load would break)."""
    actual = source_columns(source, table)
    expected = {c.name: _expected_source_type(c, source.dialect) for c in table.columns}
    diffs = [f"column {n} removed" for n in expected if n not in actual]
    diffs += [f"column {n} added ({actual[n]})" for n in actual if n not in expected]
    diffs += [
        f"column {n} is {actual[n]}, catalog says {expected[n]}"
        for n in expected.keys() & actual.keys()
        if actual[n] != expected[n]
    ]
    counts = {"columns": len(actual), "differences": len(diffs)}
    if not actual:
        return Outcome(
            SQLSERVER,
            table,
            SOURCE_DRIFT,
            False,
            f"{table.qualified_source} not found in the source",
            severity=WARN,
            counts=counts,
        )
    if not diffs:
        return Outcome(
            SQLSERVER,
            table,
            SOURCE_DRIFT,
            True,
            f"{len(actual)} columns as in the catalog",
            severity=WARN,
            counts=counts,
        )
    return Outcome(
        SQLSERVER,
        table,
        SOURCE_DRIFT,
        False,
        "source drifted from the catalog: " + "; ".join(diffs),
        severity=WARN,
        counts=counts,
        details={"differences": diffs},
    )
