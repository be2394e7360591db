"""`consorcio run`/`verify` follow a run's progress: they stop as soon as the run's process is gone, not at the
next poll interval (every command used to wait out up to half a second after its run had ended)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from consorcio_assets.tooling.progress import follow


class RecordingInstance:
    """Answers the follower's event-log reads with nothing new and counts them."""

    def __init__(self):
        self.reads = 0

    def get_records_for_run(self, run_id, cursor=None, limit=None):
        self.reads += 1
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
