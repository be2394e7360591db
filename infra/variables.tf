# Inputs of the stack. Every variable has a description; defaults are safe for a production deployment.

variable "region" {
  description = "AWS region of every resource (the lake bucket, DMS, Glue and Aurora live together)."
  type        = string
  default     = "sa-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name; combined with environment as <name_prefix>-<environment>."
  type        = string
  default     = "consorcio"
}

variable "environment" {
  description = "Deployment environment (e.g. dev, hml, prod); part of names and tags."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2-10 lower-case letters or digits, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags applied to every resource (cost centre, owner...)."
  type        = map(string)
  default     = {}
}

# --- Network (existing VPC) ---------------------------------------------------------------------------------

variable "vpc_id" {
  description = "ID of the existing VPC that reaches the on-premises SQL Server (VPN or Direct Connect)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (at least two Availability Zones) for DMS, the Glue connection (first subnet) and Aurora."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "Aurora and the DMS subnet group need subnets in at least two Availability Zones."
  }
}

variable "private_route_table_ids" {
  description = "Route tables of the private subnets, for the S3 gateway endpoint (used when create_vpc_endpoints is true)."
  type        = list(string)
  default     = []
}

variable "create_vpc_endpoints" {
  description = "Create the S3 gateway endpoint and the interface endpoints; false when the VPC already has them."
  type        = bool
  default     = true
}

variable "interface_endpoint_services" {
  description = "AWS services reached from the private subnets through interface endpoints."
  type        = list(string)
  default     = ["secretsmanager", "kms", "logs", "glue"]
}

variable "dagster_security_group_ids" {
  description = "Security groups of the Dagster ECS tasks, allowed into Aurora to run the integrity checks."
  type        = list(string)
  default     = []
}

# --- Source: SQL Server --------------------------------------------------------------------------------------

variable "sqlserver_secret_arn" {
  description = "ARN of the Secrets Manager secret with the SQL Server login DMS uses (keys: username, password, host, port)."
  type        = string
}

variable "sqlserver_secret_kms_key_arn" {
  description = "KMS key that encrypts the SQL Server secret; null when it is this stack's key."
  type        = string
  default     = null
}

variable "sqlserver_database" {
  description = "Name of the source database on SQL Server."
  type        = string
  default     = "ConsorcioSimulacao"
}

variable "sqlserver_cidr_blocks" {
  description = "CIDR blocks of the on-premises SQL Server, the only destinations DMS may reach besides AWS endpoints."
  type        = list(string)
}

variable "sqlserver_port" {
  description = "TCP port of the SQL Server listener."
  type        = number
  default     = 1433
}

# --- Lake (S3) ---------------------------------------------------------------------------------------------

variable "scripts_prefix" {
  description = "Prefix of the Glue job script in the lake bucket."
  type        = string
  default     = "scripts"
}

variable "raw_retention_days" {
  description = "Days after which raw-zone and archived LOAD files expire; they hold customer PII (LGPD minimisation)."
  type        = number
  default     = 30

  validation {
    condition     = var.raw_retention_days >= 1 && var.raw_retention_days <= 365
    error_message = "raw_retention_days must be between 1 and 365."
  }
}

variable "transformed_retention_days" {
  description = "Days after which transformed-zone files expire; they hold customer PII and Aurora keeps the data."
  type        = number
  default     = 30
}

variable "pipes_retention_days" {
  description = "Days after which Dagster Pipes context and message objects (Pipes bucket) expire."
  type        = number
  default     = 7
}

variable "noncurrent_version_retention_days" {
  description = "Days a replaced or deleted object version is kept (undo window) before it expires."
  type        = number
  default     = 7
}

variable "access_log_retention_days" {
  description = "Days the S3 server access logs of the lake are kept."
  type        = number
  default     = 365
}

variable "kms_deletion_window_days" {
  description = "Waiting period before a scheduled deletion of the data key takes effect."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Retention of the project's CloudWatch log groups (Aurora PostgreSQL logs)."
  type        = number
  default     = 365
}

# --- DMS -----------------------------------------------------------------------------------------------------

variable "create_dms_service_roles" {
  description = "Create the account-wide dms-vpc-role and dms-cloudwatch-logs-role; false if the account already has them."
  type        = bool
  default     = true
}

variable "dms_instance_class" {
  description = "Replication instance class; memory bounds the full-load's parallel table loads."
  type        = string
  default     = "dms.r5.large"
}

variable "dms_allocated_storage_gb" {
  description = "Storage of the replication instance in GB (task logs and cached LOB changes)."
  type        = number
  default     = 100
}

variable "dms_engine_version" {
  description = "DMS engine version of the replication instance."
  type        = string
  default     = "3.5.4"
}

variable "dms_multi_az" {
  description = "Run the replication instance in two Availability Zones (a full-load survives an AZ failure)."
  type        = bool
  default     = false
}

variable "maintenance_window" {
  description = "Weekly maintenance window (UTC) of the replication instance and Aurora, outside migration hours."
  type        = string
  default     = "sun:06:00-sun:07:00"
}

# --- Glue ----------------------------------------------------------------------------------------------------

variable "glue_worker_type" {
  description = "Glue worker type of the job: G.1X (4 vCPU, 16 GB) gives 4 executor cores per worker, each one COPY stream into Aurora; G.2X doubles both per worker."
  type        = string
  default     = "G.1X"
}

