# Security groups in the existing VPC. Nothing here is reachable from the internet: DMS, Glue and Aurora
# live in private subnets and reach AWS APIs through VPC endpoints.

data "aws_subnet" "glue" {
  id = var.private_subnet_ids[0]
}

data "aws_ec2_managed_prefix_list" "s3" {
  name = "com.amazonaws.${local.region}.s3"
}

# --- DMS replication instance: reads SQL Server, writes S3, fetches its source secret.
resource "aws_security_group" "dms" {
  name_prefix = "${local.name}-dms-"
  description = "DMS replication instance of the consorcio migration (egress only)"
  vpc_id      = var.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "dms_to_sqlserver" {
  for_each          = toset(var.sqlserver_cidr_blocks)
  security_group_id = aws_security_group.dms.id
  description       = "DMS reads the source SQL Server"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.sqlserver_port
  to_port           = var.sqlserver_port
}

resource "aws_vpc_security_group_egress_rule" "dms_to_s3" {
  security_group_id = aws_security_group.dms.id
  description       = "DMS writes LOAD files to S3 through the gateway endpoint"
  prefix_list_id    = data.aws_ec2_managed_prefix_list.s3.id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "dms_to_endpoints" {
  security_group_id            = aws_security_group.dms.id
  description                  = "DMS calls Secrets Manager and KMS through interface endpoints"
  referenced_security_group_id = aws_security_group.endpoints.id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

# --- Glue job: reads/writes S3, loads Aurora. Glue requires a self-referencing rule on its connection's group.
resource "aws_security_group" "glue" {
  #checkov:skip=CKV2_AWS_5:Attached to the Glue job through aws_glue_connection.aurora (security_group_id_list), which checkov's graph does not follow.
  name_prefix = "${local.name}-glue-"
  description = "Glue job of the consorcio migration (Aurora loader)"
  vpc_id      = var.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

# aws_security_group_rule with `self` (rather than aws_vpc_security_group_*_rule) so the self-reference is explicit.
resource "aws_security_group_rule" "glue_self_ingress" {
  type              = "ingress"
  security_group_id = aws_security_group.glue.id
  description       = "Glue workers of one job run talk to each other (required by Glue connections)"
  self              = true
  protocol          = "tcp"
  from_port         = 0
  to_port           = 65535
}

resource "aws_security_group_rule" "glue_self_egress" {
  type              = "egress"
  security_group_id = aws_security_group.glue.id
  description       = "Glue workers of one job run talk to each other (required by Glue connections)"
  self              = true
  protocol          = "tcp"
  from_port         = 0
  to_port           = 65535
}

resource "aws_vpc_security_group_egress_rule" "glue_to_aurora" {
  security_group_id            = aws_security_group.glue.id
  description                  = "Glue loads Aurora PostgreSQL"
  referenced_security_group_id = aws_security_group.aurora.id
  ip_protocol                  = "tcp"
  from_port                    = var.aurora_port
  to_port                      = var.aurora_port
}

resource "aws_vpc_security_group_egress_rule" "glue_to_s3" {
  security_group_id = aws_security_group.glue.id
  description       = "Glue reads raw and writes transformed files through the S3 gateway endpoint"
  prefix_list_id    = data.aws_ec2_managed_prefix_list.s3.id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "glue_to_endpoints" {
  security_group_id            = aws_security_group.glue.id
  description                  = "Glue calls CloudWatch Logs, KMS and Secrets Manager through interface endpoints"
  referenced_security_group_id = aws_security_group.endpoints.id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

# --- Aurora: only the Glue loader and Dagster (checks) connect.
resource "aws_security_group" "aurora" {
  name_prefix = "${local.name}-aurora-"
  description = "Aurora PostgreSQL target of the consorcio migration"
  vpc_id      = var.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "aurora_from_glue" {
  security_group_id            = aws_security_group.aurora.id
  description                  = "The Glue job loads the consorcio schema"
  referenced_security_group_id = aws_security_group.glue.id
  ip_protocol                  = "tcp"
  from_port                    = var.aurora_port
  to_port                      = var.aurora_port
}

resource "aws_vpc_security_group_ingress_rule" "aurora_from_dagster" {
  for_each                     = toset(var.dagster_security_group_ids)
  security_group_id            = aws_security_group.aurora.id
  description                  = "Dagster (ECS tasks) runs the integrity checks"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = var.aurora_port
  to_port                      = var.aurora_port
}

# --- Interface endpoints for the AWS APIs the private workloads call.
resource "aws_security_group" "endpoints" {
  name_prefix = "${local.name}-endpoints-"
  description = "Interface VPC endpoints used by DMS and Glue"
  vpc_id      = var.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_dms" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the DMS replication instance"
  referenced_security_group_id = aws_security_group.dms.id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_glue" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the Glue job"
  referenced_security_group_id = aws_security_group.glue.id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_endpoint" "s3" {
  count             = var.create_vpc_endpoints ? 1 : 0
  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.private_route_table_ids
}

resource "aws_vpc_endpoint" "interface" {
  for_each            = var.create_vpc_endpoints ? toset(var.interface_endpoint_services) : toset([])
  vpc_id              = var.vpc_id
  service_name        = "com.amazonaws.${local.region}.${each.value}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = var.private_subnet_ids
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true
}
