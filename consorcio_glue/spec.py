"""The table spec the Dagster side builds from the catalog (`consorcio_assets.glue_runner.spec`), read and checked:
the job knows nothing about a table but what its spec says, and refuses a spec of another layout version."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa
from psycopg import sql

from consorcio_core.arrow_types import arrow_type, target_arrow_type
from consorcio_core.lake import filesystem
from consorcio_core.names import SPEC_VERSION
from consorcio_glue.errors import JobError


def load_spec(value: str) -> dict:
    """The spec, inline JSON or read from a URI/path, after its version check."""
    if value.lstrip().startswith("{"):
        spec = json.loads(value)
    else:
        fs, path = filesystem(value)
        with fs.open_input_stream(path) as f:
            spec = json.loads(f.read().decode("utf-8"))
    check_version(spec)
    return spec


def check_version(spec: dict) -> None:
    """A spec of another layout would be misread column by column: refuse it, naming both versions."""
    version = spec.get("version")
    if version != SPEC_VERSION:
        name = (spec.get("target") or {}).get("name", "?")
        raise JobError(
            f"{name}: the table spec has version {version!r}, this job reads version {SPEC_VERSION}: "
            "deploy the job wheel built from the same release as the Dagster code"
        )


@dataclass(frozen=True)
class Col:
    source: str
    target: str
    family: str
    arrow: str
    postgres_type: str
    nullable: bool
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    pii: bool = False
    offset_column: str | None = None
    free_text: bool = False  # typed by a person (Observacao): may hold anything, so handled like PII
    generated: bool = False  # PostgreSQL computes it: not copied

    @staticmethod
    def of(d: dict) -> Col:
        return Col(
            d["source"],
            d["target"],
            d["family"],
            d["arrow"],
            d["postgres_type"],
            d["nullable"],
            d.get("length"),
            d.get("precision"),
            d.get("scale"),
            d.get("pii", False),
            d.get("offset_column"),
            d.get("free_text", False),
            d.get("generated", False),
        )

    @property
    def confidential(self) -> bool:
        """Values never shown (messages, rejects, logs): customer PII and free text."""
        return self.pii or self.free_text

    def dms_type(self) -> pa.DataType:
        """The Arrow type DMS writes for the column (the catalog's type-mapping table)."""
        return arrow_type(self.arrow, p=self.precision, s=self.scale)

    def target_type(self) -> pa.DataType:
        """The Arrow type in the transformed zone: what the PostgreSQL column holds."""
        return target_arrow_type(self.family, self.arrow, p=self.precision, s=self.scale)

    def target_fields(self) -> list[pa.Field]:
        fields = [pa.field(self.target, self.target_type(), self.nullable)]
        if self.offset_column:
            fields.append(pa.field(self.offset_column, pa.int16(), self.nullable))
        return fields


@dataclass
class Spec:
    raw: dict
    columns: list[Col] = field(init=False)

    def __post_init__(self):
        self.columns = [Col.of(c) for c in self.raw["columns"]]
        self._target_schema = pa.schema([f for c in self.columns for f in c.target_fields()])

    @property
    def source_name(self) -> str:
        return self.raw["source"]["name"]

    @property
    def source_schema(self) -> str:
        return self.raw["source"]["schema"]

    @property
    def target(self) -> str:
        return self.raw["target"]["name"]

    @property
    def schema(self) -> str:
        return self.raw["target"]["schema"]

    @property
    def staging_schema(self) -> str:
        return self.raw["target"]["staging_schema"]

    @property
    def qualified(self) -> str:
        """For messages and metadata; SQL uses `table_id`/`staging_id` (quoted)."""
        return f"{self.schema}.{self.target}"

    @property
    def table_id(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.target)

    @property
    def staging_id(self) -> sql.Identifier:
        return sql.Identifier(self.staging_schema, self.target)

    @property
    def primary_key(self) -> list[str]:
        return list(self.raw["primary_key"])

    @property
    def target_primary_key(self) -> list[str]:
        by_source = {c.source: c.target for c in self.columns}
        return [by_source[k] for k in self.primary_key]

    @property
    def expected_rows(self) -> int | None:
        return self.raw.get("expected_rows")

    @property
    def ddl(self) -> dict:
        return self.raw["ddl"]

    def asset_key(self, stage: str) -> str:
        return self.raw["asset_keys"][stage]

    def target_schema(self) -> pa.Schema:
        return self._target_schema

    def target_columns(self) -> list[str]:
        return self.target_schema().names

    def copy_columns(self) -> list[str]:
        """The columns the COPY writes: all but those PostgreSQL generates."""
        generated = {c.target for c in self.columns if c.generated}
        return [n for n in self.target_columns() if n not in generated]
