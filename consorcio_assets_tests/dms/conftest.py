"""Fixtures of the DMS tests: the hand-made source stand-in, a local lake, and moto's S3 server."""

from __future__ import annotations

import shutil
from pathlib import Path

import boto3
import pytest

from consorcio_assets.common.lake_zones import Lake
from consorcio_assets_tests.dms.data import build_source


@pytest.fixture(scope="session")
def hand_made_source(tmp_path_factory) -> Path:
    """The stand-in of data.py (read-only: copy it before changing it)."""
    return build_source(tmp_path_factory.mktemp("dms-source") / "consorcio_simulacao.duckdb")


@pytest.fixture
def source(tmp_path, hand_made_source, monkeypatch) -> Path:
    """A private copy of the hand-made stand-in, set as the source of a local environment in tmp_path."""
    path = tmp_path / "source" / "consorcio_simulacao.duckdb"
    path.parent.mkdir(parents=True)
    shutil.copy(hand_made_source, path)
    monkeypatch.setenv("CONSORCIO_ENV", "local")
    monkeypatch.setenv("CONSORCIO_HOME", str(tmp_path))
    monkeypatch.setenv("CONSORCIO_SOURCE_URL", f"duckdb:///{path}")
    monkeypatch.setenv("CONSORCIO_LAKE_URI", (tmp_path / "lake").as_uri())
    return path


@pytest.fixture
def lake(tmp_path) -> Lake:
    (tmp_path / "lake").mkdir(exist_ok=True)
    return Lake((tmp_path / "lake").as_uri())


@pytest.fixture
def s3_bucket(moto_endpoint, monkeypatch, request) -> str:
    """A fresh bucket on moto's server, with the AWS environment pointing at it."""
    for name, value in {
        "AWS_ENDPOINT_URL_S3": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"lake-{abs(hash(request.node.nodeid)) % 10**8}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return bucket
