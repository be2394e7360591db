"""The Glue job on a lake whose disk fills up: `python -m consorcio_assets_tests.faults.glue_disk_full <free bytes>
<job arguments...>` runs the `consorcio_glue` job unchanged, its file:// lake seen through `diskfull`."""

from __future__ import annotations

import sys

import consorcio_core.lake as lake
from consorcio_assets_tests.faults.diskfull import filling_filesystem
from consorcio_glue.main import main as job_main


def main(free_bytes: int, argv: list[str]) -> int:
    full, _ = filling_filesystem(free_bytes)
    real = lake.filesystem

    def filesystem(uri: str):
        fs, root = real(uri)
        return (full if uri.startswith("file://") else fs), root

    lake.filesystem = filesystem
    return job_main(argv)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2:]))
