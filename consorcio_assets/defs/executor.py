"""Every job's steps run in the run's own process; check steps on threads beside the others
(`orchestration/check_threads.py`).

Why not a process per step (Dagster's default): a step process is a fresh Python that imports Dagster and builds
these definitions again before its first line of work, 2-3 s of CPU each, far more than most steps' work (a
one-table reload spent 36 s of CPU for 6 rows, 8 of its 9 s per step in start-up). The steps here do not need
processes of their own to run in parallel: the Glue step runs its table loads as concurrent subprocesses, check
steps run on threads (their work waits on DuckDB and PostgreSQL), and the heavy lifting happens in the databases.
What a step process gave is kept: a killed run still leaves no step running (they are the run's process), its Glue
subprocesses die with it (PR_SET_PDEATHSIG), and a terminated run interrupts the load step that is running (it
runs in the main thread, where the signal arrives).
"""

import dagster as dg

from consorcio_assets.orchestration.check_threads import check_threads_executor


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(executor=check_threads_executor)
