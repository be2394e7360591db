"""The suite's markers: every folder or file named in conftest's MARKERS exists, gets its marker, and the marker is
registered (pyproject.toml, `--strict-markers`) and left out by `make test-fast`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from consorcio_assets_tests.conftest import FAST_EXCLUDES, MARKERS, marker_of

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def test_every_marked_path_exists():
    assert [key for key in MARKERS if not (HERE / key.split("::")[0]).exists()] == []


def test_the_longest_matching_path_decides():
    assert marker_of("ui/test_browser.py") == "browser"
    assert marker_of("glue/test_spark.py") == "spark"
    assert marker_of("glue/test_job_args.py") is None
    assert marker_of("faults/test_transient.py") == "faults"
    assert marker_of("test_cli.py::test_help") is None  # the file is not marked, one of its tests is
    assert marker_of("test_cli.py::test_an_unknown_job_is_refused_before_seeding") == "slow"
    assert marker_of("test_cli_runs.py::test_run") == "slow"
    assert marker_of("test_rules_formulas.py::test_vectorised_instalments_equal_the_reference[x]") == "slow"
    assert marker_of("test_rules_formulas.py::test_vectorised_instalments_equal_the_reference_too") is None


def test_every_marker_is_registered_and_strict():
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    registered = {line.split(":")[0] for line in ini["markers"]}
    assert set(MARKERS.values()) <= registered
    assert "--strict-markers" in ini["addopts"]


def test_make_test_fast_leaves_out_every_marker():
    makefile = (ROOT / "Makefile").read_text()
    slow = re.search(r"^SLOW_MARKERS := (.*)$", makefile, re.M)
    assert slow is not None and sorted(slow[1].split()) == FAST_EXCLUDES


def test_the_hook_marks_what_is_collected():
    """Collected from its folder, the browser test carries `browser`: `-m "not browser"` deselects it."""
    import subprocess
    import sys

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not browser",
            "consorcio_assets_tests/ui/test_browser.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert re.search(r"\b0 tests collected|no tests collected", run.stdout), run.stdout[-2000:]
    assert re.search(r"\b([1-9]\d*) deselected", run.stdout), run.stdout[-2000:]
