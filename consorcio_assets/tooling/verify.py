"""`consorcio verify`: run the `verify_migration` job and print one line per check.

The run belongs to the code location (`launch.run_and_follow`: the UI lists it under its job) and executes in a
subprocess on the PostgreSQL-backed instance (its log: <home>/logs/verify_migration-<run>.log); the lines come
from the run's check evaluations: stage, table, check, status, counts and the first offending keys. The exit
code is non-zero when any ERROR check failed or the run itself did not succeed.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass

from consorcio_assets.defs.checks import VERIFY_JOB
from consorcio_assets.orchestration.instance import enter_instance_env
from consorcio_assets.settings import get_settings

RUN_TAG = "consorcio/verify_id"
MAX_COUNTS = 6
MAX_KEYS_SHOWN = 3


@dataclass(frozen=True)
class CheckLine:
    stage: str
    table: str
    check: str
    passed: bool
    severity: str
    counts: dict[str, int]
    keys: list[str]

    @property
    def status(self) -> str:
        if self.passed:
            return "PASS"
        return "FAIL" if self.severity == "ERROR" else "WARN"

    def render(self) -> str:
        counts = " ".join(f"{k}={v:,}" for k, v in list(self.counts.items())[:MAX_COUNTS])
        keys = "; ".join(self.keys[:MAX_KEYS_SHOWN]) + (" …" if len(self.keys) > MAX_KEYS_SHOWN else "")
        text = f"{self.status:<5}{self.stage:<13}{self.table:<22}{self.check:<31}{counts}"
        return text + (f"  keys: {keys}" if keys else "")


def _line(evaluation) -> CheckLine:
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    counts = {k: int(v) for k, v in meta.items() if isinstance(v, int) and not isinstance(v, bool)}
    keys = meta.get("first_keys") or []
    severity = evaluation.severity.value if evaluation.severity else "ERROR"
    return CheckLine(
        evaluation.asset_key.path[0],
        evaluation.asset_key.path[-1],
        evaluation.check_name,
        evaluation.passed,
        severity,
        counts,
        [str(k) for k in keys],
    )


def check_lines(instance, run_id: str) -> list[CheckLine]:
    """The run's check evaluations, ordered by stage, table and check."""
    import dagster as dg

    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    lines = [_line(r.dagster_event.event_specific_data) for r in records]
    return sorted(lines, key=lambda line: (line.stage, line.table, line.check))


def excluded_check_lines() -> list[str]:
    """Which checks verify_migration leaves out and why (the load-time ones): said, so 150 of 162 is explained."""
    from consorcio_assets.defs.checks import excluded_summary
    from consorcio_assets.tooling.launch import repository_definition

    return excluded_summary(repository_definition())  # the definitions this command already built


def main_verify() -> int:
    """Run every check against the current state; print one line per check; non-zero on any ERROR."""
    import dagster as dg

    from consorcio_assets.tooling.launch import run_and_follow, run_log

    env = enter_instance_env()
    log_dir = get_settings().home / "logs"
    run_id, code = run_and_follow(VERIFY_JOB, env, log_dir, tags={RUN_TAG: uuid.uuid4().hex})
    log = run_log(log_dir, VERIFY_JOB, run_id)
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        lines = check_lines(instance, run_id)
        status = run.status.value if run else "NOT STARTED"
    print(f"{'':<5}{'stage':<13}{'table':<22}{'check':<31}counts")
    for line in lines:
        print(line.render())
    failed = [line for line in lines if line.status == "FAIL"]
    warned = [line for line in lines if line.status == "WARN"]
    print(
        f"\n{len(lines)} checks: {len(lines) - len(failed) - len(warned)} passed, {len(failed)} failed (ERROR), "
        f"{len(warned)} warnings; run {run.run_id if run else '-'} {status}; log {log}"
    )
    for excluded in excluded_check_lines():
        print(excluded)
    if run is None or not lines:
        print(f"the verify_migration run did not report checks: see {log}", file=sys.stderr)
    return 1 if failed or code != 0 or not lines else 0
