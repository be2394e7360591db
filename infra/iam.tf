# IAM roles, least privilege: each role may touch only its own prefixes of the lake, its own DMS task, its own
# Glue job and its own database login secret. Prefixes come from locals.tf (the raw prefix is DMS's BucketFolder).

locals {
  raw_objects         = "${aws_s3_bucket.lake.arn}/${local.raw_prefix}/*"
  transformed_objects = "${aws_s3_bucket.lake.arn}/${local.transformed_prefix}/*"
  archive_objects     = "${aws_s3_bucket.lake.arn}/${local.archive_prefix}/*"
  pipes_objects       = "${aws_s3_bucket.pipes.arn}/*"
  glue_script_arn     = "${aws_s3_bucket.lake.arn}/${local.glue_script_key}"
  glue_wheel_arn      = "${aws_s3_bucket.lake.arn}/${local.glue_wheel_key}"
  glue_job_arn        = "arn:${local.partition}:glue:${local.region}:${local.account_id}:job/${aws_glue_job.consorcio.name}"
  sqlserver_key_arn   = coalesce(var.sqlserver_secret_kms_key_arn, aws_kms_key.data.arn)
}

# ---------------------------------------------------------------------------------------------------------
# DMS service roles. DMS looks these two up by their fixed names; an account has them once, so a second
# deployment in the same account sets create_dms_service_roles = false.
data "aws_iam_policy_document" "dms_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["dms.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "dms_vpc" {
  count              = var.create_dms_service_roles ? 1 : 0
  name               = "dms-vpc-role"
  assume_role_policy = data.aws_iam_policy_document.dms_assume.json
}

