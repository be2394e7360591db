"""The job's arguments as Glue passes them (`--name value`, Glue's own ignored) parsed into a frozen `JobArgs`,
and the spec version check: a spec of another layout is refused with one error naming both versions."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consorcio_assets.glue_runner.spec import spec_argument, table_spec
from consorcio_assets_tests.glue.data import CAT
from consorcio_core.names import SPEC_VERSION
from consorcio_glue.args import JobArgs, parse_args
from consorcio_glue.errors import JobError
from consorcio_glue.spec import Spec, load_spec


def test_glue_style_arguments_become_typed_fields():
    args = parse_args(
        [
            "--JOB_ID",
            "j_1",
            "--JOB_RUN_ID",
            "jr_1",
            "--job-bookmark-option",
            "job-bookmark-disable",
            "--stages",
            "aurora",
            "--extra-columns",
            "Op,ts",
            "--csv-header",
            "TRUE",
            "--copy-streams",
            "0",
            "--report-checks",
            "false",
            "--spark",
            "on",
        ]
    )
    assert args.stages == frozenset({"aurora"}) and args.extra_columns == ("Op", "ts")
    assert args.csv_header is True and args.report_checks is False and args.copy_streams == 1 and args.spark == "on"
    assert parse_args([]) == JobArgs()
    with pytest.raises(dataclasses.FrozenInstanceError):
        args.stages = frozenset({"transformed"})


def test_batch_publish_arguments():
    args = parse_args(
        ["--action", "publish", "--tables", "segmento,grupo", "--discard", "true", "--staging-schema", "stg"]
    )
    assert (args.action, args.discard, args.staging_schema) == ("publish", True, "stg")
    load = parse_args(["--swap", "deferred", "--batch-tables", "segmento,,grupo"])
    assert load.swap == "deferred" and load.batch_tables == frozenset({"segmento", "grupo"})
    assert (JobArgs().swap, JobArgs().discard, JobArgs().batch_tables) == ("immediate", False, frozenset())


def test_the_swap_needs_the_run_owner_alive(monkeypatch):
    """CONSORCIO_RUN_OWNER names the `consorcio run` process (pid and start ticks): gone, the job must not swap."""
    import os

    from consorcio_assets.orchestration.runs import OWNER_ENV, identity
    from consorcio_glue.owner import require_owner

    monkeypatch.delenv(OWNER_ENV, raising=False)
    require_owner("segmento")  # no owner: a Dagster-launched or AWS run
    monkeypatch.setenv(OWNER_ENV, identity())
    require_owner("segmento")
    for gone in (f"{os.getpid()}:1", "999999999:1"):  # a reused pid (other start), a pid that does not exist
        monkeypatch.setenv(OWNER_ENV, gone)
        with pytest.raises(JobError, match=r"^segmento: the run that started this job is gone .*not swapping"):
            require_owner("segmento")


@given(st.sets(st.sampled_from(["transformed", "aurora"]), min_size=1))
def test_stages_parse_in_any_order(stages):
    assert parse_args(["--stages", ",".join(sorted(stages, reverse=True))]).stages == stages


def test_unknown_stages_are_refused():
    with pytest.raises(SystemExit):
        parse_args(["--stages", "transformed,checks"])


def test_the_spec_of_this_release_is_read():
    spec = Spec(load_spec(spec_argument(table_spec(CAT["Segmento"], CAT))))
    assert spec.target == "segmento" and spec.columns


@pytest.mark.parametrize("version", [None, SPEC_VERSION - 1, SPEC_VERSION + 1, "1"])
def test_a_spec_of_another_version_is_refused(version, tmp_path):
    raw = table_spec(CAT["Segmento"], CAT)
    raw["version"] = version
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(raw))
    for value in (spec_argument(raw), str(path)):
        with pytest.raises(JobError) as failure:
            load_spec(value)
        assert str(failure.value) == (
            f"segmento: the table spec has version {version!r}, this job reads version "
            f"{SPEC_VERSION}: deploy the job wheel built from the same release as the "
            "Dagster code"
        )
