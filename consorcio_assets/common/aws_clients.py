"""`AwsClients`: the boto3 clients of the AWS resources, all built one way (one retry configuration)."""

from __future__ import annotations

import boto3
from dagster_aws.utils import ResourceWithBoto3Configuration

from consorcio_core.resilience import boto_config


class AwsClients(ResourceWithBoto3Configuration):
    """dagster_aws's AWS settings (region, profile, keys, endpoint, `max_attempts` retries); unset ones come from
    boto3's own chain (the ECS task role, AWS_REGION, AWS_ENDPOINT_URL_<SERVICE>...)."""

    def client(self, service: str, *, own_endpoint: bool = True):
        """A client of `service` retrying throttling and connection errors (`boto_config`); `own_endpoint=False`
        leaves the endpoint to boto3's resolution (S3 beside a DMS or Glue endpoint override)."""
        session = boto3.session.Session(
            profile_name=self.profile_name,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            region_name=self.region_name,
        )
        return session.client(
            service,
            endpoint_url=self.endpoint_url if own_endpoint else None,
            use_ssl=self.use_ssl,
            verify=self.verify,
            config=boto_config(self.max_attempts + 1),
        )  # max_attempts counts the retries
