"""The Glue job on a lake whose disk fills up: `python -m consorcio_assets_tests.faults.glue_disk_full <free bytes>
<job arguments...>` runs `glue/consorcio_glue_job.py` unchanged, its file:// lake seen through `diskfull`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .diskfull import filling_filesystem

SCRIPT = Path(__file__).resolve().parents[2] / "glue" / "consorcio_glue_job.py"


def load_job():
    spec = importlib.util.spec_from_file_location("consorcio_glue_job", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script is executed
    spec.loader.exec_module(module)
    return module


def main(free_bytes: int, argv: list[str]) -> int:
    job = load_job()
    full, _ = filling_filesystem(free_bytes)
    real = job.filesystem

    def filesystem(uri: str):
        fs, root = real(uri)
        return (full if uri.startswith("file://") else fs), root

    job.filesystem = filesystem
    return job.main(argv)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2:]))
