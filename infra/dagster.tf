# Dagster itself on ECS Fargate: the image's repository, one cluster with three services (the code location's
# gRPC server, the webserver, the daemon), the internal ALB that authenticates every request before the
# webserver, the log groups, and the secret the containers' credentials come from. Each run is one more Fargate
# task of the code server's task definition, started by the daemon's EcsRunLauncher (deploy/dagster.yaml).
#
# The containers' environment is locals.dagster_environment and dagster_secret_keys, one map per service; a test
# compares them with consorcio_assets.settings.REGISTRY (required_in_aws), so they cannot drift.

locals {
  dagster_name        = "${local.name}-dagster"
  dagster_home        = "/opt/dagster/home"
  webserver_port      = 3000
  grpc_port           = 4000
  code_server_family  = "${local.dagster_name}-code-server"
  grpc_host           = "code-server.${aws_service_discovery_private_dns_namespace.dagster.name}"
  dagster_image       = "${aws_ecr_repository.dagster.repository_url}:${var.dagster_image_tag}"
  dagster_secret_arn  = aws_secretsmanager_secret.dagster_runtime.arn

  # Plain settings per container (names from consorcio_assets.settings.REGISTRY).
  dagster_environment = {
    code-server = {
      CONSORCIO_ENV                      = "aws"
      DAGSTER_HOME                       = local.dagster_home
      DAGSTER_RUN_TASK_DEFINITION        = local.code_server_family
      CONSORCIO_LAKE_URI                 = "s3://${aws_s3_bucket.lake.id}"
      CONSORCIO_PIPES_URI                = "s3://${aws_s3_bucket.pipes.id}"
      CONSORCIO_DMS_TASK_ARN             = aws_dms_replication_task.full_load.replication_task_arn
      CONSORCIO_GLUE_JOB_NAME            = aws_glue_job.consorcio.name
      CONSORCIO_TARGET_SECRET_ID         = aws_secretsmanager_secret.aurora_loader.arn
      CONSORCIO_GLUE_MAX_CONCURRENT_RUNS = tostring(var.glue_max_concurrent_runs)
    }
    webserver = {
      CONSORCIO_ENV               = "aws"
      DAGSTER_HOME                = local.dagster_home
      DAGSTER_RUN_TASK_DEFINITION = local.code_server_family
      DAGSTER_GRPC_HOST           = local.grpc_host
      DAGSTER_GRPC_PORT           = tostring(local.grpc_port)
    }
    daemon = {
      CONSORCIO_ENV               = "aws"
      DAGSTER_HOME                = local.dagster_home
      DAGSTER_RUN_TASK_DEFINITION = local.code_server_family
      DAGSTER_GRPC_HOST           = local.grpc_host
      DAGSTER_GRPC_PORT           = tostring(local.grpc_port)
    }
  }

  # Secret settings per container: keys of the dagster_runtime secret, injected by ARN (never in the definition).
  dagster_secret_keys = {
    code-server = ["DAGSTER_PG_URL", "CONSORCIO_SOURCE_URL", "CONSORCIO_TARGET_URL", "CONSORCIO_PII_HMAC_KEY"]
    webserver   = ["DAGSTER_PG_URL"]
    daemon      = ["DAGSTER_PG_URL"]
  }

  # What each service runs (the image's entrypoint checks the settings first) and with which role.
  dagster_services = {
    code-server = {
      command = [
        "dagster", "code-server", "start", "--host", "0.0.0.0", "--port", tostring(local.grpc_port),
        "--module-name", "consorcio_assets.definitions", "--location-name", "consorcio_migration",
      ]
      health    = ["CMD", "dagster", "api", "grpc-health-check", "--port", tostring(local.grpc_port)]
      port      = local.grpc_port
      cpu       = var.dagster_task_sizes["code-server"].cpu
      memory    = var.dagster_task_sizes["code-server"].memory
      task_role = aws_iam_role.dagster.arn
    }
    webserver = {
      command = [
        "dagster-webserver", "--host", "0.0.0.0", "--port", tostring(local.webserver_port),
        "--workspace", "/opt/dagster/deploy/workspace.yaml",
      ]
      health    = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${local.webserver_port}/server_info', timeout=5)"]
      port      = local.webserver_port
      cpu       = var.dagster_task_sizes["webserver"].cpu
      memory    = var.dagster_task_sizes["webserver"].memory
      task_role = aws_iam_role.dagster_launcher.arn
    }
    daemon = {
      command   = ["dagster-daemon", "run", "--workspace", "/opt/dagster/deploy/workspace.yaml"]
      health    = ["CMD", "dagster-daemon", "liveness-check"]
      port      = 0
      cpu       = var.dagster_task_sizes["daemon"].cpu
      memory    = var.dagster_task_sizes["daemon"].memory
      task_role = aws_iam_role.dagster_launcher.arn
    }
  }
}

