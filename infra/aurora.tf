# Aurora PostgreSQL: encrypted with the project key, IAM database authentication (the Glue loader and the
# Dagster checker connect with IAM tokens), master password generated and rotated by RDS in Secrets Manager,
# deletion protection, automated backups, PostgreSQL logs exported to an encrypted log group, TLS enforced.

resource "aws_db_subnet_group" "aurora" {
  name_prefix = "${local.name}-aurora-"
  description = "Private subnets of the consorcio Aurora cluster"
  subnet_ids  = var.private_subnet_ids
}

resource "aws_rds_cluster_parameter_group" "aurora" {
  name_prefix = "${local.name}-aurora-"
  family      = var.aurora_parameter_group_family
  description = "TLS only, connection and slow-statement logging (statement text only above the threshold)"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_connections"
    value = "1"
  }
  parameter {
    name  = "log_disconnections"
    value = "1"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = tostring(var.aurora_log_min_duration_ms)
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "aurora" {
  name              = "/aws/rds/cluster/${local.name}-aurora/postgresql"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}

resource "aws_rds_cluster" "aurora" {
  #checkov:skip=CKV2_AWS_8:Backups are Aurora's automated continuous backups (backup_retention_period, point-in-time restore); no separate AWS Backup plan is managed by this stack.
  #checkov:skip=CKV2_AWS_27:Query logging with log_statement=all would write statement text, which can hold customer PII, to CloudWatch; only connections and statements slower than aurora_log_min_duration_ms are logged.
  cluster_identifier                  = "${local.name}-aurora"
  engine                              = "aurora-postgresql"
  engine_version                      = var.aurora_engine_version
  database_name                       = var.aurora_database
  port                                = var.aurora_port
  master_username                     = var.aurora_master_username
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = aws_kms_key.data.arn
  iam_database_authentication_enabled = true
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.data.arn
  deletion_protection                 = true
  backup_retention_period             = var.aurora_backup_retention_days
  preferred_backup_window             = var.aurora_backup_window
  preferred_maintenance_window        = var.maintenance_window
  copy_tags_to_snapshot               = true
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${local.name}-aurora-final"
  enabled_cloudwatch_logs_exports     = ["postgresql"]
  db_subnet_group_name                = aws_db_subnet_group.aurora.name
  db_cluster_parameter_group_name     = aws_rds_cluster_parameter_group.aurora.name
  vpc_security_group_ids              = [aws_security_group.aurora.id]
  apply_immediately                   = false

  depends_on = [aws_cloudwatch_log_group.aurora]
}

resource "aws_rds_cluster_instance" "aurora" {
  count                                 = var.aurora_instance_count
  identifier                            = "${local.name}-aurora-${count.index + 1}"
  cluster_identifier                    = aws_rds_cluster.aurora.id
  engine                                = aws_rds_cluster.aurora.engine
  engine_version                        = aws_rds_cluster.aurora.engine_version
  instance_class                        = var.aurora_instance_class
  db_subnet_group_name                  = aws_db_subnet_group.aurora.name
  publicly_accessible                   = false
  auto_minor_version_upgrade            = true
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.data.arn
  performance_insights_retention_period = 7
  preferred_maintenance_window          = var.maintenance_window
  apply_immediately                     = false

  depends_on = [aws_iam_role_policy_attachment.rds_monitoring]
}
