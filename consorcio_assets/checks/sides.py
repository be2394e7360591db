"""The two databases a check compares, and how each one stores a catalog column.

The source keeps SQL Server's storage (PascalCase names, CHAR padded, DATETIMEOFFSET as SQL Server's
literal text in the DuckDB stand-in); the target keeps Aurora's (snake_case, trimmed, timestamptz plus
`<col>_offset_minutes`). A `Side` hides those differences behind one vocabulary, so a check or a
business rule is written once and compiled for whichever database it runs in.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from consorcio_assets.catalog import Column, Table
from consorcio_assets.checks import sql as q

SOURCE, TARGET = "source", "target"


@dataclass(frozen=True)
class Field:
    """One field of the canonical row text: a label for reports and the text expression."""

    label: str
    expr: sa.ColumnElement
    pii: bool = False


def _iso_dates(dbapi_connection, _record) -> None:
    """PostgreSQL writes dates as text in the session's DateStyle; the canonical text (`sql.date_text`) is ISO's."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET DateStyle = 'ISO'")
    dbapi_connection.commit()


class Side:
    """One database holding the catalog's tables, as the source or as the target stores them."""

    def __init__(self, role: str, engine: sa.Engine):
        if role not in (SOURCE, TARGET):
            raise ValueError(f"role must be {SOURCE!r} or {TARGET!r}")
        self.role, self.engine = role, engine
        if engine.dialect.name == "postgresql" and not sa.event.contains(engine, "connect", _iso_dates):
            sa.event.listen(engine, "connect", _iso_dates)  # before its first connection: every one is ISO

    def __repr__(self) -> str:
        return f"Side({self.role}, {self.dialect})"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_source(self) -> bool:
        return self.role == SOURCE

    # ---- names --------------------------------------------------------------------------------

    def name(self, column: Column) -> str:
        return column.name if self.is_source else column.target_name

    def table(self, table: Table, alias: str | None = None) -> sa.TableClause | sa.Alias:
        """The table as a FROM item; the target also has each DATETIMEOFFSET's offset column."""
        names = [self.name(c) for c in table.columns]
        if not self.is_source:
            names += [c.offset_column for c in table.columns if c.offset_column]
        clause = sa.table(
            table.name if self.is_source else table.target_name,
            *(sa.column(n) for n in names),
            schema=table.schema if self.is_source else table.target_schema,
        )
        return clause.alias(alias) if alias else clause

    def col(self, clause, column: Column) -> sa.ColumnElement:
        """The column as stored on this side."""
        return clause.c[self.name(column)]

    # ---- values with one meaning on both sides (what business rules read) -----------------------

    def value(self, clause, column: Column) -> sa.ColumnElement:
        """The column's value: CHAR without padding, DATETIMEOFFSET as its UTC instant."""
        if column.family == "char":
            return q.rtrim(self.col(clause, column)) if self.is_source else self.col(clause, column)
        if column.family == "timestamptz":
            return self.utc(clause, column)
        return self.col(clause, column)

    def flag(self, clause, column: Column) -> sa.ColumnElement:
        return q.flag(self.col(clause, column), self.dialect)

    def offset_minutes(self, clause, column: Column) -> sa.ColumnElement:
        """The DATETIMEOFFSET's UTC offset in minutes."""
        c = self.col(clause, column)
        if not self.is_source:
            return clause.c[column.offset_column]
        if self.dialect == "mssql":
            return sa.func.datepart(sa.literal_column("TZOFFSET"), c)
        sign = sa.case((q.substr(c, q.char_length(c) - 5, 1) == q.text_literal("-"), -1), else_=1)
        hours = q.as_int(q.substr(c, q.char_length(c) - 4, 2))
        minutes = q.as_int(q.substr(c, q.char_length(c) - 1, 2))
        return sign * (hours * 60 + minutes)

    def local_timestamp(self, clause, column: Column) -> sa.ColumnElement:
        """The wall-clock time a DATETIMEOFFSET was written in (what SQL Server's CAST AS DATE reads)."""
        c = self.col(clause, column)
        if not self.is_source:
            return q.plus_minutes(self.utc(clause, column), clause.c[column.offset_column])
        if self.dialect == "mssql":
            return q.as_timestamp(c)
        return q.as_timestamp(q.substr(c, 1, q.char_length(c) - 7))

    def utc(self, clause, column: Column) -> sa.ColumnElement:
        """The UTC instant of a DATETIMEOFFSET, as a timestamp without time zone."""
        c = self.col(clause, column)
        if not self.is_source:
            return q.at_utc(c)
        if self.dialect == "mssql":
            return q.as_timestamp(sa.func.switchoffset(c, 0))
        return q.plus_minutes(self.local_timestamp(clause, column), -self.offset_minutes(clause, column))

    # ---- canonical text (what reconciliation hashes) -------------------------------------------

    def fields(self, clause, column: Column) -> list[Field]:
        """The column's canonical text: decimals with their scale, timestamps to the microsecond in UTC,
        GUIDs lower-case, CHAR trimmed; a DATETIMEOFFSET gives two fields, instant and offset."""
        c = self.col(clause, column)
        family = column.family
        if family == "timestamptz":
            return [
                Field(column.name, q.timestamp_text(self.utc(clause, column)), column.confidential),
                Field(column.offset_column, q.as_text(self.offset_minutes(clause, column)), column.confidential),
            ]
        return [Field(column.name, self._text(c, column), column.confidential)]

    def _text(self, c, column: Column) -> sa.ColumnElement:
        family = column.family
        if family == "bool":
            return q.bool_text(c)
        if family == "int":
            return q.as_text(c)
        if family == "decimal":
            return q.decimal_text(c, q.num(column.scale), q.num(q.decimal_precision(column.precision)))
        if family == "float":
            return q.as_text(c)
        if family == "date":
            return q.date_text(c)
        if family == "time":
            return q.time_text(c)
        if family == "timestamp":
            return q.timestamp_text(c)
        if family == "char":
            return q.rtrim(c) if self.is_source else c
        if family == "uuid":
            return q.uuid_text(c)
        if family == "binary":
            return q.hex_text(c)
        return c  # text, lob

    def row_fields(self, clause, table: Table) -> list[Field]:
        return [f for c in table.columns for f in self.fields(clause, c)]

    def key_fields(self, clause, table: Table) -> list[Field]:
        return [f for name in table.primary_key for f in self.fields(clause, table.column(name))]

    def segment_value(self, clause, table: Table) -> tuple[sa.ColumnElement, bool]:
        """(expression, ordered): the first key column when it is an integer, else a 60-bit hash of the key.

        Ordered segments follow the primary-key index; hashed segments spread uuid/char keys evenly.
        """
        first = table.column(table.primary_key[0])
        if first.family == "int":  # the bare column, so range predicates use the index / zone maps
            return self.col(clause, first), True
        return q.hash60(q.row_text([f.expr for f in self.key_fields(clause, table)])), False
