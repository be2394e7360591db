"""`AwsClients`: the boto3 clients of the AWS resources, all built one way (one retry configuration).

The settings are the ones of dagster_aws's `ResourceWithBoto3Configuration`, declared here: importing any
`dagster_aws` module imports the whole package (its components, Secrets Manager resources and Dagster's test
utilities, ~0.6 s), which every process building the definitions paid though only aws mode talks to AWS.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from consorcio_core.resilience import boto_config


class AwsClients(dg.ConfigurableResource):
    """AWS settings (region, profile, keys, endpoint, `max_attempts` retries); unset ones come from boto3's own
    chain (the ECS task role, AWS_REGION, AWS_ENDPOINT_URL_<SERVICE>...)."""

    region_name: str | None = Field(default=None, description="region of the boto3 session")
    max_attempts: int = Field(default=5, description="retries of a throttled or failed call, beyond the first")
    profile_name: str | None = Field(default=None, description="AWS profile of the boto3 session")
    use_ssl: bool = Field(default=True, description="whether to use SSL")
    endpoint_url: str | None = Field(default=None, description="endpoint overriding the service's own")
    verify: bool | None = Field(default=True, description="whether to verify SSL certificates")
    aws_access_key_id: str | None = Field(default=None, description="access key id (unset: boto3's chain)")
    aws_secret_access_key: str | None = Field(default=None, description="secret access key (unset: boto3's chain)")
    aws_session_token: str | None = Field(default=None, description="session token (unset: boto3's chain)")

    def client(self, service: str, *, own_endpoint: bool = True):
        """A client of `service` retrying throttling and connection errors (`boto_config`); `own_endpoint=False`
        leaves the endpoint to boto3's resolution (S3 beside a DMS or Glue endpoint override)."""
        import boto3  # here: the definitions of local mode need no boto3 (~0.15 s)

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
