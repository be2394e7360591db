"""What the UI shows is true and complete: every column described, every check linked to its runbook section,
the checks `verify` leaves out named with a reason, column lineage one hop at a time, the Aurora freshness
window, and byte counts people can read."""

from __future__ import annotations

import re
from datetime import timedelta

import dagster as dg
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from consorcio_assets.catalog import catalog
from consorcio_assets.checks.runbook import heading_anchor
from consorcio_assets.common.stages import AURORA, S3_RAW, SQLSERVER, STAGES, TRANSFORMED, asset_key
from consorcio_assets.common.units import human_bytes, readable_bytes
from consorcio_assets.defs.checks import excluded_checks, excluded_summary
from consorcio_assets.defs.glue_aurora import column_lineage
from consorcio_assets.tooling.docs import render_docs


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from consorcio_assets.definitions import defs as load

    return load()


@pytest.fixture(scope="module")
def graph(defs):
    return defs.resolve_asset_graph()


def _schema(graph, key: dg.AssetKey) -> dg.TableSchema | None:
    value = graph.get(key).metadata.get("dagster/column_schema")
    return getattr(value, "schema", value)


def test_every_column_of_every_asset_has_a_description(graph):
    undescribed = []
    for t in catalog():
        for stage in STAGES:
            schema = _schema(graph, asset_key(stage, t))
            assert schema is not None, f"{stage}/{t.target_name} has no column schema"
            undescribed += [
                f"{stage}/{t.target_name}.{c.name}" for c in schema.columns if not (c.description or "").strip()
            ]
    analytics = [k for k in graph.get_all_asset_keys() if k.path[0] == "analytics"]
    assert analytics and all(_schema(graph, k) for k in analytics)
    assert "cpf_cnpj_token" in {c.name for c in _schema(graph, dg.AssetKey(["analytics", "cliente"])).columns}
    for key in graph.get_all_asset_keys():
        schema = _schema(graph, key) if graph.has(key) else None
        if schema is not None:
            undescribed += [
                f"{key.to_user_string()}.{c.name}" for c in schema.columns if not (c.description or "").strip()
            ]
    assert not undescribed, f"columns without a description: {undescribed[:10]} ({len(undescribed)})"


def test_descriptions_carry_the_contract_comment_and_the_business_rules(graph):
    columns = {c.name: c.description for c in _schema(graph, asset_key(AURORA, "simulacao")).columns}
    assert len(columns) >= 26
    assert "1 site, 2 app" in columns["canal"]  # the contract's comment
    assert "ParcelaIntegral = B + S_1" in columns["parcela_integral"]  # business-rules.md
    assert "foreign key to consorcio.plano_comercial.plano_id" in columns["plano_id"].lower()
    assert "PII" in {c.name: c.description for c in _schema(graph, asset_key(AURORA, "cliente")).columns}["nome"]


def test_every_check_links_its_runbook_section(graph):
    runbook = render_docs()["runbook.md"]
    anchors = {heading_anchor(line) for line in runbook.splitlines() if line.startswith("#")}
    for key in graph.asset_check_keys:
        link = graph.get_check_spec(key).metadata.get("runbook")
        assert isinstance(link, dg.UrlMetadataValue), f"{key} has no runbook link"
        path, _, anchor = link.url.partition("#")
        assert path.endswith("docs/runbook.md") and anchor in anchors, f"{key.name}: {link.url}"
    rule = next(k for k in graph.asset_check_keys if k.name.startswith("rule_"))
    assert graph.get_check_spec(rule).metadata["runbook"].url.endswith("#business-rules")


def test_verify_names_the_checks_it_does_not_run_and_why(defs, graph):
    from consorcio_assets.defs.checks import verify_migration

    verified = verify_migration.selection.resolve_checks(graph)
    assert len(verified) == len(graph.asset_check_keys) - len(excluded_checks(defs))
    excluded = dict(excluded_checks(defs))
    assert excluded, "migrate_all has checks that verify cannot run"
    assert set(excluded) | verified == set(graph.asset_check_keys)
    assert not set(excluded) & verified
    assert all("materializes" in why for why in excluded.values())
    summary = excluded_summary(defs)
    rejects = sum(1 for key in excluded if key.name == "no_rejected_rows")
    assert any(f"no_rejected_rows on {rejects} asset(s)" in line for line in summary)


