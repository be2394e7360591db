"""Jobs a user launches: the whole migration, and one job per stage."""

import dagster as dg

from consorcio_assets.common.stages import STAGES

migrate_all = dg.define_asset_job(
    "migrate_all",
    # the cutover rehearsal is launched on purpose (job cutover_rehearsal), not with every load
    selection=dg.AssetSelection.all(include_sources=True) - dg.AssetSelection.groups("reports"),
    description="Observe the source, full-load it with DMS, transform and load Aurora with Glue, and run every check.",
)

stage_jobs = [
    dg.define_asset_job(
        f"{stage}_stage",
        selection=dg.AssetSelection.groups(stage, include_sources=True),
        description=f"Only the {stage} stage, every table.",
    )
    for stage in STAGES
]


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(jobs=[migrate_all, *stage_jobs])
