"""infra/dagster.tf: the ECS deployment sets every setting the code needs, is reachable only through an
authenticating ALB, and the run launcher's role can do exactly what the launcher calls."""

from __future__ import annotations

import json
import re

import pytest

from consorcio_assets.deployment.deploy_check import service_of
from consorcio_assets.settings import AWS, REGISTRY, SERVICES, SETTINGS_BY_NAME, required_in
from consorcio_assets_tests.infra.hcl import INFRA, load_config


@pytest.fixture(scope="module")
def config():
    return load_config()


def container_settings(config, service: str) -> tuple[set[str], set[str]]:
    """(plain, secret) variable names the service's container receives."""
    return set(config.locals["dagster_environment"][service]), set(config.locals["dagster_secret_keys"][service])


def test_every_container_gets_every_setting_it_requires(config):
    assert set(config.locals["dagster_services"]) == set(SERVICES)
    for service in SERVICES:
        plain, secret = container_settings(config, service)
        required = {s.name for s in required_in(service)}
        assert required - plain - secret == set(), f"{service} lacks {sorted(required - plain - secret)}"
        assert plain & secret == set()
        unknown = (plain | secret) - set(SETTINGS_BY_NAME)
        assert not unknown, f"{service} sets variables the registry does not declare: {unknown}"


def test_secrets_are_injected_by_arn_and_never_written_in_the_definition(config):
    for service in SERVICES:
        plain, secret = container_settings(config, service)
        assert {n for n in plain if SETTINGS_BY_NAME[n].secret} == set(), service
        assert {n for n in secret if not SETTINGS_BY_NAME[n].secret} == set(), service
    definition = str(config.resource("aws_ecs_task_definition", "dagster")["container_definitions"])
    assert 'valueFrom = "${local.dagster_secret_arn}:${key}::"' in definition
    assert config.locals["dagster_secret_arn"] == "${aws_secretsmanager_secret.dagster_runtime.arn}"


def test_every_aws_setting_is_set_or_documented_as_optional(config):
    """One list: a setting read on AWS is set in a container, or infra/README.md says it may stay unset."""
    readme = (INFRA / "README.md").read_text()
    set_anywhere = set().union(*(a | b for a, b in (container_settings(config, s) for s in SERVICES)))
    optional = [s.name for s in REGISTRY if not s.internal and set(AWS) <= set(s.modes) and s.name not in set_anywhere]
    assert optional, "expected optional aws settings (Glue sizing, DMS endpoint)"
    undocumented = [n for n in optional if not re.search(rf"`{n}`[^\n]*\| optional", readme)]
    assert not undocumented, f"document these as optional in infra/README.md: {undocumented}"


def test_fixed_values_agree_with_the_deployment(config):
    for service in SERVICES:
        plain = config.locals["dagster_environment"][service]
        assert plain["CONSORCIO_ENV"] == "aws"
        assert plain["DAGSTER_HOME"] == "${local.dagster_home}"
        assert plain["DAGSTER_RUN_TASK_DEFINITION"] == "${local.code_server_family}"
    assert config.locals["code_server_family"] == "${local.dagster_name}-code-server"
    assert config.resource("aws_ecs_task_definition", "dagster")["family"] == "${local.dagster_name}-${each.key}"
    dockerfile = (INFRA.parent / "Dockerfile").read_text()
    assert f"DAGSTER_HOME={config.locals['dagster_home']}" in dockerfile


def test_each_service_runs_the_command_of_its_container(config):
    for service, spec in config.locals["dagster_services"].items():
        assert service_of(spec["command"]) == service
    grpc = config.locals["dagster_services"]["code-server"]
    assert "consorcio_assets.definitions" in grpc["command"] and "consorcio_migration" in grpc["command"]
    assert config.locals["dagster_services"]["code-server"]["task_role"] == "${aws_iam_role.dagster.arn}"
    for service in ("webserver", "daemon"):
        assert config.locals["dagster_services"][service]["task_role"] == "${aws_iam_role.dagster_launcher.arn}"


