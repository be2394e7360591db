"""Retries for transient failures: exponential backoff with full jitter, a bounded number of attempts, and only
for errors that a later attempt can cure (a refused connection, a server starting up, too many connections,
AWS throttling) — never for a wrong password, a missing database or a bad query.

AWS clients get botocore's own "standard" retry mode (`boto_config`), which does the same for throttling
(ThrottlingException, RequestLimitExceeded...), 5xx answers and connection errors. PostgreSQL connections go
through `consorcio_assets.target.connect.connect_postgres` on the Dagster side and `consorcio_glue.aurora.connect` in
the job.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import psycopg

if TYPE_CHECKING:  # botocore is imported by the clients that need it (~0.15 s with urllib3 and http)
    from botocore.config import Config

T = TypeVar("T")
LOG = logging.getLogger(__name__)

ATTEMPTS = 5  # first try included
BASE_SECONDS = 0.5
CAP_SECONDS = 10.0
#: what a server that may accept the same connection a little later answers (libpq reports connection
#: failures without a SQLSTATE, so the server's FATAL message is all there is)
TRANSIENT_FATAL = (
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "too many clients",
    "remaining connection slots are reserved",
)


def backoff(
    attempt: int, base: float = BASE_SECONDS, cap: float = CAP_SECONDS, rng: Callable[[], float] = random.random
) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)) — spreads the retries of many clients."""
    return rng() * min(cap, base * 2**attempt)


def retry(
    call: Callable[[], T],
    *,
    transient: Callable[[BaseException], bool],
    what: str,
    attempts: int = ATTEMPTS,
    base: float = BASE_SECONDS,
    cap: float = CAP_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    log: logging.Logger = LOG,
) -> T:
    """`call()` until it succeeds, at most `attempts` times, sleeping with full jitter between transient
    failures. A non-transient error propagates at once; the last transient one propagates unchanged (callers
    keep catching what they caught), with a note and an ERROR log saying how many attempts were made.
    `what` names the operation in logs and notes."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(attempts):
        try:
            return call()
        except Exception as err:
            if not transient(err):
                raise
            if attempt + 1 == attempts:
                log.error(f"{what}: giving up after {attempts} attempts: {type(err).__name__}: {_first_line(err)}")
                err.add_note(f"{what}: gave up after {attempts} attempts")
                raise
            delay = backoff(attempt, base, cap, rng)
            log.warning(
                f"{what}: attempt {attempt + 1}/{attempts} failed ({type(err).__name__}: "
                f"{_first_line(err)}); retrying in {delay:.2f}s"
            )
            sleep(delay)
    raise AssertionError("unreachable: the last attempt returned or raised")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


def transient_postgres(err: BaseException) -> bool:
    """A connection attempt a later one may win: the server did not answer (refused, unreachable, reset)
    or answered that it is not ready. A FATAL answer about the password, the role or the database is final."""
    if not isinstance(err, psycopg.OperationalError):
        return False
    text = str(err)
    return "FATAL:" not in text or any(reason in text for reason in TRANSIENT_FATAL)


def boto_config(max_attempts: int = ATTEMPTS, **options) -> Config:
    """botocore's standard retry mode: throttling, transient 5xx and connection errors retried with
    exponential backoff and full jitter, at most `max_attempts` attempts in all."""
    from botocore.config import Config

    return Config(retries={"mode": "standard", "total_max_attempts": max_attempts}, **options)
