"""Every job's steps run in the run's own process (Dagster's in-process executor), one after another.

Why not a process per step (Dagster's default): a step process is a fresh Python that imports Dagster and builds
these definitions again before its first line of work, 2-3 s of CPU each, far more than most steps' work (a
one-table reload spent 36 s of CPU for 6 rows, 8 of its 9 s per step in start-up). The steps here do not need
processes of their own to run in parallel: the Glue step runs its table loads as concurrent subprocesses, the
check steps run their checks on a thread pool, and the heavy lifting happens in DuckDB and PostgreSQL. What a
step process gave is kept: a killed run still leaves no step running (they are the run's process), its Glue
subprocesses die with it (PR_SET_PDEATHSIG), and a terminated run interrupts the step that is running.
"""

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(executor=dg.in_process_executor)
