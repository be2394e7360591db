# What a deployment of Dagster needs (the CONSORCIO_* environment) and what operators look up.

output "lake_bucket" {
  description = "Name of the lake bucket (raw, transformed, _dms/archive and scripts prefixes)."
  value       = aws_s3_bucket.lake.id
}

output "lake_uri" {
  description = "Value for CONSORCIO_LAKE_URI."
  value       = "s3://${aws_s3_bucket.lake.id}"
}

output "raw_prefix" {
  description = "Prefix DMS writes to (BucketFolder of consorcio_assets/dms/s3_endpoint_settings.json)."
  value       = local.raw_prefix
}

output "pipes_bucket" {
  description = "Bucket for the Dagster Pipes context and messages exchanged with the Glue job."
  value       = aws_s3_bucket.pipes.id
}

output "pipes_uri" {
  description = "Value for CONSORCIO_PIPES_URI: where Dagster and the Glue job exchange the Pipes context and messages."
  value       = "s3://${aws_s3_bucket.pipes.id}/dagster"
}

output "access_log_bucket" {
  description = "Bucket receiving the lake's S3 server access logs."
  value       = aws_s3_bucket.access_logs.id
}

output "kms_key_arn" {
  description = "ARN of the customer-managed key encrypting the lake, DMS, Glue logs and Aurora."
  value       = aws_kms_key.data.arn
}

output "dms_replication_task_arn" {
  description = "Value for CONSORCIO_DMS_TASK_ARN: the full-load task Dagster starts and follows."
  value       = aws_dms_replication_task.full_load.replication_task_arn
}

output "dms_replication_instance_arn" {
  description = "ARN of the DMS replication instance."
  value       = aws_dms_replication_instance.this.replication_instance_arn
}

output "dms_source_endpoint_arn" {
  description = "ARN of the SQL Server source endpoint."
  value       = aws_dms_endpoint.sqlserver.endpoint_arn
}

output "dms_target_endpoint_arn" {
  description = "ARN of the S3 target endpoint."
  value       = aws_dms_s3_endpoint.raw.endpoint_arn
}

output "glue_job_name" {
  description = "Name of the Glue job Dagster runs through PipesGlueClient, one run per table."
  value       = aws_glue_job.consorcio.name
}

output "glue_script_uri" {
  description = "S3 URI of the uploaded Glue script."
  value       = "s3://${aws_s3_bucket.lake.id}/${aws_s3_object.glue_script.key}"
}

output "aurora_endpoint" {
  description = "Writer endpoint of the Aurora cluster (host of CONSORCIO_TARGET_URL)."
  value       = aws_rds_cluster.aurora.endpoint
}

output "aurora_reader_endpoint" {
  description = "Reader endpoint of the Aurora cluster (checks may run against it)."
  value       = aws_rds_cluster.aurora.reader_endpoint
}

output "aurora_port" {
  description = "Port of the Aurora cluster."
  value       = aws_rds_cluster.aurora.port
}

output "aurora_database" {
  description = "Database holding schema consorcio."
  value       = aws_rds_cluster.aurora.database_name
}

output "aurora_master_secret_arn" {
  description = "Secrets Manager secret with the master credentials, generated and rotated by RDS (admin use only)."
  value       = aws_rds_cluster.aurora.master_user_secret[0].secret_arn
}

output "aurora_loader_secret_arn" {
  description = "Secret (put by the DBA) with the Glue job's Aurora login; the job's --target-secret-id."
  value       = aws_secretsmanager_secret.aurora_loader.arn
}

output "aurora_checker_secret_arn" {
  description = "Secret (put by the DBA) with the read-only Aurora login Dagster uses for the checks."
  value       = aws_secretsmanager_secret.aurora_checker.arn
}

output "aurora_application_secret_arn" {
  description = "Secret (put by the DBA) with the application's Aurora login after the cutover (role consorcio_app)."
  value       = aws_secretsmanager_secret.aurora_application.arn
}

output "dagster_task_role_arn" {
  description = "IAM role for the Dagster ECS task definition (task role)."
  value       = aws_iam_role.dagster.arn
}

output "glue_role_arn" {
  description = "IAM role of the Glue job."
  value       = aws_iam_role.glue.arn
}

output "dms_s3_role_arn" {
  description = "IAM role DMS assumes to write the raw zone (CONSORCIO_DMS_S3_ROLE_ARN)."
  value       = aws_iam_role.dms_s3.arn
}

output "security_group_ids" {
  description = "Security groups created by the stack, by component."
  value = {
    dms       = aws_security_group.dms.id
    glue      = aws_security_group.glue.id
    aurora    = aws_security_group.aurora.id
    endpoints = aws_security_group.endpoints.id
  }
}

output "dagster_ecr_repository_url" {
  description = "ECR repository of the Dagster image: docker push <url>:<tag>, then apply with dagster_image_tag=<tag>."
  value       = aws_ecr_repository.dagster.repository_url
}

output "dagster_ui_dns_name" {
  description = "DNS name of the internal ALB; point the certificate's hostname at it (CNAME/alias)."
  value       = aws_lb.dagster.dns_name
}

output "dagster_cluster_name" {
  description = "ECS cluster of the Dagster services and runs."
  value       = aws_ecs_cluster.dagster.name
}

output "dagster_runtime_secret_arn" {
  description = "Secret whose JSON keys (DAGSTER_PG_URL, CONSORCIO_SOURCE_URL, CONSORCIO_TARGET_URL, CONSORCIO_PII_HMAC_KEY) the containers receive."
  value       = aws_secretsmanager_secret.dagster_runtime.arn
}

output "dagster_log_groups" {
  description = "CloudWatch log group per Dagster service (runs log to code-server's, stream prefix code-server)."
  value       = { for k, g in aws_cloudwatch_log_group.dagster : k => g.name }
}

output "dagster_security_group_id" {
  description = "Security group of the Dagster ECS tasks."
  value       = aws_security_group.dagster.id
}

output "glue_wheel_uri" {
  description = "S3 URI of the uploaded Glue job wheel (--extra-py-files)."
  value       = "s3://${aws_s3_bucket.lake.id}/${aws_s3_object.glue_wheel.key}"
}
