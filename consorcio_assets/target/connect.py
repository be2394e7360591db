"""PostgreSQL connections with retries on transient failures (the retry rules live in `consorcio_core.resilience`,
shared with the Glue job)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg

from consorcio_core.resilience import ATTEMPTS, BASE_SECONDS, retry, transient_postgres

LOG = logging.getLogger(__name__)


def connect_postgres(
    url: str,
    *,
    attempts: int = ATTEMPTS,
    base: float = BASE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs,
) -> psycopg.Connection:
    """psycopg.connect with retries on transient failures; errors name the server, never the password."""
    from consorcio_assets.target.postgres import redact

    return retry(
        lambda: psycopg.connect(url, **kwargs),
        transient=transient_postgres,
        what=f"connecting to {redact(url)}",
        attempts=attempts,
        base=base,
        sleep=sleep,
        log=LOG,
    )
