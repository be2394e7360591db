"""Local runs: the `consorcio run` process that owns the run (CONSORCIO_RUN_OWNER, `<pid>:<start ticks>`, set by
`consorcio_assets.orchestration.runs`) may be gone; then nobody will see or check this load, so it must not change the target."""

from __future__ import annotations

import os
from pathlib import Path

from consorcio_glue.errors import JobError

OWNER_ENV = "CONSORCIO_RUN_OWNER"


def require_owner(target: str) -> None:
    """Stop (before a swap commits) when the owner process is gone: a dead run's load is rolled back."""
    pid, _, ticks = os.environ.get(OWNER_ENV, "").partition(":")
    if not pid:
        return
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    except OSError:
        fields = None
    if fields is None or fields[0] == "Z" or fields[19] != ticks:
        raise JobError(f"{target}: the run that started this job is gone (process {pid}): not swapping")
