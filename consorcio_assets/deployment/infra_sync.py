"""Keeps `infra/` in step with the code: the DMS task's table mappings Terraform deploys are generated here.

Terraform cannot run Python, so the mappings are written to `infra/generated/table_mappings.json` and committed;
`consorcio_assets_tests/infra` fails when the committed file differs from what the code generates.
"""

from __future__ import annotations

import json
from pathlib import Path

from consorcio_assets import PROJECT_ROOT

REPO = PROJECT_ROOT
TABLE_MAPPINGS_FILE = REPO / "infra" / "generated" / "table_mappings.json"


def render_table_mappings() -> str:
    """The full-load task's TableMappings for every table and view of the catalog, as committed JSON text.

    No parallel-load boundaries: they depend on the source's key ranges at load time, so the Dagster DMS
    resource adds them (and narrows the selection to a run's tables) when it starts the task.
    """
    from consorcio_assets.catalog import catalog
    from consorcio_assets.dms.mappings import table_mappings

    return json.dumps(table_mappings(catalog()), indent=2) + "\n"


def write_table_mappings(path: Path = TABLE_MAPPINGS_FILE) -> Path:
    """Write the generated mappings for Terraform; returns the path written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_table_mappings())
    return path


ROLES_FILE = REPO / "infra" / "generated" / "aurora_roles.sql"


def write_roles(path: Path = ROLES_FILE) -> Path:
    """The Aurora roles' SQL (consorcio_assets/target/roles.py) the DBA runs; committed beside the mappings."""
    from consorcio_assets.target.roles import render_roles_sql

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_roles_sql())
    return path


if __name__ == "__main__":
    print(write_table_mappings())
    print(write_roles())