# --- Image repository ---------------------------------------------------------------------------------------
resource "aws_ecr_repository" "dagster" {
  name                 = local.dagster_name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.data.arn
  }
}

resource "aws_ecr_lifecycle_policy" "dagster" {
  repository = aws_ecr_repository.dagster.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last images (rollback targets); older ones expire"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = var.dagster_images_kept }
      action       = { type = "expire" }
    }]
  })
}

# --- Logs ---------------------------------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "dagster" {
  for_each          = local.dagster_services
  name              = "/ecs/${local.dagster_name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}

# --- Credentials: one secret, its JSON keys injected by ARN -------------------------------------------------
resource "aws_secretsmanager_secret" "dagster_runtime" {
  #checkov:skip=CKV2_AWS_57:The operator puts the connection URLs and the HMAC key after the DBA creates the logins; rotating them is a put-secret-value plus a service redeploy (infra/README.md).
  name_prefix             = "${local.dagster_name}/runtime-"
  description             = "Dagster containers: DAGSTER_PG_URL, CONSORCIO_SOURCE_URL, CONSORCIO_TARGET_URL, CONSORCIO_PII_HMAC_KEY"
  kms_key_id              = aws_kms_key.data.arn
  recovery_window_in_days = 30
}

# --- Cluster, service discovery -----------------------------------------------------------------------------
resource "aws_ecs_cluster" "dagster" {
  name = local.dagster_name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_service_discovery_private_dns_namespace" "dagster" {
  name        = "${local.dagster_name}.internal"
  description = "Private DNS of the Dagster services (the code location's gRPC server)"
  vpc         = var.vpc_id
}

resource "aws_service_discovery_service" "code_server" {
  name = "code-server"

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.dagster.id
    routing_policy = "MULTIVALUE"
    dns_records {
      type = "A"
      ttl  = 10
    }
  }

  health_check_custom_config {
    failure_threshold = 1
  }
}

# --- Task definitions and services --------------------------------------------------------------------------
resource "aws_ecs_task_definition" "dagster" {
  for_each                 = local.dagster_services
  family                   = "${local.dagster_name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.dagster_execution.arn
  task_role_arn            = each.value.task_role

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # The root filesystem is read-only: Dagster's local artifacts and temporary files go to task-scoped volumes.
  volume {
    name = "tmp"
  }
  volume {
    name = "storage"
  }

  container_definitions = jsonencode([{
    name                   = each.key
    image                  = local.dagster_image
    essential              = true
    command                = each.value.command
    readonlyRootFilesystem = true
    privileged             = false
    user                   = "10001:10001"
    portMappings           = each.value.port > 0 ? [{ containerPort = each.value.port, protocol = "tcp" }] : []
    environment            = [for name, value in local.dagster_environment[each.key] : { name = name, value = value }]
    secrets = [
      for key in local.dagster_secret_keys[each.key] : { name = key, valueFrom = "${local.dagster_secret_arn}:${key}::" }
    ]
    mountPoints = [
      { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
      { sourceVolume = "storage", containerPath = "${local.dagster_home}/storage", readOnly = false },
    ]
    healthCheck = { command = each.value.health, interval = 30, timeout = 10, retries = 3, startPeriod = 120 }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.dagster[each.key].name
        awslogs-region        = local.region
        awslogs-stream-prefix = each.key
      }
    }
  }])
}