variable "glue_number_of_workers" {
  description = "Workers per job run (one is the Spark driver): executor cores = (workers - 1) x 4 on G.1X, one COPY stream each. Size by the capacity model in bench/README.md: 2 (Glue's minimum) loads 100M rows within an hour even at the measured lower bound, 5 a 1B-row table; keep (workers - 1) x 4 x max_concurrent_runs under what the Aurora writer absorbs (about 2 COPY streams per writer vCPU)."
  type        = number
  default     = 3
}

variable "glue_max_concurrent_runs" {
  description = "Concurrent runs of the job; Dagster runs one per table, bounded by this (Glue's max concurrent runs)."
  type        = number
  default     = 4
}

variable "glue_wheel_version" {
  description = "Version of the job's wheel (dist/glue/consorcio_glue-<version>-py3-none-any.whl, from `make glue-wheel`): the project's version in pyproject.toml."
  type        = string
  default     = "0.1.0"
}

variable "glue_timeout_minutes" {
  description = "Timeout of one job run (one table), in minutes."
  type        = number
  default     = 120
}

variable "glue_additional_python_modules" {
  description = "Python packages Glue 5.0 installs before the job runs (--additional-python-modules), pinned: the job needs pyarrow >= 18 (uuid type; Glue ships an older one), numpy, psycopg 3 and dagster-pipes; the pins are the versions the job is tested with locally. Its own code comes as the wheel on --extra-py-files."
  type        = list(string)
  default     = ["pyarrow==25.0.1", "numpy==2.4.6", "psycopg[binary]==3.3.9", "dagster-pipes==1.13.27"]

  validation {
    condition     = alltrue([for m in var.glue_additional_python_modules : !strcontains(m, ",")])
    error_message = "Glue splits --additional-python-modules on commas: write each requirement without one (e.g. ~=)."
  }
}

# --- Aurora PostgreSQL ---------------------------------------------------------------------------------------

variable "aurora_engine_version" {
  description = "Aurora PostgreSQL engine version."
  type        = string
  default     = "16.6"
}

variable "aurora_parameter_group_family" {
  description = "Parameter group family matching aurora_engine_version."
  type        = string
  default     = "aurora-postgresql16"
}

variable "aurora_instance_class" {
  description = "Instance class of the Aurora instances."
  type        = string
  default     = "db.r6g.large"
}

variable "aurora_instance_count" {
  description = "Number of Aurora instances (the first is the writer; two or more give failover)."
  type        = number
  default     = 2
}

variable "aurora_database" {
  description = "Database created in Aurora; the migration loads schema consorcio in it."
  type        = string
  default     = "consorcio"
}

variable "aurora_port" {
  description = "TCP port of Aurora PostgreSQL."
  type        = number
  default     = 5432
}

variable "aurora_master_username" {
  description = "Master user of the cluster; its password is generated and kept by RDS in Secrets Manager."
  type        = string
  default     = "consorcio_admin"
}

variable "aurora_backup_retention_days" {
  description = "Days of automated backups (point-in-time restore window)."
  type        = number
  default     = 14

  validation {
    condition     = var.aurora_backup_retention_days >= 7 && var.aurora_backup_retention_days <= 35
    error_message = "aurora_backup_retention_days must be between 7 and 35."
  }
}

variable "aurora_backup_window" {
  description = "Daily backup window (UTC), outside the maintenance window."
  type        = string
  default     = "03:00-04:00"
}

variable "aurora_log_min_duration_ms" {
  description = "Statements slower than this many milliseconds are logged (log_min_duration_statement)."
  type        = number
  default     = 5000
}

# --- Dagster on ECS (dagster.tf) -----------------------------------------------------------------------------

variable "dagster_image_tag" {
  description = "Tag of the Dagster image in the ECR repository (immutable: a release is a new tag; roll back by applying the previous tag)."
  type        = string
}

variable "dagster_images_kept" {
  description = "Images kept in the ECR repository (rollback targets); older ones expire."
  type        = number
  default     = 20
}

variable "dagster_task_sizes" {
  description = "Fargate CPU units and memory (MiB) per Dagster service; runs use the code-server size."
  type        = map(object({ cpu = number, memory = number }))
  default = {
    code-server = { cpu = 1024, memory = 4096 }
    webserver   = { cpu = 512, memory = 2048 }
    daemon      = { cpu = 512, memory = 1024 }
  }

  validation {
    condition     = alltrue([for s in ["code-server", "webserver", "daemon"] : contains(keys(var.dagster_task_sizes), s)])
    error_message = "dagster_task_sizes needs code-server, webserver and daemon."
  }
}

variable "dagster_certificate_arn" {
  description = "ACM certificate of the Dagster UI's internal hostname (the ALB's HTTPS listener)."
  type        = string
}

variable "dagster_ui_cidr_blocks" {
  description = "Networks (VPN, office) allowed to reach the internal ALB on 443; every request is still authenticated."
  type        = list(string)
}

variable "dagster_cognito_user_pool_arn" {
  description = "Cognito user pool that authenticates the UI's users (federated with the corporate IdP)."
  type        = string
}

variable "dagster_cognito_client_id" {
  description = "App client of that user pool, with the callback https://<ui host>/oauth2/idpresponse."
  type        = string
}

variable "dagster_cognito_domain" {
  description = "Domain prefix of the user pool's hosted UI."
  type        = string
}

variable "dagster_session_timeout_seconds" {
  description = "Lifetime of the ALB's authentication session cookie."
  type        = number
  default     = 28800
}
