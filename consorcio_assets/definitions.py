"""Entry point: every concern under `defs/` contributes its own `@dg.definitions`."""

from pathlib import Path

import dagster as dg

from .runs import start_owner_watchdog

start_owner_watchdog()  # a process of a run owned by `consorcio run` ends when that command is killed


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
