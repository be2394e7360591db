# The lake: raw/ (DMS full-load output), transformed/ (Glue output), _dms/archive/ (previous raw loads),
# scripts/ (the Glue script). Raw, archive and transformed objects hold customer PII, so they expire after a
# configurable number of days (LGPD data minimisation). Dagster Pipes context and messages go to a bucket of
# their own (below): dagster-aws writes messages under a random top-level prefix, which a prefix-scoped IAM
# policy on the lake could not confine.
resource "aws_s3_bucket" "lake" {
  #checkov:skip=CKV_AWS_144:No cross-region replication on purpose: the zones hold PII (LGPD) and are reproducible from the source database; a second copy in another region only widens exposure.
  #checkov:skip=CKV_AWS_143:No Object Lock: PII must be deletable on request and expire by lifecycle (LGPD), which a WORM lock would forbid.
  bucket_prefix = "${local.name}-lake-"
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "lake" {
  bucket                  = aws_s3_bucket.lake.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "lake" {
  bucket = aws_s3_bucket.lake.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id

  # Versioning must be on before noncurrent-version rules apply.
  depends_on = [aws_s3_bucket_versioning.lake]

  rule {
    id     = "expire-raw-zone-pii"
    status = "Enabled"
    filter {
      prefix = "${local.raw_prefix}/"
    }
    expiration {
      days = var.raw_retention_days
    }
  }

  rule {
    id     = "expire-archived-raw-loads"
    status = "Enabled"
    filter {
      prefix = "${local.archive_prefix}/"
    }
    expiration {
      days = var.raw_retention_days
    }
  }

  rule {
    id     = "expire-transformed-zone-pii"
    status = "Enabled"
    filter {
      prefix = "${local.transformed_prefix}/"
    }
    expiration {
      days = var.transformed_retention_days
    }
  }

  # Whole bucket: replaced or deleted versions (of PII too) go after the undo window, delete markers left by the
  # expirations above are removed, failed uploads are aborted.
  rule {
    id     = "noncurrent-versions-and-failed-uploads"
    status = "Enabled"
    filter {}
    expiration {
      expired_object_delete_marker = true
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_logging" "lake" {
  bucket        = aws_s3_bucket.lake.id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "s3/${aws_s3_bucket.lake.id}/"
}

# EventBridge notifications let a deployment react to new LOAD files without listing the bucket.
resource "aws_s3_bucket_notification" "lake" {
  bucket      = aws_s3_bucket.lake.id
  eventbridge = true
}

data "aws_iam_policy_document" "lake" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyTlsOlderThan12"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "lake" {
  bucket = aws_s3_bucket.lake.id
  policy = data.aws_iam_policy_document.lake.json

  depends_on = [aws_s3_bucket_public_access_block.lake]
}

# Dagster Pipes: the context Dagster hands the Glue job and the messages the job sends back (logs, metadata,
# check results; never row values). Only Dagster and the Glue job use it; objects expire after a few days.
resource "aws_s3_bucket" "pipes" {
  #checkov:skip=CKV_AWS_144:Pipes messages are transient run chatter, useless in another region.
  #checkov:skip=CKV_AWS_143:Pipes objects expire after pipes_retention_days; Object Lock would prevent that.
  #checkov:skip=CKV2_AWS_62:Dagster polls its own message keys; nothing consumes bucket events.
  bucket_prefix = "${local.name}-pipes-"
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "pipes" {
  bucket = aws_s3_bucket.pipes.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "pipes" {
  bucket                  = aws_s3_bucket.pipes.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "pipes" {
  bucket = aws_s3_bucket.pipes.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "pipes" {
  bucket = aws_s3_bucket.pipes.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "pipes" {
  bucket     = aws_s3_bucket.pipes.id
  depends_on = [aws_s3_bucket_versioning.pipes]

  rule {
    id     = "expire-pipes-objects"
    status = "Enabled"
    filter {}
    expiration {
      days = var.pipes_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_logging" "pipes" {
  bucket        = aws_s3_bucket.pipes.id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "s3/${aws_s3_bucket.pipes.id}/"
}

data "aws_iam_policy_document" "pipes" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.pipes.arn, "${aws_s3_bucket.pipes.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "pipes" {
  bucket     = aws_s3_bucket.pipes.id
  policy     = data.aws_iam_policy_document.pipes.json
  depends_on = [aws_s3_bucket_public_access_block.pipes]
}

# Server access logs of the lake and the Pipes bucket. S3 delivers access logs only to buckets encrypted with SSE-S3 (not SSE-KMS).
resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_18:This is the access-log target bucket; logging it into itself would loop.
  #checkov:skip=CKV_AWS_144:Access logs stay in the region of the data they describe; no cross-region copy needed.
  #checkov:skip=CKV_AWS_145:S3 server access logging supports only SSE-S3 on the target bucket, not SSE-KMS.
  #checkov:skip=CKV2_AWS_62:Nothing consumes events of the access-log bucket.
  #checkov:skip=CKV_AWS_143:Access logs expire by lifecycle; Object Lock would prevent that.
  bucket_prefix = "${local.name}-access-logs-"
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket     = aws_s3_bucket.access_logs.id
  depends_on = [aws_s3_bucket_versioning.access_logs]

  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.access_log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_elb_service_account" "this" {}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid       = "DagsterAlbAccessLogDelivery"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/alb/AWSLogs/${local.account_id}/*"]
    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.this.arn]
    }
  }

  statement {
    sid       = "S3ServerAccessLogDelivery"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/s3/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.lake.arn, aws_s3_bucket.pipes.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.access_logs.arn, "${aws_s3_bucket.access_logs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket     = aws_s3_bucket.access_logs.id
  policy     = data.aws_iam_policy_document.access_logs.json
  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}
