"""The lake (S3 bucket or a local directory laid out like it), reached through `pyarrow.fs` either way.

Zones under the lake root: `raw/` (what DMS writes: raw/dbo/<Table>/LOAD00000001.parquet) and
`transformed/` (what the Glue job writes: transformed/<table>/part-00000.parquet).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow.fs as pafs

from consorcio_core.lake import filesystem


@dataclass(frozen=True)
class Lake:
    uri: str

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """(filesystem, root path inside it). S3 endpoint/region come from the usual AWS env vars."""
        return filesystem(self.uri)

    def path(self, *parts: str) -> str:
        """Path of `parts` inside the lake's filesystem."""
        _, root = self.filesystem()
        return "/".join([root, *parts])

    def uri_of(self, *parts: str) -> str:
        return "/".join([self.uri.rstrip("/"), *parts])

    def transformed_prefix(self, target_table: str) -> tuple[str, ...]:
        return ("transformed", target_table)


def get_lake() -> Lake:
    from consorcio_assets.settings import get_settings

    return opened_lake(get_settings().lake_uri)


def opened_lake(uri: str) -> Lake:
    """The lake at `uri`, its local directory created (an S3 prefix needs nothing)."""
    if uri.startswith("file://"):
        from pathlib import Path

        Path(urlparse(uri).path).mkdir(parents=True, exist_ok=True)
    return Lake(uri)
