"""Dagster's own instance: runs, events and schedules stored in PostgreSQL through dagster-postgres.

Locally the storage is database `dagster` on the embedded server; in a deployment (ECS, Kubernetes)
DAGSTER_PG_URL points at the deployment's PostgreSQL. The URL stays in the environment, never in files.
"""

from __future__ import annotations

import os
from pathlib import Path

from consorcio_assets.settings import get_settings

#: a run's planned events are written in batches of this many (`event_storage.store_event_batch`); Dagster reads
#: the variable where it plans a run: the CLI, the webserver, the daemon
BATCH_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 1000

DAGSTER_YAML = """\
# Written by `consorcio`; storage URL comes from the environment (DAGSTER_PG_URL).
# Runs and schedules as `storage: postgres` sets them; events through a pooled connection (event_storage.py).
run_storage:
  module: dagster_postgres.run_storage
  class: PostgresRunStorage
  config:
    postgres_url:
      env: DAGSTER_PG_URL
event_log_storage:
  module: consorcio_assets.orchestration.event_storage
  class: PooledPostgresEventLogStorage
  config:
    postgres_url:
      env: DAGSTER_PG_URL
schedule_storage:
  module: dagster_postgres.schedule_storage
  class: PostgresScheduleStorage
  config:
    postgres_url:
      env: DAGSTER_PG_URL
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 4
# the default launcher, plus a health check: run monitoring fails runs whose process is gone
run_launcher:
  module: consorcio_assets.orchestration.run_launcher
  class: LocalRunLauncher
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
  cancel_timeout_seconds: 300
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
telemetry:
  enabled: false
"""


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or get_settings().home / "dagster_home").resolve()


def prepare_instance_env() -> dict[str, str]:
    """Environment for a Dagster process: DAGSTER_HOME with the PostgreSQL-backed dagster.yaml."""
    from consorcio_assets.target.postgres import dagster_storage_url

    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() != DAGSTER_YAML:
        config.write_text(DAGSTER_YAML)
    env = dict(os.environ, DAGSTER_HOME=str(home), DAGSTER_PG_URL=dagster_storage_url())
    env.setdefault(BATCH_ENV, str(EVENT_BATCH_SIZE))
    return env


#: what `prepare_instance_env` decides, set in the calling process too by `enter_instance_env`
INSTANCE_VARIABLES = ("DAGSTER_HOME", "DAGSTER_PG_URL", BATCH_ENV)


def enter_instance_env() -> dict[str, str]:
    """`prepare_instance_env`, with its Dagster variables set in this process as well (it creates runs here)."""
    env = prepare_instance_env()
    os.environ.update({k: env[k] for k in INSTANCE_VARIABLES})
    return env
