# AWS DMS: one replication instance in the private subnets, the SQL Server source (credentials from Secrets
# Manager), the S3 target whose S3Settings are consorcio_assets/dms/s3_endpoint_settings.json key by key, and the
# full-load task whose table mappings are generated from the catalog (infra/generated/table_mappings.json,
# written by `consorcio_assets.deployment.infra_sync`) and whose settings are consorcio_assets/dms/task_settings.json.
# Dagster starts the task (start-replication, then reload-target); Terraform never starts it.

resource "aws_dms_replication_subnet_group" "this" {
  replication_subnet_group_id          = "${local.name}-dms"
  replication_subnet_group_description = "Private subnets of the consorcio migration"
  subnet_ids                           = var.private_subnet_ids

  depends_on = [aws_iam_role_policy_attachment.dms_vpc]
}

resource "aws_dms_replication_instance" "this" {
  replication_instance_id      = "${local.name}-dms"
  replication_instance_class   = var.dms_instance_class
  allocated_storage            = var.dms_allocated_storage_gb
  engine_version               = var.dms_engine_version
  multi_az                     = var.dms_multi_az
  publicly_accessible          = false
  auto_minor_version_upgrade   = true
  allow_major_version_upgrade  = false
  apply_immediately            = false
  kms_key_arn                  = aws_kms_key.data.arn
  replication_subnet_group_id  = aws_dms_replication_subnet_group.this.id
  vpc_security_group_ids       = [aws_security_group.dms.id]
  preferred_maintenance_window = var.maintenance_window

  depends_on = [aws_iam_role_policy_attachment.dms_vpc, aws_iam_role_policy_attachment.dms_cloudwatch]
}

resource "aws_dms_endpoint" "sqlserver" {
  endpoint_id                     = "${local.name}-sqlserver"
  endpoint_type                   = "source"
  engine_name                     = "sqlserver"
  database_name                   = var.sqlserver_database
  secrets_manager_arn             = var.sqlserver_secret_arn
  secrets_manager_access_role_arn = aws_iam_role.dms_secrets.arn
  ssl_mode                        = "require"
  kms_key_arn                     = aws_kms_key.data.arn
}

# Every key of s3_endpoint_settings.json is mapped to the attribute of the same name (snake_case); the test
# consorcio_assets_tests/infra asserts the two sets are equal, so a setting added to the JSON file must be added
# here too. The bucket, role and encryption key are infrastructure facts and come from this configuration.
resource "aws_dms_s3_endpoint" "raw" {
  endpoint_id                       = "${local.name}-s3-raw"
  endpoint_type                     = "target"
  bucket_name                       = aws_s3_bucket.lake.id
  service_access_role_arn           = aws_iam_role.dms_s3.arn
  kms_key_arn                       = aws_kms_key.data.arn
  encryption_mode                   = "SSE_KMS"
  server_side_encryption_kms_key_id = aws_kms_key.data.arn
  expected_bucket_owner             = local.account_id

  bucket_folder                    = local.s3_endpoint_settings.BucketFolder
  data_format                      = local.s3_endpoint_settings.DataFormat
  parquet_version                  = local.s3_endpoint_settings.ParquetVersion
  encoding_type                    = local.s3_endpoint_settings.EncodingType
  compression_type                 = local.s3_endpoint_settings.CompressionType
  row_group_length                 = local.s3_endpoint_settings.RowGroupLength
  data_page_size                   = local.s3_endpoint_settings.DataPageSize
  dict_page_size_limit             = local.s3_endpoint_settings.DictPageSizeLimit
  enable_statistics                = local.s3_endpoint_settings.EnableStatistics
  parquet_timestamp_in_millisecond = local.s3_endpoint_settings.ParquetTimestampInMillisecond
  max_file_size                    = local.s3_endpoint_settings.MaxFileSize
  csv_delimiter                    = local.s3_endpoint_settings.CsvDelimiter
  csv_row_delimiter                = local.s3_endpoint_settings.CsvRowDelimiter
  csv_null_value                   = local.s3_endpoint_settings.CsvNullValue
  rfc_4180                         = local.s3_endpoint_settings.Rfc4180
  add_column_name                  = local.s3_endpoint_settings.AddColumnName
  include_op_for_full_load         = local.s3_endpoint_settings.IncludeOpForFullLoad
  timestamp_column_name            = local.s3_endpoint_settings.TimestampColumnName
  date_partition_enabled           = local.s3_endpoint_settings.DatePartitionEnabled
  cdc_inserts_only                 = local.s3_endpoint_settings.CdcInsertsOnly

  depends_on = [aws_iam_role_policy.dms_s3]
}

resource "aws_dms_replication_task" "full_load" {
  replication_task_id       = "${local.name}-full-load"
  migration_type            = "full-load"
  replication_instance_arn  = aws_dms_replication_instance.this.replication_instance_arn
  source_endpoint_arn       = aws_dms_endpoint.sqlserver.endpoint_arn
  target_endpoint_arn       = aws_dms_s3_endpoint.raw.endpoint_arn
  table_mappings            = jsonencode(local.table_mappings)
  replication_task_settings = jsonencode(local.task_settings)
  start_replication_task    = false
}
