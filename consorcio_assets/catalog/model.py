"""The catalog: what the contract says about each table and view, in one immutable structure."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import pyarrow as pa
import sqlglot
from sqlglot import exp

from consorcio_assets.catalog.naming import SNAPSHOT_SCHEMA, TARGET_SCHEMA, needs_quotes, snake_case
from consorcio_assets.catalog.types import TypeRule, arrow_type, render

#: Free text a person typed (a call-centre note may hold a name or a CPF): handled like customer PII, its values
#: never shown in messages, rejects, logs or check metadata. The rule is data: character LOB types, and
#: character columns at least FREE_TEXT_MIN_LENGTH long.
FREE_TEXT_TYPES = frozenset({"varchar(max)", "nvarchar(max)", "text", "ntext"})
FREE_TEXT_MIN_LENGTH = 1000


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # normalised SQL Server type name, e.g. "decimal", "nvarchar(max)"
    rule: TypeRule
    nullable: bool
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    fsp: int | None = None  # fractional seconds precision (datetime2, datetimeoffset)
    identity: bool = False
    computed: str | None = None  # T-SQL expression of a computed column
    comment: str | None = None
    pii: bool = False
    default: str | None = None  # T-SQL DEFAULT expression, as the contract has it
    postgres_default: str | None = None  # its translation (the default-value rule table)
    postgres_computed: str | None = None  # the computed expression translated for GENERATED ALWAYS AS
    collation: str | None = None  # collation rule table: e.g. "ci_ai"; None = the database default

    @property
    def is_rowversion(self) -> bool:
        return self.sql_type == "rowversion"

    @property
    def target_name(self) -> str:
        return snake_case(self.name)

    @property
    def family(self) -> str:
        return self.rule.family

    @property
    def free_text(self) -> bool:
        return self.sql_type in FREE_TEXT_TYPES or (
            self.family in ("char", "text") and (self.length or 0) >= FREE_TEXT_MIN_LENGTH
        )

    @property
    def confidential(self) -> bool:
        """Values never shown anywhere but the data itself: customer PII and free text."""
        return self.pii or self.free_text

    def _render(self, template: str, *, fsp_cap: int | None = None) -> str:
        fsp = self.fsp if fsp_cap is None or self.fsp is None else min(self.fsp, fsp_cap)
        return render(template, n=self.length, p=self.precision, s=self.scale, fsp=fsp)

    @property
    def sqlserver_type_sql(self) -> str:
        """The type as the contract spells it, e.g. DECIMAL(15,2), NVARCHAR(MAX)."""
        base = self.sql_type.upper()
        if self.sql_type == "decimal":
            return f"DECIMAL({self.precision},{self.scale})"
        if self.length is not None:
            return f"{base}({self.length})"
        if self.fsp is not None:
            return f"{base}({self.fsp})"
        return base

    @property
    def dms_type(self) -> str:
        return self._render(self.rule.dms)

    @property
    def postgres_type(self) -> str:
        return self._render(self.rule.postgres, fsp_cap=6)

    @property
    def duckdb_type(self) -> str:
        return self._render(self.rule.duckdb)

    def arrow_type(self, *, ms_timestamps: bool = False) -> pa.DataType:
        """The Arrow type DMS writes to S3 for this column."""
        return arrow_type(self.rule.arrow, p=self.precision, s=self.scale, ms=ms_timestamps)

    @property
    def offset_column(self) -> str | None:
        """DATETIMEOFFSET keeps its original UTC offset in a companion column in Aurora."""
        return f"{self.target_name}_offset_minutes" if self.family == "timestamptz" else None


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class Check:
    name: str
    sql: str  # T-SQL text of the predicate

    def to_sql(self, dialect: str, rename=snake_case) -> str:
        """The predicate in another dialect, with column names renamed for the target."""
        tree = sqlglot.parse_one(self.sql, read="tsql")
        for col in tree.find_all(exp.Column):
            name = rename(col.name)
            col.set("this", exp.to_identifier(name, quoted=needs_quotes(name)))  # reserved words too
        return tree.sql(dialect=dialect)


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]
    unique: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    schema: str
    kind: str  # "table" or "view"
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    unique_keys: tuple[tuple[str, tuple[str, ...]], ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    checks: tuple[Check, ...] = ()
    indexes: tuple[Index, ...] = ()
    view_sql: str | None = None  # T-SQL SELECT of a view
    primary_key_name: str | None = None
    comment: str | None = None
    depends_on: tuple[str, ...] = field(default=())  # tables a view reads

    @property
    def is_view(self) -> bool:
        return self.kind == "view"

    @property
    def target_name(self) -> str:
        return snake_case(self.name)

    @property
    def qualified_source(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def target_schema(self) -> str:
        """Where the load puts the table: a view's DMS snapshot goes to its own schema (the live view keeps the
        application's name in `consorcio`)."""
        return SNAPSHOT_SCHEMA if self.is_view else TARGET_SCHEMA

    @property
    def qualified_target(self) -> str:
        return f"{self.target_schema}.{self.target_name}"

    @property
    def qualified_live_view(self) -> str | None:
        """The live view the application reads (views only)."""
        return f"{TARGET_SCHEMA}.{self.target_name}" if self.is_view else None

    @cached_property
    def column_map(self) -> dict[str, Column]:
        return {c.name: c for c in self.columns}

    def column(self, name: str) -> Column:
        return self.column_map[name]

    @property
    def description(self) -> str:
        what = "View" if self.is_view else "Table"
        text = f"{what} {self.qualified_source} of the SQL Server contract ({len(self.columns)} columns"
        text += f", key {', '.join(self.primary_key)})."
        return text + (f" {self.comment}" if self.comment else "")

    def dms_schema(self, *, ms_timestamps: bool = False) -> pa.Schema:
        """Schema of the Parquet files DMS writes for this table."""
        return pa.schema(
            [pa.field(c.name, c.arrow_type(ms_timestamps=ms_timestamps), c.nullable) for c in self.columns]
        )


@dataclass(frozen=True)
class Catalog:
    tables: tuple[Table, ...]

    @cached_property
    def by_name(self) -> dict[str, Table]:
        return {t.name: t for t in self.tables}

    def __getitem__(self, name: str) -> Table:
        return self.by_name[name]

    def __iter__(self):
        return iter(self.tables)

    def __len__(self) -> int:
        return len(self.tables)

    @property
    def base_tables(self) -> tuple[Table, ...]:
        return tuple(t for t in self.tables if not t.is_view)

    @property
    def views(self) -> tuple[Table, ...]:
        return tuple(t for t in self.tables if t.is_view)

    def load_order(self) -> list[Table]:
        """Tables before the tables that reference them; views after their base tables."""
        done: dict[str, Table] = {}

        def visit(t: Table, path: tuple[str, ...]) -> None:
            if t.name in done:
                return
            if t.name in path:
                raise ValueError(f"foreign-key cycle through {' -> '.join((*path, t.name))}")
            deps = [fk.ref_table for fk in t.foreign_keys] + list(t.depends_on)
            for dep in deps:
                if dep != t.name:
                    visit(self[dep], (*path, t.name))
            done[t.name] = t

        for t in self.tables:
            visit(t, ())
        return list(done.values())

    def subset(self, names) -> Catalog:
        wanted = set(names)
        return Catalog(tuple(t for t in self.tables if t.name in wanted))
