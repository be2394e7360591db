"""`LakeResource`: the lake as a resource, for what reads every zone (the checks, the cutover rehearsal). Apart
from `lake.py`, which the CLI imports without Dagster."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from consorcio_assets.common.lake_zones import Lake, opened_lake


class LakeResource(dg.ConfigurableResource):
    """The lake at `uri`, its local directory created on first use."""

    uri: str = Field(description="root of the lake: file://... or s3://bucket/prefix (CONSORCIO_LAKE_URI)")

    def lake(self) -> Lake:
        return opened_lake(self.uri)
