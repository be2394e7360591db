"""Names both sides agree on: stages (asset key prefixes), the check the job reports, the spec's version."""

from __future__ import annotations

SQLSERVER, S3_RAW, TRANSFORMED, AURORA = "sqlserver", "s3_raw", "transformed", "aurora"
STAGES = (SQLSERVER, S3_RAW, TRANSFORMED, AURORA)

#: the asset check the Glue job reports through Pipes for each Aurora table
NO_REJECTED_ROWS = "no_rejected_rows"
#: the table in the target schema that collects rejected rows (keys and reasons, never values)
REJECTS_TABLE = "consorcio_rejects"

#: version of the table spec's layout (`consorcio_assets.glue_runner.spec`); the job refuses any other
SPEC_VERSION = 2
