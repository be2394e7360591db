"""The per-table summary printed after a run: rows at each stage, the checks' outcome, the time it took.

It is the summary of one run, named by its id (two runs at once never mix), and its "N/N ok" counts say
which planned checks did not run and why (the table's load failed, or the run stopped before them).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, cast

import dagster as dg

from consorcio_assets.catalog import catalog
from consorcio_assets.common.stages import STAGES
from consorcio_assets.tooling.progress import asset_of, elapsed

ET = dg.DagsterEventType
UI_HINT = "open the UI: make ui (or consorcio ui)"


@dataclass
class CheckResult:
    name: str  # stage:check
    passed: bool
    severity: str
    counts: dict[str, int]


@dataclass
class RunFacts:
    """What one run's event log says, per table."""

    rows: dict[str, dict[str, int | None]] = field(default_factory=lambda: defaultdict(dict))
    checks: dict[str, list[CheckResult]] = field(default_factory=lambda: defaultdict(list))
    #: table -> planned checks (stage:check) with the step that runs them
    planned_checks: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    #: table -> stage -> the step planned to materialize it; the stages that did
    planned_stages: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    done_stages: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    failed_steps: list[str] = field(default_factory=list)

    def not_run(self, table: str) -> tuple[int, str]:
        """(how many planned checks of `table` did not run, why)."""
        ran = {c.name for c in self.checks.get(table, [])}
        missing = {name: step for name, step in self.planned_checks.get(table, {}).items() if name not in ran}
        if not missing:
            return 0, ""
        planned, done = self.planned_stages.get(table, {}), self.done_stages.get(table, set())
        failed_loads = [s for s in STAGES if s in planned and s not in done and planned[s] in self.failed_steps]
        if failed_loads:
            why = f"{failed_loads[0]} load failed"
        elif any(step in self.failed_steps for step in missing.values()):
            why = "their step failed"
        elif self.failed_steps:
            why = f"skipped after step {self.failed_steps[0]} failed"
        else:
            why = "the run stopped before them"
        return len(missing), why


def collect(instance: dg.DagsterInstance, run_id: str) -> RunFacts:
    facts = RunFacts()
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        # the event type decides which member of the event-data union this is
        kind, data = event.event_type, cast(Any, event.event_specific_data)
        if kind in (ET.ASSET_MATERIALIZATION, ET.ASSET_OBSERVATION):
            found = asset_of(event)
            if found is None:
                continue
            key, metadata = found
            stage, table = key.path[0], key.path[-1]
            value = metadata.get("dagster/row_count")
            facts.rows[table][stage] = value.value if value is not None else None
            facts.done_stages[table].add(stage)
        elif kind == ET.ASSET_MATERIALIZATION_PLANNED:
            facts.planned_stages[data.asset_key.path[-1]][data.asset_key.path[0]] = event.step_key or ""
        elif kind == ET.ASSET_CHECK_EVALUATION_PLANNED:
            facts.planned_checks[data.asset_key.path[-1]][f"{data.asset_key.path[0]}:{data.check_name}"] = (
                event.step_key or ""
            )
        elif kind == ET.ASSET_CHECK_EVALUATION:
            severity = data.severity.value if data.severity else "ERROR"
            counts = {
                k: int(v.value)
                for k, v in data.metadata.items()
                if isinstance(v.value, int) and not isinstance(v.value, bool)
            }
            facts.checks[data.asset_key.path[-1]].append(
                CheckResult(f"{data.asset_key.path[0]}:{data.check_name}", data.passed, severity, counts)
            )
        elif kind == ET.STEP_FAILURE and event.step_key:
            facts.failed_steps.append(event.step_key)
    return facts


def latest_run_id(instance: dg.DagsterInstance, job: str) -> str | None:
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job), limit=1)
    return runs[0].run_id if runs else None


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}={n:,}" for name, n in list(counts.items())[:3])


def run_seconds(instance: dg.DagsterInstance, run_id: str) -> float | None:
    record = instance.get_run_record_by_id(run_id)
    if record is None or record.start_time is None:
        return None
    return (record.end_time or record.start_time) - record.start_time


def summary_lines(instance: dg.DagsterInstance, run_id: str) -> tuple[list[str], bool]:
    """The summary of run `run_id`; True when the run succeeded and no ERROR check failed."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return [f"no run {run_id} in the instance"], False
    facts = collect(instance, run_id)
    seconds = run_seconds(instance, run_id)
    took = f" in {elapsed(seconds)}" if seconds is not None else ""
    header = f"{'table':<24}" + "".join(f"{s:>13}" for s in STAGES) + f"  {'checks'}"
    lines = ["", f"run {run.run_id} of {run.job_name}: {run.status.value}{took}", header, "-" * len(header)]
    ok = run.status == dg.DagsterRunStatus.SUCCESS
    warns: list[tuple[str, CheckResult]] = []
    for t in catalog():
        table = t.target_name
        stage_rows = facts.rows.get(table, {})
        cells = "".join(f"{stage_rows[s]:>13,}" if stage_rows.get(s) is not None else f"{'-':>13}" for s in STAGES)
        results = facts.checks.get(table, [])
        passed = sum(1 for r in results if r.passed)
        missing, why = facts.not_run(table)
        text = f"{passed}/{len(results)} ok" + (f", {missing} not run: {why}" if missing else "")
        ok = ok and not missing and not any(not r.passed and r.severity == "ERROR" for r in results)
        lines.append(f"{table:<24}{cells}  {text}")
        for r in results:
            if not r.passed and r.severity == "ERROR":
                lines.append(f"{'':<24}  FAILED {r.name}" + (f" ({_counts_text(r.counts)})" if r.counts else ""))
            elif not r.passed:
                warns.append((table, r))
    if warns:
        lines.append("")
        lines.extend(
            f"WARN {table} {r.name}" + (f": {_counts_text(r.counts)}" if r.counts else "") for table, r in warns
        )
    lines += ["", f"{run.status.value}{took}; {UI_HINT}"]
    return lines, ok


def print_run_summary(run_id: str) -> bool:
    with dg.DagsterInstance.get() as instance:
        lines, ok = summary_lines(instance, run_id)
    print("\n".join(lines))
    return ok
