"""The Dagster UI as a data engineer uses it: a real webserver and daemon (`consorcio ui`), driven by Debian's
Chromium through Playwright. Screenshots land in test-artifacts/ui/."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@pytest.fixture
def dagster_ui(seeded_env, pg_server_url):
    """`consorcio ui` on a free port, with its own Dagster storage database."""
    import psycopg

    storage_db = f"dagster_ui_{os.getpid()}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{storage_db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{storage_db}"')
    port = _free_port()
    env = dict(
        os.environ,
        DAGSTER_HOME=str(seeded_env / "dagster_home"),
        DAGSTER_PG_URL=pg_server_url.replace("/postgres?", f"/{storage_db}?", 1),
    )
    log = open(seeded_env / "ui.log", "w")  # noqa: SIM115 - the UI writes to it until teardown closes it
    process = subprocess.Popen(
        [sys.executable, "-m", "consorcio_assets.tooling.cli", "ui", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/server_info", timeout=180)
        yield f"http://127.0.0.1:{port}", env
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{storage_db}" WITH (FORCE)')


def _column_lineage(base: str, key: list[str]) -> dict[str, list]:
    """`dagster/column_lineage` of an asset's definition, through the webserver's GraphQL."""
    import json

    query = """query($k: [AssetKeyInput!]!) { assetNodes(assetKeys: $k) { metadataEntries { label
        ... on TableColumnLineageMetadataEntry { lineage { columnName columnDeps { assetKey { path } columnName } } }
    } } }"""
    body = json.dumps({"query": query, "variables": {"k": [{"path": key}]}}).encode()
    request = urllib.request.Request(f"{base}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        entries = json.load(response)["data"]["assetNodes"][0]["metadataEntries"]
    entry = next(e for e in entries if e["label"] == "dagster/column_lineage")
    return {
        line["columnName"]: [(d["assetKey"]["path"], d["columnName"]) for d in line["columnDeps"]]
        for line in entry["lineage"]
    }


def _dismiss_welcome(page) -> None:
    with contextlib.suppress(Exception):  # the community dialog only shows on a fresh instance
        page.get_by_role("button", name="Skip").click(timeout=5000)


def test_lineage_of_a_table_and_materializing_it_from_the_ui(dagster_ui):
    from playwright.sync_api import expect, sync_playwright

    base, _ = dagster_ui
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{base}/asset-groups", wait_until="networkidle")
        _dismiss_welcome(page)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(ARTIFACTS / "01-global-lineage.png"))
        for group in ("sqlserver", "s3_raw", "transformed", "aurora", "analytics"):
            expect(page.get_by_text(group, exact=True).first).to_be_visible(timeout=60_000)

        page.goto(
            f"{base}/assets/aurora/segmento?view=lineage&lineageScope=upstream&lineageDepth=4", wait_until="networkidle"
        )
        _dismiss_welcome(page)
        for stage in ("sqlserver", "s3_raw", "transformed", "aurora"):
            expect(page.get_by_text(stage, exact=True).first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Asset checks").first).to_be_visible()
        assert page.get_by_text("segmento", exact=True).count() >= 4
        page.screenshot(path=str(ARTIFACTS / "02-segmento-four-stages.png"))

        # Materialize the table's chain: s3_raw, transformed and aurora of segmento only (sqlserver is observed).
        page.get_by_role("button", name="Materialize all (3)").click()
        expect(page.get_by_text("Launched run")).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "03-launched.png"))
        page.get_by_text("View", exact=True).click()
        expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=300_000)
        page.screenshot(path=str(ARTIFACTS / "04-run-succeeded.png"))

        page.goto(f"{base}/assets/aurora/segmento?view=checks", wait_until="networkidle")
        expect(page.get_by_text("Passed").first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "05-segmento-checks.png"))

        # A child table's upstream is its own chain too (foreign-key parents are not lineage edges).
        page.goto(
            f"{base}/assets/aurora/simulacao?view=lineage&lineageScope=upstream&lineageDepth=4",
            wait_until="networkidle",
        )
        expect(page.get_by_role("button", name="Materialize all (3)")).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "06-simulacao-own-chain.png"))
        browser.close()

    # The OSS UI does not draw column lineage (a Dagster+ view); the webserver serves it, one stage per hop.
    lineage = _column_lineage(base, ["aurora", "segmento"])
    assert lineage["codigo"] == [(["transformed", "segmento"], "codigo")]

    from unittest import mock

    import dagster as dg

    _, env = dagster_ui
    psycopg2_url = env["DAGSTER_PG_URL"].replace("postgresql://", "postgresql+psycopg2://")
    with mock.patch.dict(os.environ, {**env, "DAGSTER_PG_URL": psycopg2_url}), dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
    assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
    assert {k.to_user_string() for k in runs[0].asset_selection} == {
        "s3_raw/segmento",
        "transformed/segmento",
        "aurora/segmento",
    }
