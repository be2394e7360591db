"""Runs started outside the UI belong to the code location: `consorcio run` (and `consorcio verify`, the bench,
through `launch.create_run`) records the remote origin the webserver would, so the UI lists them under their
job. Asserted through GraphQL on the workspace the UI loads, and the run's own progress and summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parent.parent
WORKSPACE = REPO / "workspace.yaml"

JOB_RUNS = """
query JobRuns($selector: PipelineSelector!) {
  pipelineOrError(params: $selector) {
    __typename
    ... on Pipeline { runs { runId status repositoryOrigin { repositoryLocationName repositoryName } } }
  }
}
"""


def location_name() -> str:
    import yaml

    return yaml.safe_load(WORKSPACE.read_text())["load_from"][0]["python_module"]["location_name"]


@pytest.fixture
def instance_env(seeded_env, storage_db, monkeypatch):
    from consorcio_assets.orchestration.instance import prepare_instance_env

    monkeypatch.setenv("DAGSTER_HOME", str(seeded_env / "dagster_home"))
    monkeypatch.setenv("DAGSTER_PG_URL", storage_db.replace("postgresql://", "postgresql+psycopg2://", 1))
    env = prepare_instance_env()
    return env


def runs_by_label(instance: dg.DagsterInstance, job: str) -> list:
    """What the UI's job page lists: runs of the job tagged with the code location's repository label."""
    from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

    label = f"__repository__@{location_name()}"
    return instance.get_runs(filters=dg.RunsFilter(job_name=job, tags={REPOSITORY_LABEL_TAG: label}))


@pytest.mark.parametrize("job", ["migrate_all", "verify_migration"])
def test_created_runs_carry_the_code_location_origin(instance_env, job):
    from consorcio_assets.tooling.launch import create_run

    with dg.DagsterInstance.get() as instance:
        run = create_run(instance, job, tags={"test": "1"})
        assert run.remote_job_origin is not None
        assert run.remote_job_origin.repository_origin.code_location_origin.location_name == location_name()
        assert run.job_code_origin is not None and run.job_name == job
        assert [r.run_id for r in runs_by_label(instance, job)] == [run.run_id]


def test_consorcio_run_shows_under_migrate_all_with_progress_and_its_own_summary(instance_env, seeded_env):
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster_graphql.test.utils import execute_dagster_graphql

    result = subprocess.run(
        [sys.executable, "-m", "consorcio_assets.tooling.cli", "run"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-5000:]
    run_id = next(line.split()[1] for line in out.splitlines() if line.startswith("run ") and " created;" in line)
    # progress: one line per stage table (rows) and per check group, Dagster's own noise left in its log
    assert "aurora       simulacao_parcela" in out and "rows" in out
    assert "checks aurora_reconciliation" in out and "passed" in out
    for noise in ("STEP_WORKER_STARTED", "SupersessionWarning", "PreviewWarning", "DEBUG"):
        assert noise not in out, noise
    # the summary is of this run, with the WARN's count, the time and how to open the UI
    assert f"run {run_id} of migrate_all: SUCCESS in " in out
    assert "WARN simulacao aurora:datetime2_100ns_truncated: " in out and "rows_affected=" in out
    assert "open the UI: make ui" in out

    with (
        dg.DagsterInstance.get() as instance,
        WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(WORKSPACE)])) as context,
    ):
        selector = {
            "repositoryLocationName": location_name(),
            "repositoryName": "__repository__",
            "pipelineName": "migrate_all",
        }
        answer = execute_dagster_graphql(context.create_request_context(), JOB_RUNS, {"selector": selector})
    job = answer.data["pipelineOrError"]
    assert job["__typename"] == "Pipeline", answer
    assert [(r["runId"], r["status"]) for r in job["runs"]] == [(run_id, "SUCCESS")]
    assert job["runs"][0]["repositoryOrigin"] == {
        "repositoryLocationName": "consorcio_migration",
        "repositoryName": "__repository__",
    }


def test_the_summary_is_of_the_run_named_not_the_latest(instance_env):
    """Two runs of one job at once: each process prints its own run (issue 19 item 6)."""
    from consorcio_assets.tooling.launch import create_run
    from consorcio_assets.tooling.summary import summary_lines

    with dg.DagsterInstance.get() as instance:
        first = create_run(instance, "migrate_all")
        second = create_run(instance, "migrate_all")
        lines, ok = summary_lines(instance, first.run_id)
    assert f"run {first.run_id} of migrate_all: NOT_STARTED" in lines
    assert not any(second.run_id in line for line in lines) and not ok


def test_not_run_checks_are_counted_with_their_reason():
    from consorcio_assets.tooling.summary import CheckResult, RunFacts

    facts = RunFacts()
    for stage, step in (("transformed", "glue_load"), ("aurora", "glue_load")):
        facts.planned_stages["simulacao_lance"][stage] = step
        facts.planned_stages["simulacao"][stage] = step
    facts.done_stages["simulacao"] = {"transformed", "aurora"}
    facts.done_stages["simulacao_lance"] = {"transformed"}
    facts.failed_steps.append("glue_load")
    checks = {
        "aurora:rows_match_source": "reconciliation",
        "aurora:primary_key": "integrity",
        "transformed:rows_match_source": "transformed_checks",
    }
    facts.planned_checks["simulacao_lance"] = dict(checks)
    facts.planned_checks["simulacao"] = dict(checks)
    facts.checks["simulacao_lance"] = [CheckResult("transformed:rows_match_source", True, "ERROR", {})]
    facts.checks["simulacao"] = [CheckResult(name, True, "ERROR", {}) for name in checks]
    assert facts.not_run("simulacao_lance") == (2, "aurora load failed")
    assert facts.not_run("simulacao") == (0, "")
    facts.planned_checks["cliente"] = {"aurora:rule_documents": "business_rules"}
    assert facts.not_run("cliente") == (1, "skipped after step glue_load failed")
    facts.failed_steps.append("business_rules")
    assert facts.not_run("cliente") == (1, "their step failed")
