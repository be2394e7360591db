"""The aws path against moto's server: boto3's Glue client receives the runs (requests asserted from moto's
record), Pipes context and messages travel through S3, the lake is S3 and the Aurora credentials come from
Secrets Manager. The job is registered as infra/glue.tf declares it (glueetl, Glue 5.0, workers, the wheel on
--extra-py-files), its entry script and wheel uploaded as Terraform uploads them. moto records Glue runs but never
executes them, so `GlueOnMoto` plays Glue's worker: it fetches the job's ScriptLocation and --extra-py-files from
S3, runs the script with the wheel on the path and each run's arguments, and reports that process's outcome as the
run's state."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from urllib.parse import parse_qs, urlparse

import boto3
import dagster as dg
import pytest

from consorcio_assets.defs.glue_aurora import glue_transform_and_load
from consorcio_assets.deployment import glue_wheel as wheel
from consorcio_assets.glue_runner.local_client import argv_of
from consorcio_assets.glue_runner.resource import AwsGlue
from consorcio_assets.target.resource import TargetDb
from consorcio_assets_tests.glue import data
from consorcio_assets_tests.glue.data import CAT
from consorcio_assets_tests.glue.helpers import REPO, fetch, write_raw
from consorcio_assets_tests.infra.hcl import load_config

BUCKET = "consorcio-lake"
PIPES_BUCKET = "consorcio-pipes"
JOB = "consorcio-glue-job"
#: what Glue runs: the entry script (ScriptLocation), which imports the job from the wheel on --extra-py-files
ENTRY_SCRIPT = REPO / "glue" / "consorcio_glue_job.py"
SCRIPTS = "scripts"  # Terraform's scripts_prefix: the script and the wheel in the lake bucket


class GlueOnMoto:
    """moto's Glue client, plus the worker moto lacks (one subprocess per run, its exit code the run state)."""

    def __init__(self, client, log_dir):
        self.client, self.log_dir, self.meta = client, log_dir, client.meta

    def start_job_run(self, **params):
        response = self.client.start_job_run(**params)
        run_id = response["JobRunId"]
        job = self.client.get_job(JobName=params["JobName"])["Job"]
        script = self._fetch(job["Command"]["ScriptLocation"], run_id)
        wheels = [str(self._fetch(uri, run_id)) for uri in job["DefaultArguments"]["--extra-py-files"].split(",")]
        arguments = {**job["DefaultArguments"], **params["Arguments"]}
        argv = [
            sys.executable,
            str(script),
            "--JOB_NAME",
            params["JobName"],
            "--JOB_RUN_ID",
            run_id,
            *argv_of(arguments),
        ]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(wheels)}  # ahead of the checkout's editable install
        with open(self.log_dir / f"{run_id}.stderr", "w") as err:
            RUNS[run_id] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=self.log_dir)
        return response

    def _fetch(self, uri: str, run_id: str):
        """An S3 object of the job (script, wheel) in the run's own folder, as Glue stages them."""
        parsed = urlparse(uri)
        path = self.log_dir / run_id / parsed.path.rsplit("/", 1)[-1]
        path.parent.mkdir(parents=True, exist_ok=True)
        boto3.client("s3").download_file(parsed.netloc, parsed.path.lstrip("/"), str(path))
        return path

    def get_job_run(self, **params):
        response = self.client.get_job_run(**params)
        run = response["JobRun"]
        code = RUNS[params["RunId"]].wait(timeout=120)
        run["JobRunState"] = "SUCCEEDED" if code == 0 else "FAILED"
        run.pop("LogGroupName", None)  # CloudWatch logging off: the resource must say so
        if code:
            errors = [
                line
                for line in (self.log_dir / f"{params['RunId']}.stderr").read_text().splitlines()
                if line.startswith("ERROR: ")
            ]
            run["ErrorMessage"] = errors[-1][len("ERROR: ") :] if errors else f"exit code {code}"
        return response

    def batch_stop_job_run(self, **params):
        for run_id in params["JobRunIds"]:
            RUNS[run_id].kill()
        return self.client.batch_stop_job_run(**params)


