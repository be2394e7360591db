"""The embedded PostgreSQL (Dagster's storage and the target) killed mid-run: `consorcio run` stops with one line
naming the setting and its redacted URL, not hundreds of lines of retries and chained tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _postmaster(home: Path) -> int | None:
    pid_file = home / "pg" / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def test_postgres_killed_mid_run_is_one_line_naming_the_setting(tmp_path, fault_case):
    fault_case.expect(
        "embedded PostgreSQL SIGKILLed mid-run (`consorcio run`)",
        "one error line naming DAGSTER_PG_URL without its password; no retry notes, no traceback",
    )
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSORCIO_", "DAGSTER_"))} | {
        "CONSORCIO_WARM": "0"
    }
    env.update(CONSORCIO_HOME=str(home), DAGSTER_DISABLE_TELEMETRY="1")
    cli = [sys.executable, "-m", "consorcio_assets.tooling.cli"]
    seeded = subprocess.run([*cli, "seed", "--simulacoes", "300"], env=env, cwd=REPO, capture_output=True, text=True)
    assert seeded.returncode == 0, seeded.stderr
    log = tmp_path / "run.log"
    with log.open("w") as out:
        run = subprocess.Popen([*cli, "run"], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 300
        while "s3_raw " not in log.read_text() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # the extract has started reporting: the run and its storage are live
        pid = _postmaster(home)
        assert pid is not None and run.poll() is None, log.read_text()
        os.kill(pid, 9)
        run.wait(timeout=300)
    text = log.read_text()
    errors = [line for line in text.splitlines() if "error:" in line]
    assert run.returncode == 1, text
    assert len(errors) == 1 and "DAGSTER_PG_URL" in errors[0] and "cannot connect" in errors[0], text
    assert "Traceback" not in text and "Retrying failed database connection" not in text, text
    assert len(text.splitlines()) < 60, text
    fault_case.saw(errors[0].split(": cannot connect")[0] + ": cannot connect to …", 0)
