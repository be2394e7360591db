"""Static validation of `infra/` (no Terraform binary here): it parses, every reference resolves, everything is
documented, and the DMS endpoint and task are exactly what the code uses."""

from __future__ import annotations

import json
import re

import pytest

from consorcio_assets.deployment.infra_sync import TABLE_MAPPINGS_FILE, render_table_mappings
from consorcio_assets.dms import settings_files as dms_settings
from consorcio_assets_tests.infra.hcl import (
    INFRA,
    REPO,
    evaluate_path,
    file_argument,
    load_config,
    references,
    resolves,
)


@pytest.fixture(scope="module")
def config():
    return load_config()


def test_every_reference_resolves_to_a_declared_block(config):
    refs = list(references(config))
    assert len(refs) > 100, "the reference scanner found suspiciously few references"
    unresolved = sorted({str(r) for r in refs if not resolves(config, r)})
    assert not unresolved, "references to undeclared blocks:\n" + "\n".join(unresolved)


def test_the_reference_check_catches_a_dangling_reference(tmp_path):
    (tmp_path / "main.tf").write_text(
        'variable "used" {\n  description = "x"\n}\n'
        'resource "aws_s3_bucket" "b" {\n  bucket = "${var.used}-${var.missing}"\n'
        "  tags   = { k = local.nope, r = aws_kms_key.absent.arn, d = data.aws_region.gone.name }\n}\n"
    )
    broken = load_config(tmp_path)
    unresolved = sorted(str(r) for r in references(broken) if not resolves(broken, r))
    assert unresolved == [
        "aws_kms_key.absent (in main.tf)",
        "data.aws_region.gone (in main.tf)",
        "local.nope (in main.tf)",
        "var.missing (in main.tf)",
    ]


def test_variables_and_outputs_are_documented_and_used(config):
    assert {n for n, v in config.variables.items() if not str(v.get("description", "")).strip()} == set()
    assert {n for n, o in config.outputs.items() if not str(o.get("description", "")).strip()} == set()
    used = {r.target[0] for r in references(config) if r.kind == "var"}
    assert set(config.variables) - used == set(), "declared but unused variables"
    used_locals = {r.target[0] for r in references(config) if r.kind == "local"}
    assert set(config.locals) - used_locals == set(), "declared but unused locals"


def test_every_checkov_skip_gives_a_reason():
    skips = []
    for path in sorted(INFRA.glob("*.tf")):
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                m = re.search(r"#checkov:skip=(CKV2?_AWS_\d+):(.*)$", line.strip())
                assert m and len(m.group(2).strip()) >= 20, f"{path.name}: skip without a reason: {line.strip()}"
                skips.append(m.group(1))
    assert skips, "expected the justified skips documented in infra/README.md"


def _camel_to_attribute(key: str) -> str:
    """S3Settings key → aws_dms_s3_endpoint argument (the provider spells Rfc4180 as rfc_4180)."""
    return {"Rfc4180": "rfc_4180"}.get(key, re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower())


def test_s3_target_endpoint_settings_equal_the_json_file(config):
    local = config.locals["s3_endpoint_settings"]
    assert str(local).startswith("${jsondecode(file("), local
    assert evaluate_path(config, file_argument(local)) == dms_settings.ENDPOINT_FILE.resolve()

    endpoint = config.resource("aws_dms_s3_endpoint", "raw")
    mapped = {}
    for attribute, value in endpoint.items():
        m = re.fullmatch(r"\$\{local\.s3_endpoint_settings\.(\w+)\}", str(value))
        if m:
            mapped[m.group(1)] = attribute
    settings = dms_settings.endpoint_settings().raw
    assert set(mapped) == set(settings), (
        f"S3Settings in the JSON file but not on the endpoint: {sorted(set(settings) - set(mapped))}; "
        f"on the endpoint but not in the file: {sorted(set(mapped) - set(settings))}"
    )
    assert {k: a for k, a in mapped.items() if a != _camel_to_attribute(k)} == {}
    assert endpoint["endpoint_type"] == "target"
    assert endpoint["encryption_mode"] == "SSE_KMS"