RUNS: dict[str, subprocess.Popen] = {}


class GlueOnMotoResource(AwsGlue):
    def glue_client(self):
        return GlueOnMoto(super().glue_client(), self._log_dir())

    def _log_dir(self):
        from pathlib import Path

        path = Path(os.environ["CONSORCIO_HOME"]) / "glue-on-moto"
        path.mkdir(parents=True, exist_ok=True)
        return path


@pytest.fixture
def aws_env(moto_endpoint, fresh_db, tmp_path, monkeypatch):
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "CONSORCIO_ENV": "aws",
        "CONSORCIO_HOME": str(tmp_path),
        "CONSORCIO_LAKE_URI": f"s3://{BUCKET}/lake",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL_S3",
        "CONSORCIO_TARGET_URL",
        "CONSORCIO_PIPES_URI",
        "CONSORCIO_TARGET_SECRET_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    s3 = boto3.client("s3")
    for bucket in (BUCKET, PIPES_BUCKET):
        if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
            s3.create_bucket(Bucket=bucket)
    glue = boto3.client("glue")
    if JOB not in glue.list_jobs()["JobNames"]:
        built = wheel.build(tmp_path / "dist")
        s3.upload_file(str(ENTRY_SCRIPT), BUCKET, f"{SCRIPTS}/{ENTRY_SCRIPT.name}")
        s3.upload_file(str(built), BUCKET, f"{SCRIPTS}/{built.name}")
        glue.create_job(Name=JOB, Role="arn:aws:iam::123456789012:role/glue", **terraform_job())
    url = urlparse(fresh_db)
    secret = {
        "host": parse_qs(url.query)["host"][0],
        "port": 5432,
        "username": "postgres",
        "password": "",
        "dbname": url.path.lstrip("/"),
    }
    arn = boto3.client("secretsmanager").create_secret(
        Name=f"aurora-{url.path.lstrip('/')}", SecretString=json.dumps(secret)
    )["ARN"]
    return s3, glue, fresh_db, arn


def terraform_job() -> dict:
    """The job as infra/glue.tf deploys it, in create_job's terms: its variables at their defaults, its S3 objects
    at this test's bucket (under the same scripts prefix), its default arguments those that name no other resource."""
    config = load_config()
    job = config.resource("aws_glue_job", "consorcio")
    default = {name: v["default"] for name, v in config.variables.items() if "default" in v}
    assert default["scripts_prefix"] == SCRIPTS

    def value(expression):
        m = re.fullmatch(r"\$\{var\.(\w+)\}", str(expression))
        return default[m.group(1)] if m else expression

    command = job["command"][0]
    arguments = {k: v for k, v in job["default_arguments"].items() if "${" not in str(v)}
    arguments["--additional-python-modules"] = ",".join(default["glue_additional_python_modules"])
    arguments["--extra-py-files"] = f"s3://{BUCKET}/{SCRIPTS}/{wheel.wheel_name()}"
    assert "aws_s3_object.glue_wheel.key" in job["default_arguments"]["--extra-py-files"]
    return {
        "Command": {
            "Name": command["name"],
            "PythonVersion": command["python_version"],
            "ScriptLocation": f"s3://{BUCKET}/{SCRIPTS}/{ENTRY_SCRIPT.name}",
        },
        "GlueVersion": job["glue_version"],
        "WorkerType": value(job["worker_type"]),
        "NumberOfWorkers": value(job["number_of_workers"]),
        "Timeout": value(job["timeout"]),
        "MaxRetries": job["max_retries"],
        "ExecutionProperty": {"MaxConcurrentRuns": value(job["execution_property"][0]["max_concurrent_runs"])},
        "DefaultArguments": arguments,
    }


