"""What a Dagster run says about itself: step durations, the rows each asset reported, the checks it ran.

Read from the run's event log in the instance's storage, the same record the UI shows, so the benchmark's
per-step figures are the ones a user sees.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import dagster as dg

STEP_END = (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)
MILESTONES = (
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.ASSET_MATERIALIZATION,
    dg.DagsterEventType.ASSET_OBSERVATION,
)


@dataclass
class RunFigures:
    run_id: str
    status: str
    seconds: float
    #: step key -> seconds from STEP_START to its end
    steps: dict[str, float] = field(default_factory=dict)
    #: stage -> table -> the numbers the materialization reported (rows, rows/s, seconds when present)
    assets: dict[str, dict[str, dict]] = field(default_factory=lambda: defaultdict(dict))
    checks_total: int = 0
    checks_passed: int = 0
    #: steps that only evaluated checks (no materialization or observation): the reconciliation's steps
    check_steps: set[str] = field(default_factory=set)
    #: stage -> the steps that materialized its assets
    stage_steps: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    failed_steps: list[str] = field(default_factory=list)
    #: `stage/table:check` -> the seconds the check reported in its metadata (else the time since its step
    #: started or yielded its previous result)
    check_seconds_each: dict[str, float] = field(default_factory=dict)
    #: `stage/table:check` of every check that did not pass (names only, never values)
    failed_checks: list[str] = field(default_factory=list)

    def stage_rows(self, stage: str) -> int:
        return sum(int(m.get("rows") or 0) for m in self.assets.get(stage, {}).values())

    @property
    def check_seconds(self) -> float:
        return sum(self.steps.get(k, 0.0) for k in self.check_steps)

    def stage_seconds(self, stage: str) -> float:
        return sum(self.steps.get(k, 0.0) for k in self.stage_steps.get(stage, ()))


_NUMBERS = {
    "dagster/row_count": "rows",
    "rows_per_s": "rows_per_s",
    "rows_per_second": "rows_per_s",
    "duration_s": "seconds",
    "duration_seconds": "seconds",
    "bytes_written": "bytes",
}


def _numbers(metadata) -> dict:
    out = {}
    for key, name in _NUMBERS.items():
        value = metadata.get(key)
        if value is not None and isinstance(value.value, (int, float)):
            out[name] = value.value
    return out


def latest_run(instance: dg.DagsterInstance, job: str, after: float | None = None):
    filters = dg.RunsFilter(job_name=job, created_after=_datetime(after) if after else None)
    runs = instance.get_runs(filters=filters, limit=1)
    return runs[0] if runs else None


def _datetime(ts: float):
    from datetime import datetime

    return datetime.fromtimestamp(ts, tz=UTC)


def run_figures(instance: dg.DagsterInstance, run_id: str) -> RunFigures:
    """Step timings, per-asset numbers and check outcomes of one run."""
    run = instance.get_run_by_id(run_id)
    started: dict[str, float] = {}
    figures = RunFigures(run_id, run.status.value if run else "?", 0.0)
    first = last = None
    produced: set[str] = set()
    checked: set[str] = set()
    previous: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        first = record.timestamp if first is None else first
        last = record.timestamp
        if event is None:
            continue
        step = record.step_key or ""  # run-level events have none
        data: Any = event.event_specific_data  # the event type decides which member of the union
        since = previous.get(step)
        if event.event_type in MILESTONES:
            previous[step] = record.timestamp
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[step] = record.timestamp
        elif event.event_type in STEP_END and step in started:
            figures.steps[step] = record.timestamp - started[step]
            if event.event_type == dg.DagsterEventType.STEP_FAILURE:
                figures.failed_steps.append(step)
        elif event.event_type == dg.DagsterEventType.ASSET_OBSERVATION:
            produced.add(step)
        elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            produced.add(step)
            materialization = data.materialization
            stage, table = materialization.asset_key.path[0], materialization.asset_key.path[-1]
            figures.assets[stage][table] = _numbers(materialization.metadata)
            figures.stage_steps[stage].add(step)
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            checked.add(step)
            figures.checks_total += 1
            figures.checks_passed += int(bool(data.passed))
            reported = data.metadata.get("seconds")
            name = f"{data.asset_key.to_user_string()}:{data.check_name}"
            if reported is not None:
                figures.check_seconds_each[name] = reported.value
            elif since is not None:
                figures.check_seconds_each[name] = record.timestamp - since
            if not data.passed:
                figures.failed_checks.append(f"{data.asset_key.to_user_string()}:{data.check_name}")
    figures.check_steps = checked - produced
    figures.seconds = (last - first) if first is not None and last is not None else 0.0
    figures.assets = dict(figures.assets)
    return figures
