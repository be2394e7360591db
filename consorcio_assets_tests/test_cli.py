"""`consorcio` as a user meets it: real subprocesses, one-line errors with the right exit code and nothing
created, a bounded wait on an unreachable PostgreSQL, the project found from a subfolder, the UI refusing a
taken port, `consorcio stop`, and the runs of `consorcio run` listed by the UI under their job."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parent.parent
#: the bound the issue sets for an unreachable target or storage to be reported (a user-facing timeout)
UNREACHABLE_SECONDS = 10


def consorcio(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "consorcio_assets.tooling.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*")) if path.exists() else []


@pytest.fixture
def bare_env(tmp_path) -> dict[str, str]:
    """A fresh home and no setting from the caller's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSORCIO_", "DAGSTER_"))} | {
        "CONSORCIO_WARM": "0"
    }
    env.update(CONSORCIO_HOME=str(tmp_path / "home"), DAGSTER_DISABLE_TELEMETRY="1")
    return env


def assert_one_line_error(result, code: int, *needles: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if "error:" in line]
    assert len(errors) == 1, output
    for needle in needles:
        assert needle in errors[0], output


@pytest.mark.parametrize(
    "args, needle",
    [
        (("seed", "--simulacoes", "-5"), "--simulacoes"),
        (("run", "--simulacoes", "-5"), "--simulacoes"),
        (("run", "--simulacoes", "many"), "'many'"),
        (("seed", "--seed", "-1"), "--seed"),
        (("ui", "--port", "70000"), "--port"),
        (("run", "--no-such-option"), "--no-such-option"),
        (("no-such-command",), "no-such-command"),
    ],
)
def test_bad_arguments_are_one_line_exit_2_and_create_nothing(bare_env, tmp_path, args, needle):
    result = consorcio(*args, env=bare_env)
    assert_one_line_error(result, 2, needle)
    assert files_under(tmp_path / "home") == []


def test_a_bad_setting_is_named_before_anything_is_created(bare_env, tmp_path):
    result = consorcio("run", env={**bare_env, "CONSORCIO_GLUE_COPY_STREAMS": "abc"})
    assert_one_line_error(result, 2, "CONSORCIO_GLUE_COPY_STREAMS")
    assert files_under(tmp_path / "home") == []


def test_an_unknown_job_is_refused_before_seeding(bare_env, tmp_path):
    result = consorcio("run", "--job", "nonexistent", env=bare_env)
    assert_one_line_error(result, 2, "'nonexistent' does not exist", "migrate_all")
    assert not (tmp_path / "home" / "source").exists()


def test_summary_of_an_unknown_job_says_it_does_not_exist(bare_env, fresh_db):
    env = {**bare_env, "CONSORCIO_TARGET_URL": fresh_db, "DAGSTER_PG_URL": fresh_db}
    result = consorcio("summary", "--job", "nonexistent", env=env)
    assert_one_line_error(result, 2, "'nonexistent' does not exist")
    result = consorcio("summary", "--job", "migrate_all", env=env)
    assert_one_line_error(result, 1, "no run of migrate_all yet")


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers: a PostgreSQL that hangs."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.mark.parametrize(
    "command, variable",
    [
        ("verify", "DAGSTER_PG_URL"),
        ("summary", "DAGSTER_PG_URL"),
        ("run", "CONSORCIO_TARGET_URL"),
        ("verify", "CONSORCIO_TARGET_URL"),
    ],
)
def test_an_unreachable_postgres_is_one_line_naming_the_redacted_url_within_10s(
    bare_env, tmp_path, silent_server, command, variable
):
    url = f"postgresql://migrador:s3cr3t-pw@127.0.0.1:{silent_server}/consorcio"
    started = time.monotonic()
    result = consorcio(command, env={**bare_env, variable: url}, timeout=60)
    seconds = time.monotonic() - started
    assert_one_line_error(result, 1, variable, f"migrador:***@127.0.0.1:{silent_server}")
    assert "s3cr3t-pw" not in result.stdout + result.stderr
    assert seconds < UNREACHABLE_SECONDS, seconds
    assert not (tmp_path / "home" / "source").exists()


