# The Glue job: a Glue 5.0 Spark job (glueetl: Spark 3.5, Python 3.11) in the VPC through a NETWORK connection that
# places it next to Aurora. Its entry script glue/consorcio_glue_job.py and its code, the wheel `make glue-wheel`
# builds (consorcio_glue + consorcio_core), are uploaded to the lake's scripts prefix; the wheel goes on
# --extra-py-files, the third-party packages Glue lacks on --additional-python-modules. On Spark the driver spreads
# a table's row groups over the executors, each COPYing its share into Aurora (see README "The Glue job on Spark").
# Dagster starts one run per table through PipesGlueClient and passes the per-run arguments; the defaults below are
# infrastructure facts.

resource "aws_s3_object" "glue_script" {
  bucket      = aws_s3_bucket.lake.id
  key         = local.glue_script_key
  source      = local.glue_script_source
  source_hash = filemd5(local.glue_script_source)
  kms_key_id  = aws_kms_key.data.arn

  content_type = "text/x-python"
}

resource "aws_s3_object" "glue_wheel" {
  bucket      = aws_s3_bucket.lake.id
  key         = local.glue_wheel_key
  source      = local.glue_wheel_source
  source_hash = filemd5(local.glue_wheel_source)
  kms_key_id  = aws_kms_key.data.arn

  content_type = "application/zip"
}

resource "aws_glue_connection" "aurora" {
  name            = "${local.name}-aurora"
  description     = "Network path from the Glue job to Aurora PostgreSQL in the private subnets"
  connection_type = "NETWORK"

  physical_connection_requirements {
    availability_zone      = data.aws_subnet.glue.availability_zone
    subnet_id              = data.aws_subnet.glue.id
    security_group_id_list = [aws_security_group.glue.id]
  }
}

resource "aws_glue_security_configuration" "this" {
  name = "${local.name}-glue"

  encryption_configuration {
    cloudwatch_encryption {
      cloudwatch_encryption_mode = "SSE-KMS"
      kms_key_arn                = aws_kms_key.data.arn
    }
    job_bookmarks_encryption {
      job_bookmarks_encryption_mode = "CSE-KMS"
      kms_key_arn                   = aws_kms_key.data.arn
    }
    s3_encryption {
      s3_encryption_mode = "SSE-KMS"
      kms_key_arn        = aws_kms_key.data.arn
    }
  }
}

resource "aws_glue_job" "consorcio" {
  name                   = "${local.name}-glue-job"
  description            = "Raw zone (DMS LOAD files) to transformed zone and Aurora, one table per run"
  role_arn               = aws_iam_role.glue.arn
  glue_version           = "5.0"
  worker_type            = var.glue_worker_type
  number_of_workers      = var.glue_number_of_workers
  timeout                = var.glue_timeout_minutes
  max_retries            = 0 # Dagster owns retries; a silent Glue retry would hide a failed load
  connections            = [aws_glue_connection.aurora.name]
  security_configuration = aws_glue_security_configuration.this.name

  command {
    name            = "glueetl"
    python_version  = "3"
    script_location = "s3://${aws_s3_bucket.lake.id}/${aws_s3_object.glue_script.key}"
  }

  execution_property {
    max_concurrent_runs = var.glue_max_concurrent_runs
  }

  default_arguments = {
    "--job-language"                     = "python"
    "--additional-python-modules"        = join(",", var.glue_additional_python_modules)
    "--extra-py-files"                   = "s3://${aws_s3_bucket.lake.id}/${aws_s3_object.glue_wheel.key}"
    "--enable-continuous-cloudwatch-log" = "true"
    "--enable-metrics"                   = "true"
    "--lake-uri"                         = "s3://${aws_s3_bucket.lake.id}"
    "--raw-folder"                       = local.raw_prefix
    "--raw-format"                       = local.s3_endpoint_settings.DataFormat
    "--target-secret-id"                 = aws_secretsmanager_secret.aurora_loader.arn
  }
}
