"""The run's executor: read-only (check) steps on threads beside each other, every other step in the main
thread; blocking checks and failures behave as under Dagster's own executors. Runs real runs of a small job."""

from __future__ import annotations

import os
import signal
import threading
import time

import dagster as dg
import pytest
from dagster._core.execution.api import execute_job

from consorcio_assets.orchestration.check_threads import READ_ONLY, check_threads_executor

SEEN: dict[str, str] = {}  # op name: the thread it ran on
BARRIER = threading.Barrier(2, timeout=20)


def _record(name: str) -> None:
    SEEN[name] = threading.current_thread().name


@dg.asset
def upstream() -> None:
    _record("upstream")


@dg.asset(deps=[upstream])
def downstream() -> None:
    _record("downstream")


def _meeting_check(name: str):
    """Two of these pass only when both run at once: each waits for the other at the barrier."""

    @dg.multi_asset_check(
        specs=[dg.AssetCheckSpec(name, asset=upstream, blocking=True)], name=f"{name}_op", op_tags=READ_ONLY
    )
    def _check():
        _record(name)
        BARRIER.wait()
        yield dg.AssetCheckResult(check_name=name, asset_key=upstream.key, passed=True)

    return _check


@dg.multi_asset_check(specs=[dg.AssetCheckSpec("untagged", asset=upstream)], name="untagged_op")
def untagged():
    _record("untagged")
    yield dg.AssetCheckResult(check_name="untagged", asset_key=upstream.key, passed=True)


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec("refuses", asset=upstream, blocking=True)], name="refuses_op", op_tags=READ_ONLY
)
def refuses():
    _record("refuses")
    yield dg.AssetCheckResult(check_name="refuses", asset_key=upstream.key, passed=False)


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec("crashes", asset=upstream, blocking=True)], name="crashes_op", op_tags=READ_ONLY
)
def crashes():
    _record("crashes")
    raise RuntimeError("check op crashed")


RELEASE = threading.Event()


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec("stalls", asset=upstream, blocking=True)], name="stalls_op", op_tags=READ_ONLY
)
def stalls():
    _record("stalls")
    RELEASE.wait(30)
    yield dg.AssetCheckResult(check_name="stalls", asset_key=upstream.key, passed=True)


def _job(*checks) -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=[upstream, downstream],
        asset_checks=list(checks),
        jobs=[dg.define_asset_job("j", executor_def=check_threads_executor)],
    )
    return defs.resolve_job_def("j")


def concurrent_job():
    return _job(_meeting_check("left"), _meeting_check("right"), untagged)


def refusing_job():
    return _job(refuses)


def crashing_job():
    return _job(crashes)


def stalling_job():
    return _job(stalls)


def _run(job_fn) -> tuple[dg.ExecutionResult, list]:
    """The run's result and its event log (which also holds what the executor logged without an event)."""
    SEEN.clear()
    with dg.DagsterInstance.ephemeral() as instance, execute_job(dg.reconstructable(job_fn), instance) as result:
        return result, instance.all_logs(result.run_id)


def test_read_only_steps_run_at_once_on_threads_and_the_rest_in_the_main_thread():
    result, _ = _run(concurrent_job)
    assert result.success
    # the barrier let both pass: they ran at the same time, each on a thread of its own
    assert {SEEN["left"], SEEN["right"]} == {"step-left_op", "step-right_op"}
    assert SEEN["upstream"] == SEEN["downstream"] == SEEN["untagged"] == "MainThread"
    evaluations = {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }
    assert evaluations == {"left": True, "right": True, "untagged": True}


@pytest.mark.parametrize("job_fn, failing_step", [(refusing_job, "refuses_op"), (crashing_job, "crashes_op")])
def test_a_failed_blocking_check_on_a_thread_stops_what_depends_on_it(job_fn, failing_step):
    result, logs = _run(job_fn)
    assert not result.success
    assert "downstream" not in SEEN  # blocked by the check, as under Dagster's own executors
    failures = [e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failures == [failing_step]
    started = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}
    assert "downstream" not in started
    abandoned = [r.step_key for r in logs if "Not executing" in r.message]
    assert abandoned == ["downstream"]  # "Dependencies for step downstream failed: [...]. Not executing."


def test_an_interrupt_while_a_check_step_runs_ends_the_run_at_once():
    RELEASE.clear()

    def interrupt_once_the_check_runs():
        deadline = time.monotonic() + 20
        while "stalls" not in SEEN and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)  # what `dagster` turns a run's termination into

    threading.Thread(target=interrupt_once_the_check_runs, daemon=True).start()
    started = time.monotonic()
    try:
        result, logs = _run(stalling_job)
    finally:
        RELEASE.set()
    assert time.monotonic() - started < 20  # it did not wait for the stalled check
    assert not result.success
    assert "downstream" not in SEEN
    assert any("Run interrupted: check steps stalls_op end with the process" in r.message for r in logs)
