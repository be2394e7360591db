# Database credentials of the two application users, kept in Secrets Manager and never in Terraform state: this
# stack creates the (KMS-encrypted) secrets empty; the DBA creates the users in Aurora and puts the values
# (see README.md). The master password is generated and kept by RDS itself (manage_master_user_password).
# Secret JSON: {"host", "port", "username", "password", "dbname", "sslmode": "require"}.

resource "aws_secretsmanager_secret" "aurora_loader" {
  #checkov:skip=CKV2_AWS_57:The value is put by the DBA after creating the user; rotation uses the RDS alternating-users rotation function, deployed by the platform team outside this stack.
  name_prefix             = "${local.name}/aurora/loader-"
  description             = "Aurora login of the Glue job (owns schema consorcio; --target-secret-id)"
  kms_key_id              = aws_kms_key.data.arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret" "aurora_checker" {
  #checkov:skip=CKV2_AWS_57:The value is put by the DBA after creating the user; rotation uses the RDS alternating-users rotation function, deployed by the platform team outside this stack.
  name_prefix             = "${local.name}/aurora/checker-"
  description             = "Read-only Aurora login Dagster uses for the integrity checks"
  kms_key_id              = aws_kms_key.data.arn
  recovery_window_in_days = 30
}

# The simulation application's login after the cutover: granted role consorcio_app (DML, sequences, views; no DDL),
# created by the DBA with infra/generated/aurora_roles.sql (generated from consorcio_assets/target/roles.py).
resource "aws_secretsmanager_secret" "aurora_application" {
  #checkov:skip=CKV2_AWS_57:The value is put by the DBA after creating the user; rotation uses the RDS alternating-users rotation function, deployed by the platform team outside this stack.
  name_prefix             = "${local.name}/aurora/application-"
  description             = "Aurora login of the simulation application after the cutover (role consorcio_app)"
  kms_key_id              = aws_kms_key.data.arn
  recovery_window_in_days = 30
}
