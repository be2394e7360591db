"""`SourceDb`: the source database as a resource, so assets, checks and sensors reach it through configuration."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from consorcio_assets.checks.sides import SOURCE, Side
from consorcio_assets.source.queries import duckdb_engine, source_engine_for


class SourceDb(dg.ConfigurableResource):
    """SQL Server, or the DuckDB stand-in locally (opened read-only: parallel steps share the file)."""

    url: str = Field(description="SQLAlchemy URL of the source (CONSORCIO_SOURCE_URL)")

    def engine(self) -> sa.Engine:
        """A pooled engine for one step's reads (the caller disposes of it)."""
        return source_engine_for(self.url)

    def side(self) -> Side:
        """The source as the checks read it: connections not pooled across the check threads."""
        if self.url.startswith("duckdb"):
            return Side(SOURCE, duckdb_engine(self.url))
        if sa.make_url(self.url).get_backend_name() == "mssql":
            from consorcio_assets.source.connection import mssql_engine

            return Side(SOURCE, mssql_engine(self.url, poolclass=sa.NullPool))
        return Side(SOURCE, sa.create_engine(self.url, poolclass=sa.NullPool))