def test_the_job_is_registered_as_terraform_deploys_it(aws_env):
    _, glue, _, _ = aws_env
    job = glue.get_job(JobName=JOB)["Job"]
    assert job["Command"]["Name"] == "glueetl" and job["GlueVersion"] == "5.0"
    assert job["WorkerType"] == "G.1X" and job["NumberOfWorkers"] >= 2
    assert job["DefaultArguments"]["--extra-py-files"].endswith(wheel.wheel_name())
    for key, expected in terraform_job().items():
        got = job[key]
        assert ({k: got.get(k) for k in expected} if isinstance(expected, dict) else got) == expected, key


def _upload_raw(s3, tmp_path, name, rows):
    local = tmp_path / "raw-upload"
    for path in write_raw(local, CAT[name], data.table(name, rows)):
        s3.upload_file(str(path), BUCKET, f"lake/{path.relative_to(local).as_posix()}")


def _materialize(names, instance, aws_env):
    _, _, url, arn = aws_env
    keys = [dg.AssetKey([stage, CAT[n].target_name]) for n in names for stage in ("transformed", "aurora")]
    resource = GlueOnMotoResource(
        lake_uri=f"s3://{BUCKET}/lake",
        pipes_uri=f"s3://{PIPES_BUCKET}/dagster",
        target_secret_id=arn,
        worker_type="G.1X",
        number_of_workers=2,
        timeout_minutes=30,
        message_poll_seconds=0.5,
        additional_python_modules="dagster-pipes==1.13.*",
    )
    return dg.materialize(
        [glue_transform_and_load],
        selection=keys,
        resources={"glue": resource, "target_db": TargetDb(url=url)},
        instance=instance,
        raise_on_error=False,
    )


def _logged(instance, result) -> str:
    return "\n".join(r.user_message for r in instance.all_logs(result.run_id))


def test_glue_runs_on_aws_through_s3_pipes(aws_env, tmp_path):
    s3, glue, url, arn = aws_env
    _upload_raw(s3, tmp_path, "Segmento", data.segmentos())
    with dg.instance_for_test() as instance:
        result = _materialize(["Segmento"], instance, aws_env)
        assert result.success, _logged(instance, result)[-3000:]
        logs = _logged(instance, result)
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert meta["aurora/segmento"]["dagster/row_count"].value == 4
    assert meta["transformed/segmento"]["uri"].value == f"s3://{BUCKET}/lake/transformed/segmento"
    assert [c.passed for c in result.get_asset_check_evaluations()] == [True]
    assert fetch(url, "SELECT count(*) FROM consorcio.segmento")[0][0] == 4
    parts = s3.list_objects_v2(Bucket=BUCKET, Prefix="lake/transformed/segmento/")["Contents"]
    assert [p["Key"] for p in parts] == ["lake/transformed/segmento/part-00000.parquet"]
    # what Glue was asked to do, as moto recorded it
    [load] = [r for r in glue.get_job_runs(JobName=JOB)["JobRuns"] if r["Arguments"].get("--action") == "load"]
    args = load["Arguments"]
    assert json.loads(args["--table-spec"])["target"]["name"] == "segmento"
    assert args["--stages"] == "transformed,aurora" and args["--lake-uri"] == f"s3://{BUCKET}/lake"
    assert args["--target-secret-id"] == arn and "--target-url-env" not in args
    assert args["--raw-format"] == "parquet"
    # a batch of one table: its load swaps it in, foreign keys validated in that transaction; no publish run
    assert "--swap" not in args and "--batch-tables" not in args and args["--fk-validation"] == "immediate"
    runs = [r["Arguments"] for r in glue.get_job_runs(JobName=JOB)["JobRuns"]]
    assert [a["--action"] for a in runs if a.get("--run-id") == result.run_id] == ["load"]
    # Pipes travels through its own bucket (the one Terraform lets both roles use), never the lake's
    context, messages = (_pipes_param(args[f"--dagster-pipes-{p}"]) for p in ("context", "messages"))
    assert context["bucket"] == messages["bucket"] == PIPES_BUCKET
    assert context["key"].startswith("dagster/context/")
    assert s3.list_objects_v2(Bucket=PIPES_BUCKET, Prefix=messages["key_prefix"])["KeyCount"] > 0
    lake_keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert all(k.startswith(("lake/", f"{SCRIPTS}/")) for k in lake_keys), lake_keys
    assert load["WorkerType"] == "G.1X" and load["NumberOfWorkers"] == 2
    assert args["--additional-python-modules"] == "dagster-pipes==1.13.*"
    assert meta["aurora/segmento"]["foreign_keys_not_valid"].value == 0  # nothing for a validate run to do
    assert not [r for r in glue.get_job_runs(JobName=JOB)["JobRuns"] if r["Arguments"].get("--action") == "validate"]
    assert "has no CloudWatch log group" in logs


