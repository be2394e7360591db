"""The settings registry is the one list of environment variables: code may read no other, the README shows it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from consorcio_assets.settings import REGISTRY, SETTINGS_BY_NAME, environment_problems, redacted, settings_table
from consorcio_assets.tooling.cli import main

ROOT = Path(__file__).resolve().parents[1]
CODE = (
    [p for d in ("consorcio_assets", "glue") for p in (ROOT / d).rglob("*.py")]
    + sorted(p for d in ("consorcio_core", "consorcio_glue") if (ROOT / d).exists() for p in (ROOT / d).rglob("*.py"))
    + sorted((ROOT / "deploy").glob("*.yaml"))
)  # the deployment's instance and workspace read variables too
NAME = re.compile(r"\b((?:CONSORCIO|DAGSTER)_[A-Z0-9_]*[A-Z0-9])\b")
NOT_VARIABLES = {"DAGSTER_DB", "DAGSTER_YAML"}  # Python constants, not environment variables


def names_in_code() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in CODE:
        for name in NAME.findall(path.read_text()):
            found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def test_every_variable_in_the_code_is_declared():
    undeclared = {
        n: files for n, files in names_in_code().items() if n not in SETTINGS_BY_NAME | dict.fromkeys(NOT_VARIABLES)
    }
    assert not undeclared, f"declare these in consorcio_assets/settings.py REGISTRY: {undeclared}"


def test_every_declared_variable_is_used():
    unused = set(SETTINGS_BY_NAME) - set(names_in_code())
    assert not unused, f"declared but never read: {unused}"


def test_readme_table_is_the_registry():
    readme = (ROOT / "README.md").read_text()
    assert settings_table() in readme, "README's settings table is stale: paste `consorcio settings --markdown`"


@pytest.mark.parametrize(
    "name,value,fragment",
    [
        ("CONSORCIO_GLUE_COPY_STREAMS", "abc", "whole number"),
        ("CONSORCIO_GLUE_COPY_STREAMS", "0", "positive"),
        ("CONSORCIO_CHECK_PARALLEL_WORKERS", "-1", "zero or more"),
        ("CONSORCIO_GLUE_ON_INVALID", "ignore", "fail, reject"),
        ("CONSORCIO_ENV", "prod", "local, aws"),
        ("CONSORCIO_GLUE_MAX_CAPACITY", "x", "a number"),
    ],
)
def test_bad_values_are_named(name, value, fragment):
    problems = environment_problems({name: value})
    assert len(problems) == 1 and problems[0].startswith(name) and fragment in problems[0]


def test_good_values_pass():
    assert (
        environment_problems(
            {
                "CONSORCIO_GLUE_COPY_STREAMS": "4",
                "CONSORCIO_ENV": "AWS",
                "CONSORCIO_GLUE_MAX_CAPACITY": "0.0625",
                "CONSORCIO_CHECK_PARALLEL_WORKERS": "0",
            }
        )
        == []
    )


def test_secrets_are_redacted():
    url = SETTINGS_BY_NAME["CONSORCIO_TARGET_URL"]
    assert "s3cr3t" not in redacted(url, "postgresql://app:s3cr3t@db.example:5432/consorcio")
    assert "db.example" in redacted(url, "postgresql://app:s3cr3t@db.example:5432/consorcio")
    assert redacted(SETTINGS_BY_NAME["CONSORCIO_PII_HMAC_KEY"], "k" * 40) == "***"


def test_cli_prints_every_setting_and_no_secret(monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql://dagster:hunter2hunter2@pg.internal/dagster")
    monkeypatch.setenv("CONSORCIO_PII_HMAC_KEY", "x" * 48)
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert all(s.name in out for s in REGISTRY)
    assert "hunter2hunter2" not in out and "x" * 48 not in out


def test_cli_fails_on_a_bad_value(monkeypatch, capsys):
    monkeypatch.setenv("CONSORCIO_GLUE_ON_INVALID", "maybe")
    assert main(["settings"]) == 1
    assert "CONSORCIO_GLUE_ON_INVALID" in capsys.readouterr().err


ENV_VAR_USE = re.compile(r"""\b(?:EnvVar(?:\.int)?|configured)\(\s*["']([^"']+)["']""")


def test_every_env_var_of_the_resources_is_declared():
    """A resource field configured by `dg.EnvVar` (directly or through `defs.resources.configured`) names a
    registry variable: the UI shows that name, and `consorcio settings` documents it."""
    used = {
        name: str(path.relative_to(ROOT))
        for path in CODE
        if path.suffix == ".py"
        for name in ENV_VAR_USE.findall(path.read_text())
    }
    assert "CONSORCIO_DMS_TASK_ARN" in used  # the pattern finds the definitions' variables
    undeclared = {name: path for name, path in used.items() if name not in SETTINGS_BY_NAME}
    assert not undeclared, f"declare these in consorcio_assets/settings.py REGISTRY: {undeclared}"
