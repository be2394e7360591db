"""Entry point: every concern under `defs/` contributes its own `@dg.definitions`.

The tree is built from the `defs` package itself rather than found through pyproject.toml's [tool.dg]: the
deployment image installs the project as a wheel, where no pyproject.toml exists.
"""

from pathlib import Path

import dagster as dg

from consorcio_assets import defs as defs_package
from consorcio_assets.orchestration.runs import start_owner_watchdog

start_owner_watchdog()  # a process of a run owned by `consorcio run` ends when that command is killed


@dg.definitions
def defs() -> dg.Definitions:
    return dg.ComponentTree.from_module(
        defs_module=defs_package, project_root=Path(__file__).resolve().parent.parent
    ).build_defs()
