"""consorcio-migration, the Dagster side: catalog, stages, checks, definitions (map: README.md)."""

from pathlib import Path

from consorcio_assets.common.quick_exit import freeze_at_exit

freeze_at_exit()

#: the package's folder, and the checkout it sits in (a non-editable install has no checkout: only the
#: tooling that writes docs, infra files or bench results uses PROJECT_ROOT)
PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
