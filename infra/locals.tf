# Values derived once and shared by every file. The DMS settings are the very files the Python code reads,
# so the deployed endpoint and task cannot drift from what the local engine and the tests assume.
locals {
  name = "${var.name_prefix}-${var.environment}"

  tags = merge(var.tags, {
    project     = "consorcio-migration"
    environment = var.environment
    data_class  = "pii" # the raw and transformed zones hold customer CPF/CNPJ, names, e-mails (LGPD)
  })

  dms_settings_dir     = "${path.module}/../consorcio_assets/dms"
  s3_endpoint_settings = jsondecode(file("${local.dms_settings_dir}/s3_endpoint_settings.json"))
  task_settings        = jsondecode(file("${local.dms_settings_dir}/task_settings.json"))
  table_mappings       = jsondecode(file("${path.module}/generated/table_mappings.json"))

  # Zones of the lake (Pipes messages have a bucket of their own, see s3.tf), all under the bucket root (CONSORCIO_LAKE_URI = s3://<bucket>): raw is DMS's BucketFolder,
  # transformed is the Glue job's output zone, _dms/archive is where the DMS resource moves a table's previous
  # LOAD files before a reload (consorcio_assets/dms/engine.py WORK_ROOT).
  raw_prefix         = local.s3_endpoint_settings.BucketFolder
  transformed_prefix = "transformed"
  archive_prefix     = "_dms/archive"
  scripts_prefix     = var.scripts_prefix

  glue_script_source = "${path.module}/../glue/consorcio_glue_job.py"
  glue_script_key    = "${local.scripts_prefix}/consorcio_glue_job.py"
  # The job's code: the wheel `make glue-wheel` builds (consorcio_assets/deployment/glue_wheel.py; version = pyproject's)
  glue_wheel_name   = "consorcio_glue-${var.glue_wheel_version}-py3-none-any.whl"
  glue_wheel_source = "${path.module}/../dist/glue/${local.glue_wheel_name}"
  glue_wheel_key    = "${local.scripts_prefix}/${local.glue_wheel_name}"

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = var.region
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}
