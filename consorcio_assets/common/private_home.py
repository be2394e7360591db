"""Everything under the home may hold customer data or secrets (the stand-in, raw and transformed Parquet, Glue
and compute logs, the pseudonymisation key, the embedded PostgreSQL): private to the user who runs the migration.
One exception, as root only: the home keeps search permission (0711) for the user pgserver runs PostgreSQL as.

New files: umask 0o077 for the process and every subprocess it starts (DMS engine, Glue jobs, Dagster run
workers). Files an older version or another tool left readable: chmod-ed on start (0700 directories, 0600 files).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """New files and directories of this process and its children get no group/other bits."""
    os.umask(PRIVATE_UMASK)


def make_private(home: Path) -> int:
    """Strip group/other bits from every directory and regular file under `home` (symlinks and sockets are
    left alone); returns how many were changed."""
    changed = 0
    if not home.is_dir():
        return 0
    for root, dirs, files in os.walk(home):
        # a directory of another user (pgserver's data directory) is never widened: PostgreSQL refuses to start then
        traverse = os.stat(root).st_uid == os.geteuid() and _hosts_foreign(root, dirs)
        for name in [".", *files]:  # each directory is visited as a root
            path = os.path.join(root, name)
            try:
                info = os.lstat(path)
            except FileNotFoundError:  # removed meanwhile (a run's temporary file)
                continue
            if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
                continue
            mode = stat.S_IMODE(info.st_mode) & 0o700 | (TRAVERSE if name == "." and traverse else 0)
            if mode != stat.S_IMODE(info.st_mode):
                try:
                    os.chmod(path, mode)
                    changed += 1
                except OSError:  # removed meanwhile, or another user's: nothing this process can do
                    continue
    return changed


TRAVERSE = 0o011  # search only: no listing, no reading


def _hosts_foreign(root: str, dirs: list[str]) -> bool:
    """Whether `root` holds a directory of another user: as root, pgserver runs PostgreSQL as its own user, who
    must be able to reach its data directory (<home>/pg) through the home (search permission only)."""
    for name in dirs:
        try:
            if os.lstat(os.path.join(root, name)).st_uid != os.geteuid():
                return True
        except FileNotFoundError:
            continue
    return False


def private_process(home: Path) -> int:
    """Both: the umask for what comes, the chmod for what is there."""
    private_umask()
    return make_private(home)


def private_cli() -> int:
    """What every `consorcio` command does first (the home from the environment, even if other settings are bad)."""
    return private_process(Path(os.environ.get("CONSORCIO_HOME") or ".data").resolve())
