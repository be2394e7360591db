"""Odd settings stop a run before any work, with one line naming what to fix: an empty or short pseudonymisation
key (file or variable), a mistyped source path, a value a Glue flag would only refuse after the whole extract, an
unreachable storage URL. Nothing is seeded, extracted or loaded, so nothing can be lost."""

from __future__ import annotations

import errno
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from consorcio_assets.orchestration.startup import seedable_source
from consorcio_assets.settings import get_settings
from consorcio_assets.target import analytics as lgpd

REPO = Path(__file__).resolve().parents[2]


def consorcio(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "consorcio_assets.tooling.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


@pytest.fixture
def cli_env(local_env, fresh_db) -> dict[str, str]:
    """The CLI's environment: local_env's home and target, Dagster's storage on the same fresh database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSORCIO_", "DAGSTER_"))} | {
        "CONSORCIO_WARM": "0"
    }
    env.update(
        {k: os.environ[k] for k in ("CONSORCIO_ENV", "CONSORCIO_HOME", "CONSORCIO_TARGET_URL", "CONSORCIO_LAKE_URI")}
    )
    env.update(DAGSTER_PG_URL=fresh_db, DAGSTER_DISABLE_TELEMETRY="1")
    return env


def _refused(done: subprocess.CompletedProcess, home: Path, code: int = 2) -> str:
    """The one error line a refused `consorcio run` printed (beside the `home: …` it announces); it did no work
    (no lake, no run). Returned as `error: …`, without the `consorcio run: ` prefix."""
    lines = [line for line in (done.stdout + done.stderr).strip().splitlines() if not line.startswith("home: ")]
    assert done.returncode == code and len(lines) == 1, done.stdout + done.stderr
    assert not (home / "lake").exists() and not (home / "dagster_home").exists()
    return lines[0].removeprefix("consorcio run: ")


def test_empty_key_file_is_refused(cli_env, local_env, fault_case):
    fault_case.expect(
        "empty pseudonymisation key file",
        "`consorcio run` refuses before any work, naming the file, its length and why",
    )
    key = lgpd.key_path(local_env)
    key.parent.mkdir(parents=True)
    key.write_bytes(b"")
    line = _refused(consorcio("run", "--simulacoes", "30", env=cli_env), local_env)
    assert line.startswith(f"error: pseudonymisation key {key} has 0 bytes, fewer than 32")
    assert "recompute" in line and not (local_env / "source").exists()  # not even seeded
    with pytest.raises(lgpd.PiiKeyError):  # and the run's own step refuses it too
        lgpd.pii_key(local_env, aws=False)
    fault_case.saw(line.replace(str(local_env), "…"), 0)


def test_short_key_variable_is_refused(cli_env, local_env, fault_case):
    fault_case.expect(
        "CONSORCIO_PII_HMAC_KEY of 8 bytes",
        "refused before any work, naming the variable, its length (never its value)",
    )
    line = _refused(consorcio("run", env={**cli_env, lgpd.KEY_ENV: "12345678"}), local_env)
    assert line.startswith("error: CONSORCIO_PII_HMAC_KEY has 8 bytes, fewer than 32") and "12345678" not in line
    fault_case.saw(line, 0)


def test_key_file_is_private_and_never_left_empty(tmp_path, monkeypatch, fault_case):
    fault_case.expect(
        "disk full while the key file is written",
        "no key file left (never an empty one); the next start writes a complete 0600 key in a 0700 folder",
    )
    monkeypatch.delenv(lgpd.KEY_ENV, raising=False)
    real_write = os.write

    def full_disk(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        lgpd.pii_key(tmp_path, aws=False)
    assert not lgpd.key_path(tmp_path).exists() and list(lgpd.key_path(tmp_path).parent.iterdir()) == []
    monkeypatch.setattr(os, "write", real_write)
    old = os.umask(0o022)  # what a careless shell has: the key must not depend on it
    try:
        key = lgpd.pii_key(tmp_path, aws=False)
    finally:
        os.umask(old)
    path = lgpd.key_path(tmp_path)
    assert len(key) == 64 and lgpd.pii_key(tmp_path, aws=False) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    fault_case.saw("ENOSPC: no key file left; then a 64-byte key, 0600, in a 0700 folder", 0)


def test_mistyped_source_is_an_error_not_a_seed(cli_env, local_env, fault_case):
    fault_case.expect(
        "CONSORCIO_SOURCE_URL with a typo (`.duckbd`)", "refused naming the path; nothing seeded there, nothing loaded"
    )
    typo = local_env / "mydata.duckbd"
    line = _refused(consorcio("run", env={**cli_env, "CONSORCIO_SOURCE_URL": f"duckdb:///{typo}"}), local_env)
    assert line == (
        f"error: CONSORCIO_SOURCE_URL names {typo}, which does not exist: fix the path (only the default "
        f"stand-in {local_env / 'source' / 'consorcio_simulacao.duckdb'} is ever seeded automatically)"
    )
    assert not typo.exists()
    fault_case.saw(line.replace(str(local_env), "…"), 0)


def test_only_the_default_stand_in_is_seedable(local_env, monkeypatch):
    default = local_env / "source" / "consorcio_simulacao.duckdb"
    assert seedable_source(get_settings()) == default
    monkeypatch.setenv("CONSORCIO_SOURCE_URL", f"duckdb:///{local_env / 'other.duckdb'}")
    assert seedable_source(get_settings()) is None


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("CONSORCIO_GLUE_COPY_STREAMS", "abc", "CONSORCIO_GLUE_COPY_STREAMS must be a whole number, not 'abc'"),
        ("CONSORCIO_GLUE_ON_INVALID", "skip", "CONSORCIO_GLUE_ON_INVALID must be one of fail, reject, not 'skip'"),
    ],
)
def test_bad_glue_setting_stops_before_the_extract(cli_env, local_env, name, value, expected, fault_case):
    fault_case.expect(
        f"{name}={value}", "`consorcio run` stops at once naming the variable (not a Glue flag); no extract"
    )
    line = _refused(consorcio("run", env={**cli_env, name: value}), local_env)
    assert line == f"error: {expected}"
    fault_case.saw(line, 0)


def test_bad_setting_fails_a_dagster_run_at_its_first_step(seeded_env, monkeypatch, fault_case):
    """A run launched from the UI or a schedule (no CLI in front): the DMS step fails with the one line, before
    it extracts anything."""
    from consorcio_assets.definitions import defs

    fault_case.expect(
        "CONSORCIO_GLUE_ON_INVALID=skip in a UI-launched run",
        "the run's first step fails with the variable's line; no raw file written",
    )
    monkeypatch.setenv("CONSORCIO_GLUE_ON_INVALID", "skip")
    (seeded_env / "dagster").mkdir()
    with dg.DagsterInstance.local_temp(str(seeded_env / "dagster")) as instance:
        result = defs().resolve_job_def("migrate_all").execute_in_process(instance=instance, raise_on_error=False)
    failures = [e for e in result.all_events if e.is_step_failure]
    assert not result.success and [e.step_key for e in failures] == ["dms_full_load"]
    message = failures[0].step_failure_data.user_failure_data.description
    assert message == "CONSORCIO_GLUE_ON_INVALID must be one of fail, reject, not 'skip'"
    assert not list((seeded_env / "lake").rglob("*.parquet"))
    fault_case.saw(f"step dms_full_load failed: {message}", 0)


def test_unreachable_storage_names_the_setting(cli_env, local_env, fault_case):
    fault_case.expect(
        "DAGSTER_PG_URL unreachable", "one line naming DAGSTER_PG_URL and the URL without its password; no retry chain"
    )
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: refused
    url = f"postgresql://dagster:S3cr3t-pw@127.0.0.1:{closed.getsockname()[1]}/dagster"
    try:
        line = _refused(consorcio("run", env={**cli_env, "DAGSTER_PG_URL": url}), local_env, code=1)
    finally:
        closed.close()
    assert line.startswith(
        f"error: DAGSTER_PG_URL: cannot connect to postgresql://dagster:***@127.0.0.1:"
        f"{url.rsplit(':', 1)[1].split('/')[0]}/dagster: "
    )
    assert "S3cr3t" not in line and "refused" in line
    fault_case.saw(line, 0)
