"""The living documentation: docs/ is what `consorcio docs` generates now, and the data dictionary covers the
whole catalog with its PII flags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from consorcio_assets.catalog import catalog
from consorcio_assets.tooling.docs import check_family, render_docs, write_docs
from consorcio_assets.tooling.pictures import SOURCE_MARK, source_digest

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return render_docs()


def test_committed_docs_are_up_to_date(rendered):
    stale = [name for name, text in rendered.items() if not (DOCS / name).exists() or (DOCS / name).read_text() != text]
    assert not stale, f"docs/ is out of date ({', '.join(stale)}): run `consorcio docs`"


def test_write_docs_writes_what_render_docs_returns_and_the_images(tmp_path, rendered):
    out = tmp_path / "docs"
    paths = write_docs(out)
    written = sorted(p.relative_to(out).as_posix() for p in paths)
    assert sorted(rendered) == [
        "CODEOWNERS",
        "architecture.md",
        "data-model.md",
        "images/architecture.dot",
        "images/er-model.dot",
        "runbook.md",
    ]
    assert written == sorted([*rendered, *IMAGES])
    assert all((out / name).read_text() == text for name, text in rendered.items())
    assert (out / "images/architecture.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


IMAGES = ["images/architecture.png", "images/architecture.svg", "images/er-model.svg"]


def test_committed_images_were_drawn_from_the_current_sources(rendered):
    """Sources, not pixels: each SVG carries the digest of the dot source it was rendered from."""
    for svg, source in (("architecture.svg", "architecture.dot"), ("er-model.svg", "er-model.dot")):
        text = (DOCS / "images" / svg).read_text()
        assert text.lstrip().startswith("<?xml") and "<svg" in text
        assert SOURCE_MARK.format(source_digest(rendered[f"images/{source}"])) in text, f"{svg} is stale"
        assert "file://" not in text and 'href="/' not in text  # icons embedded, no local paths
    assert (DOCS / "images/architecture.png").stat().st_size > 10_000
    assert "](docs/images/architecture.png)" in (DOCS.parent / "README.md").read_text()


def test_architecture_drawing_uses_the_aws_icons_and_the_definitions(rendered):
    from consorcio_assets.definitions import defs

    source = rendered["images/architecture.dot"]
    for icon in (
        "aws/migration/database-migration-service.png",
        "aws/analytics/glue.png",
        "aws/database/aurora.png",
        "aws/storage/simple-storage-service-s3.png",
    ):
        assert f'"$DIAGRAMS_RESOURCES/{icon}"' in source
    d = defs()
    for name in [j.name for j in d.jobs] + [s.name for s in d.sensors]:
        assert name in source
    assert f"{len(catalog())} assets" in source


def test_er_model_has_every_table_key_and_foreign_key(rendered):
    source = rendered["images/er-model.dot"]
    cat = catalog()
    for t in cat:
        assert f"{t.qualified_target}</B>" in source  # view snapshots: consorcio_snapshot
        for fk in t.foreign_keys:
            parent = cat[fk.ref_table]
            assert re.search(rf"  {parent.target_name}:\w+:e -> {t.target_name}:\w+:w \[label=\"{fk.name}\"\]", source)
        pk = t.column(t.primary_key[0]).target_name
        assert re.search(rf'PORT="{pk}">{pk}</TD>.*?<TD PORT="{pk}_out">PK', source)


def test_official_aws_docs_per_stage_and_focal_points_with_codeowners(rendered):
    for doc in ("architecture.md", "runbook.md"):
        text = rendered[doc]
        for service in ("/dms/latest/userguide/", "/glue/latest/dg/", "/AmazonRDS/latest/AuroraUserGuide/"):
            assert f"https://docs.aws.amazon.com{service}" in text, f"{doc}: {service}"
        assert "## Focal points" in text
        for role in ("Data engineering", "Solutions architecture", "Infrastructure"):
            assert f"| {role} |" in text
    owners = rendered["CODEOWNERS"]
    root = DOCS.parent
    for line in owners.splitlines():
        if line and not line.startswith("#"):
            path, team = line.split()
            assert (root / path.strip("/")).exists(), path
            assert team.startswith("@")
    assert "/infra/ @consorcio-migration/infrastructure" in owners


def _dictionary_rows(data_model: str) -> dict[str, dict[str, dict[str, str]]]:
    """table → column → row cells, parsed from the data dictionary's Markdown tables."""
    tables: dict[str, dict[str, dict[str, str]]] = {}
    current, header = None, None
    for line in data_model.split("## Data dictionary", 1)[1].splitlines():
        if m := re.match(r"### `consorcio(?:_snapshot)?\.(\w+)`", line):  # view snapshots: consorcio_snapshot
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
    for setting in (
        "CONSORCIO_ENV",
        "CONSORCIO_LAKE_URI",
        "CONSORCIO_TARGET_URL",
        "CONSORCIO_DMS_TASK_ARN",
        "CONSORCIO_GLUE_JOB_NAME",
        "DAGSTER_PG_URL",
    ):
        assert f"`{setting}`" in text
    for section in (
        "Stage parity",
        "Column aggregates",
        "Row-level reconciliation",
        "Precision",
        "Keys and constraints",
        "Business rules",
        "Views",
        "Schema drift",
        "Raw zone",
        "Rejected rows",
    ):
        assert f"### {section}" in text


@pytest.mark.parametrize(
    "name, family",
    [
        ("raw_row_count_matches_source", "Raw zone"),
        ("row_count_matches_source", "Stage parity"),
        ("rule_documents", "Business rules"),
        ("lob_not_truncated", "Precision (100 ns and LOB truncation)"),
        ("something_new", "other (see the check's description in the UI)"),
    ],
)
def test_check_family(name, family):
    assert check_family(name) == family
