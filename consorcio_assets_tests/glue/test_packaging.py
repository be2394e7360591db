"""The job as shipped: the Glue wheel holds `consorcio_glue` and `consorcio_core` only and runs a load from the
wheel alone (as Glue runs it from --extra-py-files), and a non-editable install of the project finds and runs the
job by module name, with no repository checkout on the path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from consorcio_assets.deployment import glue_wheel as wheel
from consorcio_assets.glue_runner.spec import spec_argument, table_spec
from consorcio_assets_tests.glue import data
from consorcio_assets_tests.glue.data import CAT
from consorcio_assets_tests.glue.helpers import REPO, URL_ENV, fetch, write_raw

#: reports where the job's packages come from, and that nothing of the Dagster side was imported with them
PROBE = textwrap.dedent("""
    import json, sys
    import consorcio_core, consorcio_glue.main, consorcio_glue.spark
    print(json.dumps({"glue": consorcio_glue.__file__, "core": consorcio_core.__file__,
                      "dagster_side": sorted(m for m in sys.modules if m == "dagster" or m.startswith("consorcio_assets"))}))
""")


def _run(argv: list[str], pythonpath: Path, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """A process whose imports come first from `pythonpath` (before the checkout's editable install), not the repo."""
    import os

    full = {**os.environ, **(env or {}), "PYTHONPATH": str(pythonpath)}
    return subprocess.run(argv, cwd=cwd, env=full, capture_output=True, text=True, timeout=300)


def _segmento(lake: Path, url: str) -> dict[str, str]:
    write_raw(lake, CAT["Segmento"], data.table("Segmento", data.segmentos()))
    return {
        "--table-spec": spec_argument(table_spec(CAT["Segmento"], CAT, expected_rows=4)),
        "--lake-uri": lake.as_uri(),
        "--target-url-env": URL_ENV,
    }


def test_the_glue_wheel_holds_the_job_and_its_core_only(tmp_path):
    built = wheel.build(tmp_path / "dist")
    again = wheel.build(tmp_path / "again")
    assert built.read_bytes() == again.read_bytes(), "the wheel must be reproducible (Terraform's source_hash)"
    names = zipfile.ZipFile(built).namelist()
    assert {n.split("/")[0] for n in names} == {
        "consorcio_core",
        "consorcio_glue",
        f"consorcio_glue-{wheel.version()}.dist-info",
    }
    assert "consorcio_glue/__main__.py" in names and "consorcio_glue/spark.py" in names


def test_the_job_runs_from_the_glue_wheel_alone(tmp_path, fresh_db):
    built = wheel.build(tmp_path / "dist")
    probe = _run([sys.executable, "-c", PROBE], built, tmp_path)
    assert probe.returncode == 0, probe.stderr
    where = json.loads(probe.stdout)
    assert where["glue"].startswith(str(built)) and where["core"].startswith(str(built))
    assert where["dagster_side"] == []
    arguments = _segmento(tmp_path / "lake", fresh_db)
    entry = REPO / "glue" / "consorcio_glue_job.py"  # Glue's ScriptLocation
    argv = [sys.executable, str(entry), "--JOB_NAME", "j", *[x for kv in arguments.items() for x in kv]]
    done = _run(argv, built, tmp_path, {URL_ENV: fresh_db})
    assert done.returncode == 0, done.stderr[-3000:]
    assert fetch(fresh_db, "SELECT count(*) FROM consorcio.segmento")[0][0] == 4


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project built from a copy of its packages and installed (not editable) into a folder of its own."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    source.mkdir()
    shutil.copy(REPO / "pyproject.toml", source)
    for package in ("consorcio_assets", "consorcio_core", "consorcio_glue"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    site = base / "site"
    _pip("wheel", "--no-deps", "-q", "-w", str(base / "wheels"), str(source))
    _pip("install", "--no-deps", "--no-index", "-q", "--target", str(site), *map(str, (base / "wheels").glob("*.whl")))
    return site


def _pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--disable-pip-version-check"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_non_editable_install_finds_and_runs_the_job(installed, tmp_path, fresh_db):
    """The local Glue client of the installed project starts `python -m consorcio_glue`: found in the install."""
    script = textwrap.dedent("""
        import importlib.util, json, sys
        import consorcio_assets
        from consorcio_assets.glue_runner.local_client import LocalGlueClient
        client = LocalGlueClient(log_dir="logs", poll_wait=1.0)
        run_id = client.start_job_run(JobName="j", Arguments=json.loads(sys.argv[1]))["JobRunId"]
        while (run := client.get_job_run(JobName="j", RunId=run_id)["JobRun"])["JobRunState"] not in (
                "SUCCEEDED", "FAILED", "STOPPED"):
            pass
        print(json.dumps({"assets": consorcio_assets.__file__, "command": client.command,
                          "job": importlib.util.find_spec("consorcio_glue").origin, "run": run["JobRunState"],
                          "error": run.get("ErrorMessage")}))
    """)
    arguments = json.dumps(_segmento(tmp_path / "lake", fresh_db))
    done = _run([sys.executable, "-c", script, arguments], installed, tmp_path, {URL_ENV: fresh_db})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["assets"].startswith(str(installed)) and out["job"].startswith(str(installed))
    assert out["command"][1:] == ["-m", "consorcio_glue"]
    assert out["run"] == "SUCCEEDED", out["error"]
    assert fetch(fresh_db, "SELECT count(*) FROM consorcio.segmento")[0][0] == 4