def test_raw_prefix_everywhere_is_dms_bucket_folder(config):
    assert config.locals["raw_prefix"] == "${local.s3_endpoint_settings.BucketFolder}"
    raw_rule = next(
        r
        for r in config.resource("aws_s3_bucket_lifecycle_configuration", "lake")["rule"]
        if r["id"] == "expire-raw-zone-pii"
    )
    assert raw_rule["filter"][0]["prefix"] == "${local.raw_prefix}/"
    assert raw_rule["expiration"][0]["days"] == "${var.raw_retention_days}"


def test_committed_table_mappings_equal_what_the_code_generates():
    assert TABLE_MAPPINGS_FILE.exists(), "run `python -m consorcio_assets.deployment.infra_sync`"
    assert TABLE_MAPPINGS_FILE.read_text() == render_table_mappings(), (
        "infra/generated/table_mappings.json is out of date: run `python -m consorcio_assets.deployment.infra_sync`"
    )
    from consorcio_assets.catalog import catalog
    from consorcio_assets.dms.mappings import selected_tables

    selected = selected_tables(json.loads(TABLE_MAPPINGS_FILE.read_text()))
    assert {s.table.name for s in selected} == {t.name for t in catalog()}


def test_full_load_task_uses_the_generated_mappings_and_the_task_settings_file(config):
    task = config.resource("aws_dms_replication_task", "full_load")
    assert task["migration_type"] == "full-load"
    assert task["start_replication_task"] is False
    assert task["table_mappings"] == "${jsonencode(local.table_mappings)}"
    assert task["replication_task_settings"] == "${jsonencode(local.task_settings)}"
    assert evaluate_path(config, file_argument(config.locals["table_mappings"])) == TABLE_MAPPINGS_FILE.resolve()
    assert evaluate_path(config, file_argument(config.locals["task_settings"])) == dms_settings.TASK_FILE.resolve()


def test_glue_job_uploads_the_script_from_glue_folder(config):
    script = config.resource("aws_s3_object", "glue_script")
    source = evaluate_path(config, str(config.locals["glue_script_source"]))
    assert source == (REPO / "glue" / "consorcio_glue_job.py").resolve()
    assert source.is_file(), "terraform's filemd5() needs the Glue script"
    assert script["source"] == "${local.glue_script_source}"
    job = config.resource("aws_glue_job", "consorcio")
    assert job["glue_version"] == "5.0"
    assert "aws_s3_object.glue_script.key" in job["command"][0]["script_location"]
    assert job["connections"] == ["${aws_glue_connection.aurora.name}"]


def test_glue_job_is_a_spark_job_shipping_the_wheel_make_builds(config):
    """glueetl on Glue 5.0 with the job's code as the wheel `make glue-wheel` writes, on --extra-py-files."""
    from consorcio_assets.deployment import glue_wheel as wheel

    built = wheel.build(REPO / "dist" / "glue")  # what `make glue-wheel` (and `make test`) leave there
    job = config.resource("aws_glue_job", "consorcio")
    assert job["command"][0]["name"] == "glueetl" and job["glue_version"] == "5.0"
    version = config.variables["glue_wheel_version"]["default"]
    assert version == wheel.version()
    name = str(config.locals["glue_wheel_name"]).replace("${var.glue_wheel_version}", version)
    assert name == wheel.wheel_name() == built.name
    source = str(config.locals["glue_wheel_source"]).replace("${local.glue_wheel_name}", name)
    assert evaluate_path(config, source) == built.resolve()
    upload = config.resource("aws_s3_object", "glue_wheel")
    assert upload["source"] == "${local.glue_wheel_source}"
    assert upload["source_hash"] == "${filemd5(local.glue_wheel_source)}"
    assert "aws_s3_object.glue_wheel.key" in job["default_arguments"]["--extra-py-files"]
    modules = config.variables["glue_additional_python_modules"]["default"]
    assert {m.split("==")[0] for m in modules} >= {"pyarrow", "numpy", "psycopg[binary]", "dagster-pipes"}
    assert all("==" in m for m in modules), "pin what Glue installs: the versions the job is tested with"