def test_a_batch_of_two_tables_stages_both_and_publishes_them_in_one_run(aws_env, tmp_path):
    s3, glue, url, _ = aws_env
    _upload_raw(s3, tmp_path, "Segmento", data.segmentos())
    _upload_raw(s3, tmp_path, "Administradora", data.administradoras())
    with dg.instance_for_test() as instance:
        result = _materialize(["Segmento", "Administradora"], instance, aws_env)
        assert result.success, _logged(instance, result)[-3000:]
    # moto's Glue is the session's: this run's job runs are those carrying its run id
    runs = [r["Arguments"] for r in glue.get_job_runs(JobName=JOB)["JobRuns"]]
    runs = [a for a in runs if a.get("--run-id") == result.run_id]
    loads = [a for a in runs if a["--action"] == "load"]
    assert len(loads) == 2 and all(a["--swap"] == "deferred" for a in loads)
    assert {a["--batch-tables"] for a in loads} == {"segmento,administradora"}
    [publish] = [a for a in runs if a["--action"] == "publish"]
    assert set(publish["--tables"].split(",")) == {"segmento", "administradora"} and publish["--discard"] == "false"
    assert fetch(url, "SELECT count(*) FROM consorcio.administradora")[0][0] == 3


@pytest.mark.parametrize(
    "pipes_uri, lake_uri, expected",
    [
        ("s3://pipes-bucket", "s3://lake/zone", ("pipes-bucket", "")),
        ("s3://pipes-bucket/a/b/", "s3://lake/zone", ("pipes-bucket", "a/b")),
        (None, "s3://lake/zone", ("lake", "zone/_glue/pipes")),
        (None, "s3://lake", ("lake", "_glue/pipes")),
    ],
)
def test_pipes_location_is_its_own_uri_else_under_the_lake(pipes_uri, lake_uri, expected):
    assert AwsGlue(pipes_uri=pipes_uri, lake_uri=lake_uri, target_secret_id="s")._pipes_location() == expected


@pytest.mark.parametrize(
    "pipes_uri, lake_uri, message",
    [
        ("/tmp/pipes", "s3://lake", "must be s3://bucket[/prefix], not '/tmp/pipes'"),
        (None, "file:///tmp/lake", "needs CONSORCIO_PIPES_URI or an s3:// lake"),
    ],
)
def test_a_pipes_location_that_is_not_s3_is_refused(pipes_uri, lake_uri, message):
    with pytest.raises(dg.Failure, match=re.escape(message)):
        AwsGlue(pipes_uri=pipes_uri, lake_uri=lake_uri, target_secret_id="s")._pipes_location()


def _pipes_param(value: str) -> dict:
    from dagster_pipes import decode_param

    return decode_param(value)


def test_a_failed_glue_run_fails_the_step_with_the_jobs_message(aws_env, tmp_path):
    s3, _glue, url, _ = aws_env
    _upload_raw(s3, tmp_path, "Segmento", data.segmentos(row2={"Codigo": "CODIGO-LONGO"}))
    with dg.instance_for_test() as instance:
        result = _materialize(["Segmento"], instance, aws_env)
        logs = _logged(instance, result)
    assert not result.success
    message = result.failure_data_for_node("glue_transform_and_load").error.message
    assert "status FAILED" in message and "Segmento.Codigo: longer than varchar(10)" in message
    assert "SegmentoId=3" in message and "has no CloudWatch log group" in logs
    assert fetch(url, "SELECT to_regclass('consorcio.segmento')")[0][0] is None  # nothing swapped in
