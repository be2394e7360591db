"""Runtime settings, read from the environment so the same code runs locally and on AWS.

CONSORCIO_ENV       local (default: embedded stand-ins) or aws (real DMS, Glue, S3, Aurora)
CONSORCIO_HOME      where local state lives (default: ./.data)
CONSORCIO_SOURCE_URL  SQLAlchemy URL of the source (default: the DuckDB stand-in under CONSORCIO_HOME)
CONSORCIO_TARGET_URL  PostgreSQL URL of the target (default: embedded pgserver under CONSORCIO_HOME/pg)
CONSORCIO_LAKE_URI    root of the lake: file://... or s3://bucket/prefix (default: CONSORCIO_HOME/lake)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    env: str
    home: Path
    source_url: str
    target_url: str | None
    lake_uri: str

    @property
    def is_aws(self) -> bool:
        return self.env == "aws"

    @property
    def source_path(self) -> Path | None:
        """The DuckDB file behind the source URL, when the source is the embedded stand-in."""
        prefix = "duckdb:///"
        return Path(self.source_url[len(prefix):]) if self.source_url.startswith(prefix) else None


def default_source_path(home: Path) -> Path:
    return home / "source" / "consorcio_simulacao.duckdb"


def get_settings() -> Settings:
    env = os.environ.get("CONSORCIO_ENV", "local").lower()
    if env not in ("local", "aws"):
        raise ValueError(f"CONSORCIO_ENV must be 'local' or 'aws', not {env!r}")
    home = Path(os.environ.get("CONSORCIO_HOME", ".data")).resolve()
    source_url = os.environ.get("CONSORCIO_SOURCE_URL") or f"duckdb:///{default_source_path(home)}"
    lake = os.environ.get("CONSORCIO_LAKE_URI") or (home / "lake").as_uri()
    if env == "aws" and not lake.startswith("s3://"):
        raise ValueError("CONSORCIO_ENV=aws needs CONSORCIO_LAKE_URI=s3://bucket/prefix")
    return Settings(env, home, source_url, os.environ.get("CONSORCIO_TARGET_URL") or None, lake)
