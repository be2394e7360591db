"""Progress of a run as it happens, read from its event log (the record the UI shows), one line per finished
stage table and per check group.

The run itself executes in another process whose console output (Dagster's debug events, its internal
warnings) goes to a log file; the user sees only these lines, so nothing here prints a value of a row: tables,
counts, seconds and check names only.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

import dagster as dg

ET = dg.DagsterEventType
END_OF_RUN = (ET.RUN_SUCCESS, ET.RUN_FAILURE, ET.RUN_CANCELED)
#: metadata keys a materialization may report its own duration under
SECONDS_KEYS = ("duration_s", "duration_seconds", "seconds")
#: the events a progress line is made of, asked of the database by type: a run's planned events and step outputs
#: (two thirds of a verify's 500) are never read, let alone deserialised, by the command waiting beside the run
FOLLOWED = frozenset(
    {
        ET.RUN_START,
        ET.STEP_START,
        ET.ASSET_MATERIALIZATION,
        ET.ASSET_OBSERVATION,
        ET.ASSET_CHECK_EVALUATION,
        ET.STEP_SUCCESS,
        ET.STEP_FAILURE,
        *END_OF_RUN,
    }
)


def elapsed(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def asset_of(event) -> tuple[dg.AssetKey, dict] | None:
    """(asset key, metadata) of a materialization or observation event."""
    data = event.event_specific_data
    asset = getattr(data, "materialization", None) or getattr(data, "asset_observation", None)
    return (asset.asset_key, asset.metadata) if asset is not None else None


def number(metadata: dict, *keys: str) -> float | None:
    for key in keys:
        value = metadata.get(key)
        if value is not None and isinstance(value.value, (int, float)) and not isinstance(value.value, bool):
            return value.value
    return None


class Follower:
    """Prints the progress lines of one run; `poll()` reads what is new and says whether the run has ended."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        run_id: str,
        out: Callable[[str], None] = print,
        started: float | None = None,
    ):
        self.instance, self.run_id, self.out = instance, run_id, out
        self.started = started if started is not None else time.time()
        self.cursor: str | None = None
        self.step_started: dict[str, float] = {}
        self.step_checks: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # passed, failed, warned
        self.ended = False

    def say(self, timestamp: float, text: str) -> None:
        self.out(f"[{elapsed(max(0.0, timestamp - self.started)):>7}] {text}")

    def poll(self) -> bool:
        while True:
            conn = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, of_type=set(FOLLOWED), limit=500)
            for record in conn.records:
                self.handle(record.event_log_entry)
            self.cursor = conn.cursor
            if not conn.has_more:
                return self.ended

    def handle(self, entry) -> None:
        event = entry.dagster_event
        if event is None:
            return
        kind, step, ts = event.event_type, event.step_key, entry.timestamp
        if kind == ET.RUN_START:
            self.say(ts, "run started: the stages and their checks follow as they finish")
        elif kind == ET.STEP_START and step:
            self.step_started[step] = ts
        elif kind in (ET.ASSET_MATERIALIZATION, ET.ASSET_OBSERVATION):
            self.asset_line(ts, step, event)
        elif kind == ET.ASSET_CHECK_EVALUATION and step:
            data = event.event_specific_data
            warn = data.severity is not None and data.severity.value == "WARN"
            self.step_checks[step][0 if data.passed else 2 if warn else 1] += 1
        elif kind in (ET.STEP_SUCCESS, ET.STEP_FAILURE) and step:
            self.step_end(ts, step, failed=kind == ET.STEP_FAILURE, event=event)
        elif kind in END_OF_RUN:
            self.ended = True

    def asset_line(self, ts: float, step: str | None, event) -> None:
        found = asset_of(event)
        if found is None:
            return
        key, metadata = found
        rows = number(metadata, "dagster/row_count", "rows")
        seconds = number(metadata, *SECONDS_KEYS)
        if seconds is None and step in self.step_started:
            seconds = ts - self.step_started[step]
        stage, table = key.path[0], key.path[-1]
        rows_text = f"{int(rows):>12,} rows" if rows is not None else f"{'':>17}"
        seconds_text = f"  {seconds:7.1f} s" if seconds is not None else ""
        self.say(ts, f"{stage:<12} {table:<26}{rows_text}{seconds_text}")

    def step_end(self, ts: float, step: str, failed: bool, event) -> None:
        passed, errors, warned = self.step_checks.pop(step, [0, 0, 0])
        if passed or errors or warned:
            parts = (
                [f"{passed} passed"] + ([f"{errors} failed"] if errors else []) + ([f"{warned} WARN"] if warned else [])
            )
            self.say(ts, f"checks {step:<35} {', '.join(parts)}")
        if failed:
            error = getattr(event.event_specific_data, "error", None)
            cause = error.cls_name if error is not None else "error"
            self.say(ts, f"FAILED step {step} ({cause}): details with `make ui` or in the log")


def follow(
    instance: dg.DagsterInstance,
    run_id: str,
    alive: Callable[[], bool],
    out=print,
    started: float | None = None,
    interval: float = 0.5,
) -> None:
    """Print progress until the run ends or the process executing it is gone."""
    follower = Follower(instance, run_id, out, started)
    while True:
        ended = follower.poll()
        if ended:
            return
        if not _sleep_while(alive, interval):
            follower.poll()
            return


def _sleep_while(alive: Callable[[], bool], seconds: float, tick: float = 0.02) -> bool:
    """Sleep up to `seconds`, waking as soon as the run's process is gone (its last events are then written, and a
    command should not wait out the rest of a poll interval); whether it is still alive."""
    deadline = time.monotonic() + seconds
    while alive():
        if time.monotonic() >= deadline:
            return True
        time.sleep(tick)
    return False
