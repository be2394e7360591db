"""The living documentation: docs/ is what `consorcio docs` generates now, and the data dictionary covers the
whole catalog with its PII flags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from consorcio_assets.catalog import catalog
from consorcio_assets.docs import check_family, render_docs, write_docs

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return render_docs()


def test_committed_docs_are_up_to_date(rendered):
    stale = [name for name, text in rendered.items()
             if not (DOCS / name).exists() or (DOCS / name).read_text() != text]
    assert not stale, f"docs/ is out of date ({', '.join(stale)}): run `consorcio docs`"


def test_write_docs_writes_what_render_docs_returns(tmp_path, rendered):
    paths = write_docs(tmp_path / "docs")
    assert sorted(p.name for p in paths) == sorted(rendered) == ["architecture.md", "data-model.md", "runbook.md"]
    assert all(p.read_text() == rendered[p.name] for p in paths)


def _dictionary_rows(data_model: str) -> dict[str, dict[str, dict[str, str]]]:
    """table → column → row cells, parsed from the data dictionary's Markdown tables."""
    tables: dict[str, dict[str, dict[str, str]]] = {}
    current, header = None, None
    for line in data_model.split("## Data dictionary", 1)[1].splitlines():
        if m := re.match(r"### `consorcio\.(\w+)`", line):
            current, header = m.group(1), None
            tables[current] = {}
        elif current and line.startswith("| ") and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            if header is None:
                header = cells
            else:
                row = dict(zip(header, cells))
                tables[current][row["column"].strip("`")] = row
    return tables


def test_data_dictionary_lists_every_table_and_column_with_types_keys_and_pii(rendered):
    tables = _dictionary_rows(rendered["data-model.md"])
    cat = catalog()
    assert set(tables) == {t.target_name for t in cat}
    for t in cat:
        rows = tables[t.target_name]
        for c in t.columns:
            row = rows[c.target_name]
            assert row["PostgreSQL type"] == f"`{c.postgres_type}`"
            assert row["source column"] == f"`{c.name}`"
            assert row["SQL Server type"] == f"`{c.sqlserver_type_sql}`"
            assert row["null"] == ("NULL" if c.nullable else "NOT NULL")
            assert row["PII"] == ("yes" if c.pii else ""), f"{t.name}.{c.name} PII flag"
            assert ("PK" in row["key"]) == (c.name in t.primary_key)
            if c.offset_column:
                assert rows[c.offset_column]["PostgreSQL type"] == "`smallint`"
        expected = {c.target_name for c in t.columns} | {c.offset_column for c in t.columns if c.offset_column}
        assert set(rows) == expected


def test_pii_columns_are_flagged_and_named(rendered):
    pii = {(t.target_name, c.target_name) for t in catalog() for c in t.columns if c.pii}
    assert len(pii) >= 6  # the contract classifies the customer's CPF/CNPJ, name, e-mail, phone, birth, income
    tables = _dictionary_rows(rendered["data-model.md"])
    flagged = {(t, c) for t, rows in tables.items() for c, row in rows.items() if row["PII"] == "yes"}
    assert flagged == pii
    diagram = rendered["data-model.md"].split("```mermaid", 1)[1].split("```", 1)[0]
    in_diagram = set(re.findall(r"^    \w+ (\w+)[^\n]*· PII", diagram, flags=re.M))
    assert in_diagram == {column for _, column in pii}
    for table, column in pii:
        assert f"`consorcio.{table}.{column}`" in rendered["runbook.md"]


def test_er_diagram_has_every_table_and_foreign_key(rendered):
    diagram = rendered["data-model.md"].split("```mermaid", 1)[1].split("```", 1)[0]
    cat = catalog()
    for t in cat:
        assert f"\n  {t.target_name} {{\n" in diagram
        for fk in t.foreign_keys:
            assert re.search(rf"\n  {cat[fk.ref_table].target_name} (\|\||\|o)--o\{{ {t.target_name} : ", diagram)


def test_architecture_shows_every_stage_and_every_check(rendered):
    from consorcio_assets.definitions import defs

    text = rendered["architecture.md"]
    assert "flowchart LR" in text
    for stage in ("sqlserver", "s3_raw", "transformed", "aurora"):
        for t in catalog():
            assert f"`{stage}/{t.target_name}`" in text
    graph = defs().resolve_asset_graph()
    for key in graph.asset_check_keys:
        assert f"`{key.name}`" in text
        assert f"`{key.name}` | {key.asset_key.path[0]} |" in rendered["runbook.md"]


def test_runbook_names_the_aws_settings_and_every_check_family(rendered):
    text = rendered["runbook.md"]
    for setting in ("CONSORCIO_ENV", "CONSORCIO_LAKE_URI", "CONSORCIO_TARGET_URL", "CONSORCIO_DMS_TASK_ARN",
                    "CONSORCIO_GLUE_JOB_NAME", "DAGSTER_PG_URL"):
        assert f"`{setting}`" in text
    for section in ("Stage parity", "Column aggregates", "Row-level reconciliation", "Precision", "Keys and constraints",
                    "Business rules", "Views", "Schema drift", "Raw zone", "Rejected rows"):
        assert f"### {section}" in text


@pytest.mark.parametrize("name, family", [
    ("raw_row_count_matches_source", "Raw zone"), ("row_count_matches_source", "Stage parity"),
    ("rule_documents", "Business rules"), ("lob_not_truncated", "Precision (100 ns and LOB truncation)"),
    ("something_new", "other (see the check's description in the UI)"),
])
def test_check_family(name, family):
    assert check_family(name) == family