resource "aws_ecs_service" "dagster" {
  for_each               = local.dagster_services
  name                   = each.key
  cluster                = aws_ecs_cluster.dagster.id
  task_definition        = aws_ecs_task_definition.dagster[each.key].arn
  desired_count          = 1
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  propagate_tags         = "SERVICE"
  enable_execute_command = false
  # One daemon only (Dagster's daemon is a singleton): stop the old task before starting the new one.
  deployment_minimum_healthy_percent = each.key == "daemon" ? 0 : 100
  deployment_maximum_percent         = each.key == "daemon" ? 100 : 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.dagster.id]
    assign_public_ip = false
  }

  dynamic "service_registries" {
    for_each = each.key == "code-server" ? [aws_service_discovery_service.code_server.arn] : []
    content {
      registry_arn = service_registries.value
    }
  }

  dynamic "load_balancer" {
    for_each = each.key == "webserver" ? [aws_lb_target_group.webserver.arn] : []
    content {
      target_group_arn = load_balancer.value
      container_name   = "webserver"
      container_port   = local.webserver_port
    }
  }

  depends_on = [aws_lb_listener.https]
}

# --- The only way in: an internal ALB that authenticates every request (Cognito) before the webserver --------
resource "aws_lb" "dagster" {
  #checkov:skip=CKV2_AWS_28:Internal ALB reachable only from the corporate CIDRs in dagster_ui_cidr_blocks, and every request is authenticated by Cognito before it is forwarded; no internet-facing surface for a WAF to filter.
  #checkov:skip=CKV2_AWS_76:Same as CKV2_AWS_28: internal, authenticated ALB without a WAF; the webserver is Python (no Log4j).
  name                       = substr("${local.name}-dagster", 0, 32)
  internal                   = true
  load_balancer_type         = "application"
  subnets                    = var.private_subnet_ids
  security_groups            = [aws_security_group.dagster_alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = true

  access_logs {
    bucket  = aws_s3_bucket.access_logs.id
    prefix  = "alb"
    enabled = true
  }

  depends_on = [aws_s3_bucket_policy.access_logs]
}

resource "aws_lb_target_group" "webserver" {
  #checkov:skip=CKV_AWS_378:TLS ends at the ALB; the webserver listens on plain HTTP inside the private subnets, and its security group admits only the ALB.
  name_prefix = "dgweb-"
  port        = local.webserver_port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  health_check {
    path                = "/server_info"
    matcher             = "200"
    interval            = 30
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.dagster.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.dagster_certificate_arn

  # Authenticate first, then forward: no listener action reaches the webserver without a Cognito session.
  default_action {
    type  = "authenticate-cognito"
    order = 1
    authenticate_cognito {
      user_pool_arn              = var.dagster_cognito_user_pool_arn
      user_pool_client_id        = var.dagster_cognito_client_id
      user_pool_domain           = var.dagster_cognito_domain
      on_unauthenticated_request = "authenticate"
      session_timeout            = var.dagster_session_timeout_seconds
    }
  }

  default_action {
    type             = "forward"
    order            = 2
    target_group_arn = aws_lb_target_group.webserver.arn
  }
}

# --- Network: the ALB admits the corporate CIDRs; the tasks admit only the ALB and each other -----------------
resource "aws_security_group" "dagster_alb" {
  name_prefix = "${local.dagster_name}-alb-"
  description = "Internal ALB of the Dagster UI (HTTPS from the corporate network)"
  vpc_id      = var.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "dagster_alb_https" {
  for_each          = toset(var.dagster_ui_cidr_blocks)
  security_group_id = aws_security_group.dagster_alb.id
  description       = "HTTPS from the migration team's network"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "dagster_alb_to_webserver" {
  security_group_id            = aws_security_group.dagster_alb.id
  description                  = "The ALB forwards authenticated requests to the webserver"
  referenced_security_group_id = aws_security_group.dagster.id
  ip_protocol                  = "tcp"
  from_port                    = local.webserver_port
  to_port                      = local.webserver_port
}

resource "aws_vpc_security_group_egress_rule" "dagster_alb_to_cognito" {
  security_group_id = aws_security_group.dagster_alb.id
  description       = "The ALB exchanges the Cognito authorization code for tokens (HTTPS, through the VPC's NAT)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_security_group" "dagster" {
  name_prefix = "${local.dagster_name}-tasks-"
  description = "Dagster ECS tasks: code server, webserver, daemon and runs"
  vpc_id      = var.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "dagster_from_alb" {
  security_group_id            = aws_security_group.dagster.id
  description                  = "The webserver, from the ALB only"
  referenced_security_group_id = aws_security_group.dagster_alb.id
  ip_protocol                  = "tcp"
  from_port                    = local.webserver_port
  to_port                      = local.webserver_port
}

resource "aws_vpc_security_group_ingress_rule" "dagster_grpc" {
  security_group_id            = aws_security_group.dagster.id
  description                  = "The code server's gRPC API, from the webserver and the daemon"
  referenced_security_group_id = aws_security_group.dagster.id
  ip_protocol                  = "tcp"
  from_port                    = local.grpc_port
  to_port                      = local.grpc_port
}

resource "aws_vpc_security_group_egress_rule" "dagster_grpc" {
  security_group_id            = aws_security_group.dagster.id
  description                  = "Webserver and daemon call the code server's gRPC API"
  referenced_security_group_id = aws_security_group.dagster.id
  ip_protocol                  = "tcp"
  from_port                    = local.grpc_port
  to_port                      = local.grpc_port
}

resource "aws_vpc_security_group_egress_rule" "dagster_to_aurora" {
  security_group_id            = aws_security_group.dagster.id
  description                  = "Dagster storage and the integrity checks on Aurora"
  referenced_security_group_id = aws_security_group.aurora.id
  ip_protocol                  = "tcp"
  from_port                    = var.aurora_port
  to_port                      = var.aurora_port
}

resource "aws_vpc_security_group_ingress_rule" "aurora_from_dagster_tasks" {
  security_group_id            = aws_security_group.aurora.id
  description                  = "Dagster ECS tasks: run storage and the integrity checks"
  referenced_security_group_id = aws_security_group.dagster.id
  ip_protocol                  = "tcp"
  from_port                    = var.aurora_port
  to_port                      = var.aurora_port
}

resource "aws_vpc_security_group_egress_rule" "dagster_to_sqlserver" {
  for_each          = toset(var.sqlserver_cidr_blocks)
  security_group_id = aws_security_group.dagster.id
  description       = "Source observations and reconciliation checks read SQL Server"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.sqlserver_port
  to_port           = var.sqlserver_port
}

resource "aws_vpc_security_group_egress_rule" "dagster_to_s3" {
  security_group_id = aws_security_group.dagster.id
  description       = "Image layers (ECR) and the lake through the S3 gateway endpoint"
  prefix_list_id    = data.aws_ec2_managed_prefix_list.s3.id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "dagster_to_endpoints" {
  security_group_id            = aws_security_group.dagster.id
  description                  = "ECR, ECS, Secrets Manager, KMS, Logs, DMS and Glue APIs through interface endpoints"
  referenced_security_group_id = aws_security_group.endpoints.id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_dagster" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the Dagster ECS tasks"
  referenced_security_group_id = aws_security_group.dagster.id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}
