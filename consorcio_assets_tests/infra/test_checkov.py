"""checkov on `infra/`: no failed check (skips carry their reason inline, see test_terraform).

checkov lives in its own virtualenv (`.venv/tools/checkov`, made by infra/install-checkov.sh) because its pinned
dependencies conflict with the project's; the first run creates it (~30-60 s), later runs reuse it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from consorcio_assets_tests.infra.hcl import INFRA, REPO

INSTALL = INFRA / "install-checkov.sh"
CHECKOV = REPO / ".venv" / "tools" / "checkov" / "bin" / "checkov"


def checkov_executable():
    """The pinned checkov, installed into its own virtualenv on first use (a no-op afterwards)."""
    subprocess.run(["bash", str(INSTALL)], check=True, timeout=600, env={**os.environ, "PYTHON": sys.executable})
    return CHECKOV


def test_checkov_reports_no_failed_check():
    exe = checkov_executable()
    started = time.perf_counter()
    proc = subprocess.run(
        [
            str(exe),
            "-d",
            str(INFRA),
            "--framework",
            "terraform",
            "--quiet",
            "--compact",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    seconds = time.perf_counter() - started
    assert proc.stdout.strip(), f"checkov printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout)
    summary, results = report["summary"], report["results"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): {c['check_name']}"
        for c in results["failed_checks"]
    ]
    assert summary["parsing_errors"] == 0, proc.stdout[-2000:]
    assert failed == [], "checkov failed checks:\n" + "\n".join(failed)
    assert proc.returncode == 0
    assert summary["passed"] > 250, summary
    print(f"checkov: {summary['passed']} passed, {summary['skipped']} skipped in {seconds:.1f}s")


def test_checkov_reports_no_failed_check_on_the_dockerfile():
    exe = checkov_executable()
    proc = subprocess.run(
        [
            str(exe),
            "-f",
            str(REPO / "Dockerfile"),
            "--framework",
            "dockerfile",
            "--quiet",
            "--compact",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert proc.stdout.strip(), f"checkov printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout)
    failed = [f"{c['check_id']}: {c['check_name']}" for c in report["results"]["failed_checks"]]
    assert failed == [], "checkov failed checks on the Dockerfile:\n" + "\n".join(failed)
    assert report["summary"]["passed"] > 20 and report["summary"]["skipped"] == 0, report["summary"]
    assert proc.returncode == 0