def test_column_lineage_is_one_hop_to_a_declared_upstream_column(graph):
    for t in catalog():
        for stage in (TRANSFORMED, AURORA):
            key = asset_key(stage, t)
            upstream = graph.get(key).parent_keys
            for column, deps in column_lineage(t, stage).deps_by_column.items():
                for dep in deps:
                    assert dep.asset_key in upstream, f"{key.to_user_string()}.{column} skips a stage"
                    names = {c.name for c in _schema(graph, dep.asset_key).columns}
                    assert dep.column_name in names, f"{key.to_user_string()}.{column} ← {dep}"
    # declared on the definitions too, so the UI shows it before the first load
    for t in catalog():
        for stage in (S3_RAW, TRANSFORMED, AURORA):
            declared = graph.get(asset_key(stage, t)).metadata["dagster/column_lineage"]
            lineage = getattr(declared, "column_lineage", declared)
            names = {c.name for c in _schema(graph, asset_key(stage, t)).columns}
            assert set(lineage.deps_by_column) == names, f"{stage}/{t.target_name}"
            for deps in lineage.deps_by_column.values():
                assert all(d.asset_key in graph.get(asset_key(stage, t)).parent_keys for d in deps)
    assert asset_key(S3_RAW, "simulacao") in graph.get(asset_key(TRANSFORMED, "simulacao")).parent_keys
    assert asset_key(SQLSERVER, "simulacao") in graph.get(asset_key(S3_RAW, "simulacao")).parent_keys


def test_aurora_assets_are_overdue_after_26_hours(graph):
    for t in catalog():
        policy = graph.get(asset_key(AURORA, t)).freshness_policy
        assert isinstance(policy, dg.FreshnessPolicy) and policy.fail_window.to_timedelta() == timedelta(hours=26)
        assert graph.get(asset_key(TRANSFORMED, t)).freshness_policy is None


@given(st.integers(min_value=0, max_value=2**50))
@example(1280)  # 1.25 KiB shows as "1.2": off by exactly half a digit, the most one decimal may be
def test_human_bytes_is_readable_and_keeps_the_exact_count(n):
    text = human_bytes(n)
    exact = re.search(r"([\d,]+) bytes", text).group(1)
    assert int(exact.replace(",", "")) == n
    if n >= 1024:
        value, unit = re.match(r"([\d.]+) (KiB|MiB|GiB|TiB) \(", text).groups()
        power = ["KiB", "MiB", "GiB", "TiB"].index(unit) + 1
        assert 1 <= float(value) * 1.0001 and round(float(value)) <= 1024
        assert abs(float(value) * 1024**power - n) <= 0.05 * 1024**power * 1.0001  # half a digit, float-exact


def test_readable_bytes_rewrites_byte_counts_only():
    out = readable_bytes({"bytes_copied": dg.MetadataValue.int(7229699), "rows_read": 5, "bytes_note": "x"})
    assert out["bytes_copied"] == dg.MetadataValue.text("6.9 MiB (7,229,699 bytes)")
    assert out["rows_read"] == 5 and out["bytes_note"] == "x"


def test_a_tables_upstream_is_its_own_chain_so_materialize_all_reloads_just_it(graph):
    """The README's reload: `aurora/<t>` → Lineage → Upstream → Materialize all (3), for every table, and a
    parent's reload leaves no child "Unsynced" (no Aurora table is another's upstream)."""
    for t in catalog():
        upstream = dg.AssetSelection.assets(asset_key(AURORA, t)).upstream().resolve(graph)
        # the observed source (`sqlserver/<t>`) shows in the UI but is not materialized
        assert upstream - {asset_key(SQLSERVER, t)} == {asset_key(s, t) for s in (S3_RAW, TRANSFORMED, AURORA)}, t.name
        assert all(graph.get(k).is_materializable for k in upstream - {asset_key(SQLSERVER, t)})
    spec = graph.get(asset_key(AURORA, "plano_comercial"))
    assert "consorcio.segmento" in spec.metadata["foreign_key_parents"]
