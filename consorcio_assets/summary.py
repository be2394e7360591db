"""The per-table summary printed after a run: rows at each stage and the checks' outcome."""

from __future__ import annotations

from collections import defaultdict

import dagster as dg

from .catalog import catalog
from .stages import STAGES


def _latest_run(instance: dg.DagsterInstance, job: str):
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job), limit=1)
    return runs[0] if runs else None


def collect(instance: dg.DagsterInstance, run_id: str):
    rows, checks, _ = collect_with_planned(instance, run_id)
    return rows, checks


def collect_with_planned(instance: dg.DagsterInstance, run_id: str):
    """Rows per table and stage, check results per table, and the checks the run planned per table (a check
    planned but never evaluated did not run: its step was skipped, e.g. after a failed load)."""
    rows: dict[str, dict[str, int | None]] = defaultdict(dict)
    checks: dict[str, list[tuple[str, bool, str]]] = defaultdict(list)
    planned: dict[str, set[str]] = defaultdict(set)
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
            data = event.event_specific_data
            planned[data.asset_key.path[-1]].add(f"{data.asset_key.path[0]}:{data.check_name}")
            continue
        if event.event_type in (dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_OBSERVATION):
            data = event.event_specific_data
            asset = getattr(data, "materialization", None) or getattr(data, "asset_observation", None)
            stage, table = asset.asset_key.path[0], asset.asset_key.path[-1]
            value = asset.metadata.get("dagster/row_count")
            rows[table][stage] = value.value if value is not None else None
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            data = event.event_specific_data
            severity = data.severity.value if data.severity else "ERROR"
            checks[data.asset_key.path[-1]].append((f"{data.asset_key.path[0]}:{data.check_name}", data.passed, severity))
    return rows, checks, planned


def check_cell(results: list[tuple[str, bool, str]], planned: set[str]) -> tuple[str, list[str]]:
    """`passed/planned ok` and the names of planned checks that never ran: a count of passed checks alone would
    read as all green for a table whose checks were skipped."""
    ran = {name for name, _, _ in results}
    not_run = sorted(planned - ran)
    passed = sum(1 for _, p, _ in results if p)
    cell = f"{passed}/{len(ran | planned)} ok" + (f", {len(not_run)} not run" if not_run else "")
    return cell, not_run


def print_latest_run_summary(job: str) -> bool:
    """Print the summary; True when the run succeeded and no ERROR check failed."""
    instance = dg.DagsterInstance.get()
    run = _latest_run(instance, job)
    if run is None:
        print(f"no run of {job} yet")
        return False
    rows, checks, planned = collect_with_planned(instance, run.run_id)
    header = f"{'table':<24}" + "".join(f"{s:>13}" for s in STAGES) + f"{'checks':>14}"
    print(f"\nrun {run.run_id} of {job}: {run.status.value}")
    print(header)
    print("-" * len(header))
    ok = run.status == dg.DagsterRunStatus.SUCCESS
    for t in catalog():
        stage_rows = rows.get(t.target_name, {})
        cells = "".join(f"{stage_rows[s]:>13,}" if stage_rows.get(s) is not None else f"{'-':>13}" for s in STAGES)
        results = checks.get(t.target_name, [])
        failed = [(name, sev) for name, p, sev in results if not p]
        cell, not_run = check_cell(results, planned.get(t.target_name, set()))
        ok = ok and not not_run and not any(not p and sev == "ERROR" for _, p, sev in results)
        print(f"{t.target_name:<24}{cells}{cell:>14}")
        for name, severity in failed:
            print(f"{'':<24}  {'FAILED' if severity == 'ERROR' else 'WARN  '} {name}")
        for name in not_run:
            print(f"{'':<24}  NOT RUN {name}")
    return ok
