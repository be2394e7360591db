"""`consorcio run`/`verify` follow a run's progress: they stop as soon as the run's process is gone, not at the
next poll interval (every command used to wait out up to half a second after its run had ended)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import dagster as dg

from consorcio_assets.tooling.progress import follow


class RecordingInstance:
    """Answers the follower's event-log reads with nothing new and counts them."""

    def __init__(self):
        self.reads = 0
        self.types: set = set()

    def get_records_for_run(self, run_id, cursor=None, of_type=None, limit=None):
        self.reads += 1
        self.types = set(of_type)
        return SimpleNamespace(records=[], cursor=cursor, has_more=False)


def test_following_ends_when_the_process_ends_not_at_the_next_poll():
    instance, checks = RecordingInstance(), []

    def alive() -> bool:
        checks.append(time.monotonic())
        return len(checks) < 5  # the run's process ends a few ticks into the first interval

    started = time.monotonic()
    follow(instance, "run-id", alive, out=lambda line: None, interval=60.0)
    assert time.monotonic() - started < 10  # not the 60 s interval
    assert instance.reads == 2  # one poll while the run went on, one last read of its final events


def test_a_live_process_is_polled_once_per_interval():
    instance, ends_at = RecordingInstance(), time.monotonic() + 0.35
    follow(instance, "run-id", lambda: time.monotonic() < ends_at, out=lambda line: None, interval=0.1)
    assert 2 <= instance.reads <= 6  # ~0.35 s at one read per 0.1 s, plus the last read (a slow machine reads less)


def test_only_the_events_a_line_is_made_of_are_read():
    """A verify run writes a planned event and a step output per check: reading (deserialising) them beside the
    run cost the run a core's worth of Python time; the follower asks the database for the events it prints."""
    instance = RecordingInstance()
    follow(instance, "run-id", lambda: False, out=lambda line: None)
    ET = dg.DagsterEventType
    assert {ET.ASSET_CHECK_EVALUATION, ET.STEP_SUCCESS, ET.ASSET_MATERIALIZATION, ET.RUN_SUCCESS} <= instance.types
    assert not {ET.ASSET_CHECK_EVALUATION_PLANNED, ET.STEP_OUTPUT, ET.ASSET_MATERIALIZATION_PLANNED} & instance.types
