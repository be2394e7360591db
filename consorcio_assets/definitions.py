"""Entry point: every concern under `defs/` contributes its own `@dg.definitions`.

The tree is built from the `defs` package itself rather than found through pyproject.toml's [tool.dg]: the
deployment image installs the project as a wheel, where no pyproject.toml exists.

Each module of the tree is built and the results merged, rather than `tree.build_defs()`: the root folder
component adds a catalogue of every component type the installed plugins offer (for `dg`'s scaffolding), and
collecting it imports each plugin whole, dagster_aws included (~0.7 s in every process that builds the
definitions: each CLI command, each run). The project declares no component, so the catalogue was empty of ours.
"""

from pathlib import Path

import dagster as dg

from consorcio_assets import defs as defs_package
from consorcio_assets.orchestration.runs import start_owner_watchdog

start_owner_watchdog()  # a process of a run owned by `consorcio run` ends when that command is killed

DEFS_FOLDER = Path(defs_package.__file__).parent


def defs_modules() -> list[str]:
    """The modules of `defs/`, each ending in its own `@dg.definitions def defs()`."""
    return sorted(p.name for p in DEFS_FOLDER.glob("*.py") if p.stem != "__init__")


@dg.definitions
def defs() -> dg.Definitions:
    tree = dg.ComponentTree.from_module(defs_module=defs_package, project_root=DEFS_FOLDER.parent.parent)
    return dg.Definitions.merge(*(tree.build_defs_at_path(module) for module in defs_modules()))
