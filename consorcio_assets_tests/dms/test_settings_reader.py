"""`s3_endpoint_settings.json` has one reader, `dms.settings_files.endpoint_settings`, and everything that needs the
endpoint settings (local engine, AWS resource, Glue job arguments, raw-zone sensor, docs) goes through it."""

from __future__ import annotations

from pathlib import Path

import pytest

from consorcio_assets.dms.settings_files import ENDPOINT_FILE, EndpointSettings, SettingsError, endpoint_settings

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("consorcio_assets", "consorcio_core", "consorcio_glue", "glue")
READER = REPO / "consorcio_assets" / "dms" / "settings_files.py"


def test_no_other_module_opens_the_endpoint_settings_file():
    naming = [
        p.relative_to(REPO)
        for package in PACKAGES
        for p in sorted((REPO / package).rglob("*.py"))
        if ENDPOINT_FILE.name in p.read_text() and p != READER
    ]
    assert READER.is_file() and ENDPOINT_FILE.name in READER.read_text()
    assert naming == [], f"read the endpoint settings through dms.settings_files.endpoint_settings(), not in {naming}"


def test_the_reader_returns_the_file_typed_and_validated(tmp_path):
    settings = endpoint_settings()
    assert isinstance(settings, EndpointSettings) and settings.raw["DataFormat"] == settings.data_format
    bad = tmp_path / "s3_endpoint_settings.json"
    bad.write_text('{"DataFormat": "orc"}')
    with pytest.raises(SettingsError, match="DataFormat"):
        endpoint_settings(bad)
    with pytest.raises(SettingsError, match="cannot read DMS settings"):
        endpoint_settings(tmp_path / "absent.json")


def test_every_consumer_sees_the_same_settings():
    from consorcio_assets.dms.resource import LocalDms
    from consorcio_assets.dms.settings_files import load_settings
    from consorcio_assets.tooling.docs import _dms_settings

    settings = endpoint_settings()
    assert load_settings().endpoint == settings and _dms_settings()[0] == settings
    # the raw-zone sensor scans the bucket folder its DMS resource reports
    assert LocalDms(source_url="duckdb:///unused", lake_uri="file:///unused").settings().endpoint == settings