def test_debug_shows_the_traceback(bare_env, silent_server):
    url = f"postgresql://migrador:pw@127.0.0.1:{silent_server}/consorcio"
    result = consorcio("summary", "--debug", env={**bare_env, "DAGSTER_PG_URL": url}, timeout=60)
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_the_project_is_found_from_a_subfolder_and_its_home_is_said(bare_env):
    env = {k: v for k, v in bare_env.items() if k != "CONSORCIO_HOME"}
    result = consorcio("seed", "--simulacoes", "-1", env=env, cwd=REPO / "consorcio_assets" / "contract")
    assert result.returncode == 2
    from consorcio_assets.tooling.cli import find_project

    assert find_project(REPO / "consorcio_assets" / "contract") == REPO
    # a command that says its home, then stops at an unreachable storage before doing anything
    result = consorcio(
        "run", env={**env, "DAGSTER_PG_URL": "postgresql://x@127.0.0.1:1/x"}, cwd=REPO / "consorcio_assets" / "contract"
    )
    assert result.returncode == 1
    assert f"home: {REPO / '.data'}" in result.stderr, result.stderr


def test_outside_the_project_nothing_is_created(bare_env, tmp_path):
    env = {k: v for k, v in bare_env.items() if k != "CONSORCIO_HOME"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = consorcio("run", env=env, cwd=elsewhere)
    assert_one_line_error(result, 2, "not inside the consorcio-migration project")
    assert files_under(elsewhere) == []


def test_every_option_has_help_with_its_default():
    from consorcio_assets.tooling.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and "run" in a.choices).choices
    for name, sub in subparsers.items():
        assert sub.description, name
        for action in sub._actions:
            if action.option_strings and action.help and name != "bench":
                assert action.help, (name, action.dest)
                text = sub.format_help()
                if action.default not in (None, False, "==SUPPRESS==") and action.dest != "help":
                    assert f"(default: {action.default})" in text, (name, action.dest)


def test_bench_help_is_complete(bare_env):
    result = consorcio("bench", "--help", env=bare_env)
    assert result.returncode == 0
    assert "print the Markdown table." in result.stdout and "(default 1,000,000)" in result.stdout


def test_ui_on_a_taken_port_exits_with_one_line_and_leaves_nothing_running(bare_env, fresh_db):
    import psutil

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = {**bare_env, "CONSORCIO_TARGET_URL": fresh_db, "DAGSTER_PG_URL": fresh_db}
        process = subprocess.Popen(
            [sys.executable, "-m", "consorcio_assets.tooling.cli", "ui", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken" in err and "Traceback" not in out + err
    assert [p for p in psutil.Process().children(recursive=True) if "dagster" in _command_line(p)] == []


def _command_line(process) -> str:
    """A child's command line; "" for one that has ended (a zombie left by another test is not running)."""
    import psutil

    try:
        return " ".join(process.cmdline())
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return ""


def test_stop_stops_the_embedded_postgres(bare_env, tmp_path):
    import psutil

    from consorcio_assets.tooling.processes import postmaster_pid

    env = {**bare_env, "CONSORCIO_HOME": str(tmp_path / "home")}
    url = consorcio("db-url", env=env)
    assert url.returncode == 0, url.stderr
    pgdata = tmp_path / "home" / "pg"
    pid = postmaster_pid(pgdata)
    assert pid is not None and psutil.pid_exists(pid)
    with psycopg.connect(url.stdout.strip()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    result = consorcio("stop", env=env)
    assert result.returncode == 0 and "stopped the embedded PostgreSQL" in result.stdout
    assert postmaster_pid(pgdata) is None and not psutil.pid_exists(pid)
    again = consorcio("stop", env=env)
    assert again.returncode == 0 and "is not running" in again.stdout


def test_make_stop_and_make_ui_port_are_wired():
    makefile = (REPO / "Makefile").read_text()
    dry = subprocess.run(["make", "-n", "-C", str(REPO), "stop", "ui", "PORT=3123"], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "consorcio stop" in dry.stdout and "consorcio ui --port 3123" in dry.stdout
    assert "PORT ?= 3000" in makefile
