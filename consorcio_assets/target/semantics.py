"""DDL that gives Aurora the source application's semantics, attached after the data is in.

The bulk copy needs none of it (and some would be wrong during it: a ROWVERSION trigger would renumber the
migrated values), so these statements join the `after_load` list the Glue job runs on the staging table once
the COPY is done; they move with the table when it is swapped in:

- DEFAULTs translated by the catalog's default-value rule table;
- ROWVERSION: one database-wide sequence and a BEFORE INSERT OR UPDATE trigger per column, so every write
  gives the row a value greater than every value before it (as SQL Server's database rowversion counter); the
  sequence is first moved past the highest migrated value, so migrated values stay and new ones sort after;
- the ICU collations the catalog's collation rule table uses, created before the table (its columns name them);
  on a server without ICU (the embedded pgserver) a byte-wise stand-in, plus unique indexes on
  `consorcio.ci_ai_key(column)` for the keys over those columns, so the keys still collide as CI_AI.
"""

from __future__ import annotations

from consorcio_assets.catalog import TARGET_SCHEMA, Table, snake_case
from consorcio_assets.catalog.collations import COLLATIONS, FALLBACK_COMMENT, KEY_FUNCTION, key_function_sql
from consorcio_assets.catalog.defaults import OFFSET_COMPANION_DEFAULT

ROWVERSION_SEQUENCE = "rowversion_seq"
#: the job's DDL lock: statements creating shared objects (collations, the sequence) take it
DDL_LOCK = "hashtextextended('consorcio.ddl', 0)"


def _q(schema: str, name: str) -> str:
    from consorcio_assets.target.ddl import qualified

    return qualified(schema, name)


def _locked(statement: str) -> str:
    """One shared object created once even when several table loads race to create it."""
    body = statement.replace("$$", "")
    return f"DO $$ BEGIN PERFORM pg_advisory_xact_lock({DDL_LOCK}); EXECUTE $ddl${body} $ddl$; END $$"


def collations(table: Table) -> list[str]:
    """CREATE COLLATION for each collation the table's columns use (before its CREATE TABLE); on a server built
    without ICU (SQLSTATE 0A000) a deterministic stand-in of the same name, commented as such. Then the CI_AI key
    function (the stand-in's unique keys and the documented lookups use it), once."""
    out = []
    for name in sorted({c.collation for c in table.columns if c.collation}):
        collation = COLLATIONS[name]
        out.append(
            f"DO $$ BEGIN PERFORM pg_advisory_xact_lock({DDL_LOCK}); "
            f"CREATE SCHEMA IF NOT EXISTS {TARGET_SCHEMA}; "
            f"BEGIN EXECUTE $ddl${collation.create_sql()}$ddl$; "
            f"EXCEPTION WHEN feature_not_supported THEN EXECUTE $ddl${collation.fallback_sql()}$ddl$; "
            f"EXECUTE $ddl$COMMENT ON COLLATION {collation.qualified} IS '{FALLBACK_COMMENT}'$ddl$; END; "
            f"IF to_regprocedure('{KEY_FUNCTION}(text)') IS NULL THEN EXECUTE $ddl${key_function_sql()} $ddl$; "
            f"END IF; END $$"
        )
    return out


def _stand_in(collation: str) -> str:
    """True (in SQL) when the server's `collation` is the deterministic stand-in, not ICU."""
    return (
        f"EXISTS (SELECT 1 FROM pg_collation WHERE collname = '{collation}' "
        f"AND collnamespace = '{TARGET_SCHEMA}'::regnamespace AND collprovider <> 'i')"
    )


def stand_in_keys(table: Table, schema: str) -> list[dict]:
    """On the ICU-less stand-in only: each primary or unique key over a ci_ai column also gets a unique index on
    the CI_AI key of that column, so 'ABC'/'abc' and 'José'/'Jose' collide as they do in SQL Server (and on
    Aurora, where the key's own ICU collation does it)."""
    t = _q(schema, table.target_name)
    keys = [(f"pk_{table.target_name}", table.primary_key), *table.unique_keys]
    items = []
    for key_name, cols in keys:
        columns = [table.column(c) for c in cols]
        collated = [c for c in columns if c.collation]
        if not collated:
            continue
        exprs = ", ".join(
            f"{KEY_FUNCTION}({_ident(c.target_name)})" if c.collation else _ident(c.target_name) for c in columns
        )
        name = f"{snake_case(key_name)}_ci_ai"[:63]
        items.append(
            {
                "kind": "collation_key",
                "name": name,
                "column": collated[0].target_name,
                "sql": f"DO $$ BEGIN IF {_stand_in(collated[0].collation)} THEN "
                f"CREATE UNIQUE INDEX {_ident(name)} ON {t} ({exprs}); END IF; END $$",
            }
        )
    return items