resource "aws_iam_role_policy_attachment" "dms_vpc" {
  count      = var.create_dms_service_roles ? 1 : 0
  role       = aws_iam_role.dms_vpc[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonDMSVPCManagementRole"
}

resource "aws_iam_role" "dms_cloudwatch" {
  count              = var.create_dms_service_roles ? 1 : 0
  name               = "dms-cloudwatch-logs-role"
  assume_role_policy = data.aws_iam_policy_document.dms_assume.json
}

resource "aws_iam_role_policy_attachment" "dms_cloudwatch" {
  count      = var.create_dms_service_roles ? 1 : 0
  role       = aws_iam_role.dms_cloudwatch[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonDMSCloudWatchLogsRole"
}

# ---------------------------------------------------------------------------------------------------------
# DMS → S3 target: writes only under the raw prefix.
data "aws_iam_policy_document" "dms_s3_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["dms.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "dms_s3" {
  name_prefix        = "${local.name}-dms-s3-"
  description        = "DMS target endpoint: write the raw zone of the lake"
  assume_role_policy = data.aws_iam_policy_document.dms_s3_assume.json
}

data "aws_iam_policy_document" "dms_s3" {
  statement {
    sid       = "WriteRawZoneOnly"
    actions   = ["s3:PutObject", "s3:DeleteObject", "s3:PutObjectTagging"]
    resources = [local.raw_objects]
  }
  statement {
    sid       = "ListRawZoneOnly"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.lake.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.raw_prefix}/*", "${local.raw_prefix}/"]
    }
  }
  statement {
    sid       = "EncryptWithTheProjectKeyThroughS3"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.data.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "dms_s3" {
  name   = "raw-zone-writer"
  role   = aws_iam_role.dms_s3.id
  policy = data.aws_iam_policy_document.dms_s3.json
}

# ---------------------------------------------------------------------------------------------------------
# DMS → Secrets Manager: reads only the SQL Server source secret. DMS assumes it with its regional principal.
data "aws_iam_policy_document" "dms_secrets_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["dms.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "dms_secrets" {
  name_prefix        = "${local.name}-dms-secret-"
  description        = "DMS source endpoint: read the SQL Server credentials"
  assume_role_policy = data.aws_iam_policy_document.dms_secrets_assume.json
}

data "aws_iam_policy_document" "dms_secrets" {
  statement {
    sid       = "ReadTheSourceSecretOnly"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [var.sqlserver_secret_arn]
  }
  statement {
    sid       = "DecryptTheSourceSecret"
    actions   = ["kms:Decrypt"]
    resources = [local.sqlserver_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "dms_secrets" {
  name   = "sqlserver-secret-reader"
  role   = aws_iam_role.dms_secrets.id
  policy = data.aws_iam_policy_document.dms_secrets.json
}

# ---------------------------------------------------------------------------------------------------------
# Glue job: reads raw, writes transformed, reads its script, exchanges Pipes context/messages with Dagster,
# reads its own Aurora login secret, and runs in the VPC through its connection.
data "aws_iam_policy_document" "glue_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["glue.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "glue" {
  name_prefix        = "${local.name}-glue-"
  description        = "Glue job: raw zone to transformed zone to Aurora"
  assume_role_policy = data.aws_iam_policy_document.glue_assume.json
}

data "aws_iam_policy_document" "glue" {
  statement {
    sid       = "ReadRawZone"
    actions   = ["s3:GetObject"]
    resources = [local.raw_objects]
  }
  statement {
    sid       = "WriteTransformedZone"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [local.transformed_objects]
  }
  statement {
    sid       = "ReadItsScriptAndWheel"
    actions   = ["s3:GetObject"]
    resources = [local.glue_script_arn, local.glue_wheel_arn]
  }
  statement {
    sid       = "PipesContextAndMessages"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = [local.pipes_objects]
  }
  statement {
    sid       = "ListThePipesBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.pipes.arn]
  }
  statement {
    sid       = "ListItsPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.lake.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values = [
        "${local.raw_prefix}/*", "${local.transformed_prefix}/*",
        "${local.raw_prefix}/", "${local.transformed_prefix}/",
      ]
    }
  }
  statement {
    sid       = "UseTheProjectKeyThroughS3AndLogs"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"]
    resources = [aws_kms_key.data.arn]
  }
  statement {
    sid       = "ReadItsAuroraLogin"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.aurora_loader.arn]
  }
  statement {
    sid       = "ReadItsConnection"
    actions   = ["glue:GetConnection"]
    resources = [
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog",
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:connection/${aws_glue_connection.aurora.name}",
    ]
  }
  statement {
    sid       = "WriteItsLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey", "logs:CreateLogGroup"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws-glue/*"]
  }
  statement {
    sid = "NetworkInterfacesInItsSubnets"
    actions = [
      "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:CreateTags", "ec2:DeleteTags",
    ]
    resources = concat(
      [for s in var.private_subnet_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${s}"],
      [
        aws_security_group.glue.arn,
        "arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*",
      ],
    )
  }
  statement {
    sid = "DescribeTheNetwork"
    actions = [
      "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
      "ec2:DescribeVpcEndpoints", "ec2:DescribeRouteTables",
    ]
    resources = ["*"] # these EC2 Describe* actions support no resource-level permissions
  }
  statement {
    sid       = "DescribeItsVpc"
    actions   = ["ec2:DescribeVpcAttribute"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:vpc/${var.vpc_id}"]
  }
}

resource "aws_iam_role_policy" "glue" {
  name   = "consorcio-glue-job"
  role   = aws_iam_role.glue.id
  policy = data.aws_iam_policy_document.glue.json
}

# ---------------------------------------------------------------------------------------------------------
# Dagster (ECS task role): starts and follows only its DMS task and its Glue job, reads and writes only its
# Pipes bucket; reads (never writes) the raw and transformed zones for the sensors and the integrity checks,
# moves a table's previous LOAD files to the archive prefix before a reload (DmsResource), and reads its own
# read-only Aurora login. It may not modify the DMS endpoint: Terraform applies the S3Settings from the same
# JSON file, so the deployment leaves CONSORCIO_DMS_TARGET_ENDPOINT_ARN unset.
data "aws_iam_policy_document" "dagster_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "dagster" {
  name_prefix        = "${local.name}-dagster-"
  description        = "Dagster ECS task: orchestrates the DMS task and the Glue job, runs the checks"
  assume_role_policy = data.aws_iam_policy_document.dagster_assume.json
}

data "aws_iam_policy_document" "dagster" {
  statement {
    sid = "StartAndFollowItsDmsTask"
    # ModifyReplicationTask: a run of a subset of tables narrows the task's table mappings to that subset.
    actions   = ["dms:StartReplicationTask", "dms:ModifyReplicationTask", "dms:DescribeTableStatistics"]
    resources = [aws_dms_replication_task.full_load.replication_task_arn]
  }
  statement {
    sid       = "DescribeDmsTasks"
    actions   = ["dms:DescribeReplicationTasks"]
    resources = ["*"] # a List-level action without resource-level permissions; it returns metadata only
  }
  statement {
    sid = "StartFollowAndStopItsGlueJob"
    # BatchStopJobRun: a Dagster run terminated from the UI stops the Glue run it started.
    actions   = ["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"]
    resources = [local.glue_job_arn]
  }
  statement {
    sid       = "PipesContextAndMessages"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [local.pipes_objects]
  }
  statement {
    sid       = "ListThePipesBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.pipes.arn]
  }
  statement {
    sid       = "ReadZonesForSensorsAndChecks"
    actions   = ["s3:GetObject"]
    resources = [local.raw_objects, local.transformed_objects]
  }
  statement {
    sid       = "ArchivePreviousRawLoad"
    actions   = ["s3:DeleteObject"]
    resources = [local.raw_objects]
  }
  statement {
    sid       = "WriteArchive"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = [local.archive_objects]
  }
  statement {
    sid       = "ListItsPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.lake.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values = [
        "${local.raw_prefix}/*", "${local.transformed_prefix}/*", "${local.archive_prefix}/*",
        "${local.raw_prefix}/", "${local.transformed_prefix}/", "${local.archive_prefix}/",
      ]
    }
  }
  statement {
    sid       = "UseTheProjectKeyThroughS3AndSecretsManager"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.data.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com", "secretsmanager.${local.region}.amazonaws.com"]
    }
  }
  statement {
    sid       = "ReadItsAuroraLogin"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.aurora_checker.arn]
  }
  statement {
    sid       = "ReadTheSourceSecretForObservations"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.sqlserver_secret_arn]
  }
  statement {
    sid       = "DecryptTheSourceSecret"
    actions   = ["kms:Decrypt"]
    resources = [local.sqlserver_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "dagster" {
  name   = "consorcio-orchestrator"
  role   = aws_iam_role.dagster.id
  policy = data.aws_iam_policy_document.dagster.json
}

# ---------------------------------------------------------------------------------------------------------
# RDS enhanced monitoring publishes OS metrics of the Aurora instances.
data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name_prefix        = "${local.name}-rds-mon-"
  description        = "RDS enhanced monitoring of the Aurora instances"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

# ---------------------------------------------------------------------------------------------------------
# ECS task execution role of the three Dagster services (and every run): pull the image, write the log groups,
# read the one secret whose keys the task definitions inject.
resource "aws_iam_role" "dagster_execution" {
  name_prefix        = "${local.name}-dgexec-"
  description        = "ECS task execution: pull the Dagster image, write its logs, inject its secret"
  assume_role_policy = data.aws_iam_policy_document.dagster_assume.json
}

data "aws_iam_policy_document" "dagster_execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # an account-level action without resource-level permissions
  }
  statement {
    sid       = "PullTheDagsterImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [aws_ecr_repository.dagster.arn]
  }
  statement {
    sid       = "WriteItsLogGroups"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for g in aws_cloudwatch_log_group.dagster : "${g.arn}:*"]
  }
  statement {
    sid       = "InjectItsSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.dagster_runtime.arn]
  }
  statement {
    sid       = "DecryptImageLayersAndTheSecret"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.data.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com", "ecr.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "dagster_execution" {
  name   = "dagster-task-execution"
  role   = aws_iam_role.dagster_execution.id
  policy = data.aws_iam_policy_document.dagster_execution.json
}

# ---------------------------------------------------------------------------------------------------------
# Webserver and daemon (task role): they touch no data; they launch, follow and stop runs through the
# EcsRunLauncher, one Fargate task of the code server's task definition per run. The code server and the runs
# keep role `dagster` above. Every action below is one the launcher calls (dagster_aws/ecs/launcher.py, tasks.py).
resource "aws_iam_role" "dagster_launcher" {
  name_prefix        = "${local.name}-dglaunch-"
  description        = "Dagster webserver and daemon: launch each run as an ECS task"
  assume_role_policy = data.aws_iam_policy_document.dagster_assume.json
}

data "aws_iam_policy_document" "dagster_launcher" {
  statement {
    sid       = "RunTheCodeServerTaskDefinition"
    actions   = ["ecs:RunTask"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${local.code_server_family}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.dagster.arn]
    }
  }
  statement {
    # DescribeTasks: run monitoring and the launcher's own task (cluster, subnets); StopTask: terminate a run.
    sid       = "FollowAndStopTasksInItsCluster"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${aws_ecs_cluster.dagster.name}/*"]
  }
  statement {
    # The launcher validates its task definition at start; the launching task's security groups come from its ENI.
    sid       = "DescribeTaskDefinitionAndNetworkInterfaces"
    actions   = ["ecs:DescribeTaskDefinition", "ec2:DescribeNetworkInterfaces"]
    resources = ["*"] # neither action supports resource-level permissions
  }
  statement {
    sid       = "PassOnlyTheRunRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.dagster.arn, aws_iam_role.dagster_execution.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "dagster_launcher" {
  name   = "dagster-run-launcher"
  role   = aws_iam_role.dagster_launcher.id
  policy = data.aws_iam_policy_document.dagster_launcher.json
}
