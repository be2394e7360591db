"""The run's executor: every step in the run's own process, and the steps that only read (check steps) on threads
beside the others.

In-process execution (see `defs/executor.py`) runs one step after another; a run's check steps are independent
reads of the same state — verify_migration is six of them, migrate_all four after its load — and each waits on
DuckDB and PostgreSQL most of its time, so run one after another they took twice their CPU time. A step whose op
carries `READ_ONLY_TAG` runs on a thread of its own (at most `MAX_THREADS` at once); every other step runs in the
run's main thread as Dagster's in-process executor runs it, so a terminated run still interrupts the Glue or DMS
step that is running (its clean-up needs the signal, which Python delivers to the main thread only). A check
step still running when the run is interrupted (the signal is seen between steps) is left to end with the process:
it writes nothing but events.

Dagster has no public API for an executor of this kind; this follows its in-process and multiprocess executors
(`dagster._core.executor`), one loop over `ActiveExecution`.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.compute_logs import create_compute_log_file_key
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.plan.execute_plan import _trigger_hook, dagster_event_sequence_for_step
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.base import Executor
from dagster._utils.error import serializable_error_info_from_exc_info

#: an op tag: the step only reads (checks), so it may run on a thread beside other steps
READ_ONLY_TAG = "consorcio/read_only"
READ_ONLY = {READ_ONLY_TAG: "true"}
#: check steps at once; each runs its own checks two at a time (defs/checks.py CHECK_WORKERS)
MAX_THREADS = 3
_DONE = object()


def runs_on_thread(step) -> bool:
    return step.tags.get(READ_ONLY_TAG) == "true"


def _step_thread(step_context, events: queue.Queue) -> None:
    key = step_context.step.key
    try:
        for event in dagster_event_sequence_for_step(step_context):
            events.put((key, event))
    except BaseException:  # noqa: BLE001 - dagster_event_sequence_for_step turns user errors into events; this is ours
        events.put((key, serializable_error_info_from_exc_info(sys.exc_info())))
    finally:
        events.put((key, _DONE))


def _threaded_plan_iterator(job_context, execution_plan) -> Iterator[DagsterEvent]:
    compute_log_manager = job_context.instance.compute_log_manager
    step_keys = [step.key for step in execution_plan.get_steps_to_execute_in_topo_order()]
    with ExitStack() as stack:
        concurrency = stack.enter_context(InstanceConcurrencyContext(job_context.instance, job_context.dagster_run))
        active = stack.enter_context(
            execution_plan.start(
                retry_mode=job_context.retry_mode,
                instance_concurrency_context=concurrency,
                step_dependency_config=job_context.step_dependency_config,
            )
        )
        log_key = compute_log_manager.build_log_key_for_run(job_context.run_id, create_compute_log_file_key())
        log_context = stack.enter_context(compute_log_manager.capture_logs(log_key))
        yield DagsterEvent.capture_logs(job_context, step_keys, log_key, log_context)

        events: queue.Queue = queue.Queue()
        threaded: dict[str, tuple[Any, list[DagsterEvent]]] = {}  # step key: (step context, its events)

        def finish(step_context, step_events: list[DagsterEvent]) -> Iterator[DagsterEvent]:
            active.verify_complete(job_context, step_context.step.key)
            for event in active.plan_events_iterator(job_context):
                step_events.append(event)
                yield event
            yield from _trigger_hook(step_context, step_events)

        def drain(block: bool) -> Iterator[DagsterEvent]:
            """Hand on what the check threads produced: their events, and each finished step's completion."""
            try:
                item = events.get(timeout=active.sleep_interval() or 0.05) if block else events.get_nowait()
            except queue.Empty:
                return
            while True:
                key, what = item
                step_context, step_events = threaded[key]
                if what is _DONE:
                    del threaded[key]
                    yield from finish(step_context, step_events)
                elif isinstance(what, DagsterEvent):
                    step_events.append(what)
                    yield what
                    active.handle_event(what)
                else:
                    yield DagsterEvent.engine_event(
                        step_context, f"step {key} ended with an error", EngineEventData.engine_error(what)
                    )
                try:
                    item = events.get_nowait()
                except queue.Empty:
                    return

        while not active.is_complete or threaded:
            if active.check_for_interrupts():  # a signal captured between steps (a step's own is raised inside it)
                active.mark_interrupted()
                yield DagsterEvent.engine_event(
                    job_context,
                    "Run interrupted"
                    + (f": check steps {', '.join(sorted(threaded))} end with the process" if threaded else ""),
                    EngineEventData.interrupted(sorted(threaded)),
                )
                raise DagsterExecutionInterruptedError()
            yield from drain(block=False)
            yield from active.concurrency_event_iterator(job_context)
            free = MAX_THREADS - len(threaded)
            steps = active.get_steps_to_execute(limit=None) if not active.is_complete else []
            if not steps:
                if threaded:
                    yield from drain(block=True)
                elif not active.is_complete:
                    active.sleep_til_ready()
                continue
            for step in sorted(steps, key=lambda s: not runs_on_thread(s)):  # threads first, then the main one
                # the context is made as the step starts: it carries what the run knows by then (outputs, retries)
                step_context = job_context.for_step(step, active.get_known_state())
                if runs_on_thread(step) and free > 0:
                    free -= 1
                    threaded[step.key] = (step_context, [])
                    threading.Thread(
                        target=_step_thread, args=(step_context, events), name=f"step-{step.key}", daemon=True
                    ).start()
                    continue
                step_events: list[DagsterEvent] = []
                for event in dagster_event_sequence_for_step(step_context):
                    step_events.append(event)
                    yield event
                    active.handle_event(event)
                    yield from drain(block=False)
                yield from finish(step_context, step_events)


class CheckThreadsExecutor(Executor):
    """Dagster's in-process executor, with read-only steps on threads (module docstring)."""

    def __init__(self, retries: RetryMode, step_dependency_config: StepDependencyConfig):
        self._retries = retries
        self._step_dependency_config = step_dependency_config

    @property
    def retries(self) -> RetryMode:
        return self._retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self._step_dependency_config

    def execute(self, plan_context, execution_plan) -> Iterator[DagsterEvent]:
        step_keys = execution_plan.step_keys_to_execute
        yield DagsterEvent.engine_event(
            plan_context,
            f"Executing steps in process (pid: {os.getpid()}), check steps on up to {MAX_THREADS} threads",
            event_specific_data=EngineEventData.in_process(os.getpid(), step_keys),
        )
        yield from ExecuteRunWithPlanIterable(
            execution_plan=plan_context.execution_plan,
            iterator=_threaded_plan_iterator,
            execution_context_manager=PlanExecutionContextManager(
                job=plan_context.job,
                retry_mode=plan_context.retry_mode,
                execution_plan=plan_context.execution_plan,
                run_config=plan_context.run_config,
                dagster_run=plan_context.dagster_run,
                instance=plan_context.instance,
                raise_on_error=plan_context.raise_on_error,
                output_capture=plan_context.output_capture,
                step_dependency_config=self.step_dependency_config,
            ),
        )
        yield DagsterEvent.engine_event(
            plan_context,
            f"Finished steps in process (pid: {os.getpid()})",
            event_specific_data=EngineEventData.in_process(os.getpid(), step_keys),
        )


@dg.executor(name="in_process_check_threads", config_schema={"retries": get_retries_config()})
def check_threads_executor(init_context) -> CheckThreadsExecutor:
    config = init_context.executor_config
    return CheckThreadsExecutor(
        RetryMode.from_config(config["retries"]) or RetryMode.ENABLED,
        StepDependencyConfig.default(),
    )