def defaults(table: Table, schema: str) -> list[dict]:
    t = _q(schema, table.target_name)
    items = []
    for c in table.columns:
        if c.postgres_default is None:
            continue
        items.append(
            {
                "kind": "default",
                "name": f"df_{table.target_name}_{c.target_name}",
                "column": c.target_name,
                "expression": c.postgres_default,
                "sql": f"ALTER TABLE {t} ALTER COLUMN {_ident(c.target_name)} SET DEFAULT {c.postgres_default}",
            }
        )
        if c.offset_column:
            items.append(
                {
                    "kind": "default",
                    "name": f"df_{table.target_name}_{c.offset_column}",
                    "column": c.offset_column,
                    "expression": OFFSET_COMPANION_DEFAULT,
                    "sql": f"ALTER TABLE {t} ALTER COLUMN {_ident(c.offset_column)} "
                    f"SET DEFAULT {OFFSET_COMPANION_DEFAULT}",
                }
            )
    return items


def _ident(name: str) -> str:
    from consorcio_assets.target.ddl import ident

    return ident(name)


def rowversion_sequence() -> str:
    return _q(TARGET_SCHEMA, ROWVERSION_SEQUENCE)


def rowversion_name(table: Table, column: str) -> str:
    """The trigger's (and its function's) name; a hash when the names are too long for an identifier."""
    import hashlib

    name = f"{table.target_name}_{column}_rowversion"
    return name if len(name) <= 63 else "rowversion_" + hashlib.sha1(name.encode()).hexdigest()[:16]


def rowversion_function(table: Table, column: str) -> str:
    return _q(TARGET_SCHEMA, rowversion_name(table, column))


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def rowversion(table: Table, schema: str) -> list[dict]:
    """Sequence past the migrated maximum, then the trigger that stamps every later INSERT/UPDATE."""
    t = _q(schema, table.target_name)
    seq = rowversion_sequence()
    items = []
    for c in table.columns:
        if not c.is_rowversion:
            continue
        col = _ident(c.target_name)
        fn = rowversion_function(table, c.target_name)
        trigger = _ident(rowversion_name(table, c.target_name))
        high = (
            f"(SELECT coalesce(max(('x' || encode({col}, 'hex'))::bit(64)::bigint), 0) FROM {t} "
            f"WHERE length({col}) = 8)"
        )
        items += [
            {
                "kind": "rowversion",
                "name": f"{ROWVERSION_SEQUENCE}",
                "column": c.target_name,
                "sql": _locked(f"CREATE SEQUENCE IF NOT EXISTS {seq} AS bigint MINVALUE 0 START 0"),
            },
            {
                "kind": "rowversion",
                "name": f"{ROWVERSION_SEQUENCE}",
                "column": c.target_name,
                "sql": f"SELECT setval({_text(seq)}, greatest((SELECT last_value FROM {seq}), {high}), true)",
            },
            {
                "kind": "rowversion",
                "name": fn,
                "column": c.target_name,
                "sql": _locked(
                    f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN "
                    f"NEW.{col} := int8send(nextval('{seq}')); RETURN NEW; END $f$"
                ),
            },
            {
                "kind": "rowversion",
                "name": trigger,
                "column": c.target_name,
                "sql": f"CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {fn}()",
            },
        ]
    return items


def identity(table: Table, schema: str) -> list[dict]:
    """Each IDENTITY continues at max + 1 (after a first load, a reload or a partial reload alike: the table and
    its sequence are new on every load). The Glue job also does this itself; running it twice is harmless."""
    t = _q(schema, table.target_name)
    return [
        {
            "kind": "identity",
            "name": f"{table.target_name}_{c.target_name}_identity",
            "column": c.target_name,
            "sql": f"SELECT setval(pg_get_serial_sequence({_text(t)}, {_text(c.target_name)}), "
            f"coalesce(max({_ident(c.target_name)}), 0) + 1, false) FROM {t}",
        }
        for c in table.columns
        if c.identity
    ]


def after_load(table: Table, schema: str) -> list[dict]:
    """Everything above for one base table (views load as snapshots: nothing to attach)."""
    if table.is_view:
        return []
    return identity(table, schema) + defaults(table, schema) + rowversion(table, schema) + stand_in_keys(table, schema)