def test_aurora_is_encrypted_iam_authenticated_and_protected(config):
    cluster = config.resource("aws_rds_cluster", "aurora")
    assert cluster["engine"] == "aurora-postgresql"
    for flag in (
        "storage_encrypted",
        "iam_database_authentication_enabled",
        "deletion_protection",
        "manage_master_user_password",
        "copy_tags_to_snapshot",
    ):
        assert cluster[flag] is True, flag
    assert cluster["kms_key_id"] == "${aws_kms_key.data.arn}"
    assert cluster["enabled_cloudwatch_logs_exports"] == ["postgresql"]
    assert "master_password" not in cluster


def _statements(config, document: str) -> dict[str, dict]:
    return {s["sid"]: s for s in config.data[("aws_iam_policy_document", document)]["statement"]}


def test_dms_may_write_only_the_raw_prefix(config):
    statements = _statements(config, "dms_s3")
    writes = [s for s in statements.values() if any(a in s["actions"] for a in ("s3:PutObject", "s3:DeleteObject"))]
    assert [s["resources"] for s in writes] == [["${local.raw_objects}"]]
    assert config.locals["raw_objects"] == "${aws_s3_bucket.lake.arn}/${local.raw_prefix}/*"


def test_dagster_starts_and_describes_only_its_task_and_job(config):
    statements = _statements(config, "dagster")
    dms = [s for s in statements.values() if any(a.startswith("dms:") for a in s["actions"])]
    for s in dms:
        if s["resources"] == ["*"]:
            assert s["actions"] == ["dms:DescribeReplicationTasks"]
        else:
            assert s["resources"] == ["${aws_dms_replication_task.full_load.replication_task_arn}"]
    glue = [s for s in statements.values() if any(a.startswith("glue:") for a in s["actions"])]
    assert [s["resources"] for s in glue] == [["${local.glue_job_arn}"]]
    s3_writes = {r for s in statements.values() for r in s["resources"] if "s3:PutObject" in s["actions"]}
    assert s3_writes == {"${local.pipes_objects}", "${local.archive_objects}"}


def test_bucket_policy_denies_plain_http(config):
    statement = _statements(config, "lake")["DenyInsecureTransport"]
    assert statement["effect"] == "Deny"
    assert statement["condition"][0] == {"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}


def test_lake_prefixes_match_the_code(config):
    from consorcio_assets.dms.layout import WORK_ROOT

    assert config.locals["archive_prefix"] == f"{WORK_ROOT}/archive"
    script = (REPO / "consorcio_glue" / "transformed.py").read_text()
    assert f'lake.path("{config.locals["transformed_prefix"]}", ' in script


def test_glue_default_arguments_are_options_of_the_script(config):
    """Glue passes every job argument to the script; its own (--job-language, --enable-*...) are ignored there."""
    script = (REPO / "consorcio_glue" / "args.py").read_text()
    options = set(re.findall(r'add_argument\("(--[\w-]+)"', script))
    glue_own = {
        "--job-language",
        "--additional-python-modules",
        "--extra-py-files",
        "--enable-continuous-cloudwatch-log",
        "--enable-metrics",
    }
    arguments = config.resource("aws_glue_job", "consorcio")["default_arguments"]
    assert set(arguments) - glue_own - options == set()
    assert arguments["--target-secret-id"] == "${aws_secretsmanager_secret.aurora_loader.arn}"
    assert arguments["--raw-folder"] == "${local.raw_prefix}"


def test_committed_aurora_roles_equal_what_the_code_generates():
    from consorcio_assets.deployment.infra_sync import ROLES_FILE
    from consorcio_assets.target.roles import render_roles_sql

    assert ROLES_FILE.read_text() == render_roles_sql(), "run python -m consorcio_assets.deployment.infra_sync"


def test_the_application_login_has_its_own_encrypted_secret(config):
    secret = config.resource("aws_secretsmanager_secret", "aurora_application")
    assert secret["kms_key_id"] == "${aws_kms_key.data.arn}"