def test_tasks_are_private_fargate_and_read_only(config):
    definition = config.resource("aws_ecs_task_definition", "dagster")
    assert definition["requires_compatibilities"] == ["FARGATE"] and definition["network_mode"] == "awsvpc"
    assert definition["execution_role_arn"] == "${aws_iam_role.dagster_execution.arn}"
    assert "readonlyRootFilesystem = true" in definition["container_definitions"]
    # the container is named after its service: the run launcher overrides container `code-server`
    assert re.search(r"\bname\s*=\s*each\.key\b", definition["container_definitions"])
    mounted = set(re.findall(r'containerPath = "([^"]+)"', definition["container_definitions"]))
    assert mounted == {"/tmp", "${local.dagster_home}/storage"}
    volumes = re.search(r"^VOLUME (\[.*\])$", (INFRA.parent / "Dockerfile").read_text(), re.M)
    assert volumes and set(json.loads(volumes[1])) == {"/tmp", f"{config.locals['dagster_home']}/storage"}, (
        "the image declares the task's writable mounts as VOLUMEs (ECS copies their ownership)"
    )
    service = config.resource("aws_ecs_service", "dagster")
    network = service["network_configuration"][0]
    assert network["assign_public_ip"] is False and network["subnets"] == "${var.private_subnet_ids}"
    assert "aws_service_discovery_service.code_server.arn" in str(service["dynamic"])
    assert config.locals["grpc_host"].startswith("code-server.${aws_service_discovery_private_dns_namespace")


def test_the_webserver_is_reachable_only_through_authentication(config):
    alb = config.resource("aws_lb", "dagster")
    assert alb["internal"] is True and alb["drop_invalid_header_fields"] is True
    listeners = {name: body for (rtype, name), body in config.resources.items() if rtype == "aws_lb_listener"}
    assert set(listeners) == {"https"}, "one HTTPS listener only (no plain HTTP way in)"
    https = listeners["https"]
    assert https["protocol"] == "HTTPS" and https["ssl_policy"].startswith("ELBSecurityPolicy-TLS13")
    actions = sorted(https["default_action"], key=lambda a: a["order"])
    assert [a["type"] for a in actions] == ["authenticate-cognito", "forward"]
    assert actions[0]["authenticate_cognito"][0]["on_unauthenticated_request"] == "authenticate"
    assert not any(rtype == "aws_lb_listener_rule" for rtype, _ in config.resources), "rules could bypass the auth"
    webserver_in = [
        b
        for (rtype, _), b in config.resources.items()
        if rtype == "aws_vpc_security_group_ingress_rule"
        and b["security_group_id"] == "${aws_security_group.dagster.id}"
        and b["from_port"] == "${local.webserver_port}"
    ]
    assert [b["referenced_security_group_id"] for b in webserver_in] == ["${aws_security_group.dagster_alb.id}"]


def test_repository_and_logs_are_encrypted_and_immutable(config):
    ecr = config.resource("aws_ecr_repository", "dagster")
    assert ecr["image_tag_mutability"] == "IMMUTABLE"
    assert ecr["image_scanning_configuration"][0]["scan_on_push"] is True
    assert ecr["encryption_configuration"][0] == {"encryption_type": "KMS", "kms_key": "${aws_kms_key.data.arn}"}
    logs = config.resource("aws_cloudwatch_log_group", "dagster")
    assert logs["kms_key_id"] == "${aws_kms_key.data.arn}" and logs["for_each"] == "${local.dagster_services}"


def _statements(config, document: str) -> dict[str, dict]:
    return {s["sid"]: s for s in config.data[("aws_iam_policy_document", document)]["statement"]}


def test_the_launcher_role_may_run_only_the_code_server_and_pass_only_its_roles(config):
    statements = _statements(config, "dagster_launcher")
    actions = sorted(a for s in statements.values() for a in s["actions"])
    assert actions == sorted(
        [
            "ecs:RunTask",
            "ecs:DescribeTasks",
            "ecs:StopTask",
            "ecs:DescribeTaskDefinition",
            "ec2:DescribeNetworkInterfaces",
            "iam:PassRole",
        ]
    )
    run = statements["RunTheCodeServerTaskDefinition"]
    assert run["resources"] == [
        "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${local.code_server_family}:*"
    ]
    assert run["condition"][0]["values"] == ["${aws_ecs_cluster.dagster.arn}"]
    passed = statements["PassOnlyTheRunRoles"]
    assert passed["resources"] == ["${aws_iam_role.dagster.arn}", "${aws_iam_role.dagster_execution.arn}"]
    assert passed["condition"][0]["values"] == ["ecs-tasks.amazonaws.com"]
    assert "aws_ecs_cluster.dagster.name" in statements["FollowAndStopTasksInItsCluster"]["resources"][0]
    execution = _statements(config, "dagster_execution")
    assert execution["InjectItsSecret"]["resources"] == ["${aws_secretsmanager_secret.dagster_runtime.arn}"]
