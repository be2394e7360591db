"""What is checked before any work starts, by `consorcio run`/`verify` and by a Dagster run's first step: every
setting's value, the source, the pseudonymisation key and the storage the run needs. The first unusable one is
reported as ONE line naming what to fix (the variable, never an internal flag), before a single row moves."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from consorcio_assets.settings import Settings, default_source_path, environment_problems, get_settings


def seedable_source(settings: Settings) -> Path | None:
    """The stand-in `consorcio run` may seed: only the default one under the home, and only when missing. An
    explicit CONSORCIO_SOURCE_URL is the user's data; a missing one is an error, never replaced by generated rows."""
    path = settings.source_path
    if path is None or path.exists() or path != default_source_path(settings.home):
        return None
    return path


def source_problem(settings: Settings) -> str | None:
    path = settings.source_path
    if path is None or path.exists() or path == default_source_path(settings.home):
        return None
    return (
        f"CONSORCIO_SOURCE_URL names {path}, which does not exist: fix the path (only the default stand-in "
        f"{default_source_path(settings.home)} is ever seeded automatically)"
    )


def key_problem(settings: Settings) -> str | None:
    """An existing key file that is too short (the variable's length is checked with the other values)."""
    from consorcio_assets.target.analytics import KEY_ENV, PiiKeyError, checked_key, key_path

    path = key_path(settings.home)
    if os.environ.get(KEY_ENV) or settings.is_aws or not path.exists():
        return None
    try:
        checked_key(path.read_bytes().strip(), str(path))
    except PiiKeyError as err:
        return str(err)
    return None


def storage_problem(variable: str, url: str, timeout: int = 10) -> str | None:
    """`url` (a PostgreSQL the run needs) cannot be reached: name the variable and the redacted URL. One attempt:
    the user is told at once rather than after a retry chain."""
    import psycopg

    from consorcio_assets.target.postgres import redact

    libpq = url.replace("postgresql+psycopg2://", "postgresql://", 1).replace(
        "postgresql+psycopg://", "postgresql://", 1
    )
    try:
        psycopg.connect(libpq, connect_timeout=timeout).close()
    except Exception as err:  # noqa: BLE001 - any failure to connect is the user's to fix, named
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return f"{variable}: cannot connect to {redact(url)}: {reason}"
    return None


def _problems(environ: Mapping[str, str], storage: bool) -> Iterator[str]:
    yield from environment_problems(dict(environ))
    try:
        settings = get_settings()
    except ValueError as err:
        yield str(err)
        return
    for check in (source_problem, key_problem):
        if problem := check(settings):
            yield problem
    if storage:
        for variable in ("CONSORCIO_TARGET_URL", "DAGSTER_PG_URL"):
            if environ.get(variable) and (problem := storage_problem(variable, environ[variable])):
                yield problem


def first_problem(environ: Mapping[str, str] | None = None, *, storage: bool = True) -> str | None:
    """The first reason no work can start, as one line, or None. Lazy: stops at the first problem found."""
    return next(_problems(os.environ if environ is None else environ, storage), None)


def require_usable_settings() -> None:
    """For a Dagster step before its work: a Failure whose description is the one line, not retried. Storage is
    not probed here: the run already reached Dagster's storage, and the steps connect to the target themselves."""
    if problem := first_problem(storage=False):
        import dagster as dg

        raise dg.Failure(description=problem, allow_retries=False)


def refuse_to_start() -> bool:
    """For `consorcio run`/`verify`: print the first problem as one line and return True, else False."""
    import sys

    if problem := first_problem():
        print(f"error: {problem}", file=sys.stderr)
        return True
    return False
