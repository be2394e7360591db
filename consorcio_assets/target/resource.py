"""`TargetDb`: the target Aurora PostgreSQL as a resource, so assets and checks reach it through configuration."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from consorcio_assets.checks.sides import TARGET, Side
from consorcio_assets.target.postgres import request_checkpoint, sqlalchemy_url, target_url

#: per sort/hash node of a check's session: the business rules hash a term row per scheduled simulation
#: against millions of instalments, which PostgreSQL's default 4MB spills to disk in batches
CHECK_WORK_MEM = "64MB"


class TargetDb(dg.ConfigurableResource):
    """The target database `consorcio` (libpq URL); unset locally: the embedded server, started on first use."""

    url: str | None = Field(
        default=None,
        description="PostgreSQL URL of the target (CONSORCIO_TARGET_URL; unset: "
        "the embedded server under CONSORCIO_HOME)",
    )
    check_parallel_workers: int | None = Field(
        default=None,
        ge=0,
        description="parallel workers per check query (CONSORCIO_CHECK_PARALLEL_WORKERS, 0 in the project's "
        "definitions: a run's checks send several queries at once, and at 1M simulações on 2 cores the workers "
        "added a tenth to the run's CPU and wall time); unset: the server's own setting",
    )

    def libpq_url(self) -> str:
        return self.url or target_url()

    def request_checkpoint(self) -> bool:
        """CHECKPOINT the embedded server after a batch without waiting (see `postgres.request_checkpoint`); False
        for any other target."""
        return False if self.url else request_checkpoint()

    def side(self) -> Side:
        """The target as the checks read it (with room for their sorts and hashes)."""
        return Side(
            TARGET,
            sa.create_engine(
                sqlalchemy_url(self.libpq_url()),
                pool_pre_ping=True,
                connect_args={"options": self._session_options()},
            ),
        )

    def _session_options(self) -> str:
        options = f"-c work_mem={CHECK_WORK_MEM}"
        if self.check_parallel_workers is not None:
            options += f" -c max_parallel_workers_per_gather={self.check_parallel_workers}"
        return options
