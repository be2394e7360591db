"""The `s3_raw` assets and raw-zone checks, run from the project's full Definitions on a small stand-in."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from consorcio_assets.catalog import catalog
from consorcio_assets.common.stages import S3_RAW, SQLSERVER, asset_key
from consorcio_assets.common.units import human_bytes
from consorcio_assets.defs.s3_raw import FILES_CHECK, ROW_COUNT_CHECK, SCHEMA_CHECK
from consorcio_assets.dms.resource import LocalDms

SUBSET = ["Grupo", "Simulacao", "SimulacaoLance", "vw_FunilMensal"]


def key(name: str) -> dg.AssetKey:
    return asset_key(S3_RAW, catalog()[name])


@pytest.fixture(scope="module")
def project_defs() -> dg.Definitions:
    from consorcio_assets.definitions import defs

    return defs()


@pytest.fixture
def dms(source, tmp_path) -> LocalDms:
    """The `dms` resource on this test's stand-in and lake, injected into the project's definitions."""
    return LocalDms(lake_uri=(tmp_path / "lake").as_uri(), source_url=f"duckdb:///{source}")


def run(defs: dg.Definitions, instance, selection: dg.AssetSelection, dms: LocalDms, name: str = "subset"):
    job = dg.define_asset_job(name, selection=selection)
    injected = dg.Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, jobs=[job], resources={**defs.resources, "dms": dms}
    )
    return injected.resolve_job_def(name).execute_in_process(instance=instance, raise_on_error=False)


def evaluations(result) -> dict[tuple[str, str], bool]:
    return {(e.asset_key.path[-1], e.check_name): e.passed for e in result.get_asset_check_evaluations()}


def test_specs_cover_every_table_and_view_with_their_upstream_and_kinds(project_defs):
    specs = {s.key: s for s in project_defs.resolve_all_asset_specs() if s.key.path[0] == S3_RAW}
    assert set(specs) == {asset_key(S3_RAW, t) for t in catalog()}
    spec = specs[key("SimulacaoParcela")]
    assert {d.asset_key for d in spec.deps} == {asset_key(SQLSERVER, catalog()["SimulacaoParcela"])}
    assert spec.kinds == {"dms", "s3", "parquet"} and spec.group_name == S3_RAW and spec.owners
    columns = spec.metadata["dagster/column_schema"].columns
    assert [c.name for c in columns][:2] == ["SimulacaoId", "NumeroParcela"]  # DMS keeps the source names
    checks = {c.name for c in project_defs.resolve_asset_graph().asset_check_keys if c.asset_key == spec.key}
    assert checks == {ROW_COUNT_CHECK, SCHEMA_CHECK, FILES_CHECK}


def test_materializing_a_subset_loads_just_it_records_metadata_and_passes_the_checks(project_defs, dms, tmp_path):
    lake = tmp_path / "lake"
    with dg.instance_for_test() as instance:
        result = run(project_defs, instance, dg.AssetSelection.assets(*(key(n) for n in SUBSET)), dms)
        assert result.success
        assert sorted(p.name for p in (lake / "raw" / "dbo").iterdir()) == sorted(SUBSET)
        meta = {
            e.materialization.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()
        }
        sim = {k: v.value for k, v in meta[key("Simulacao")].items()}
        assert sim["dagster/row_count"] == sim["source_row_count"] == sim["dms/full_load_rows"] == 40
        assert sim["files_written"] == 4 and sim["dms/segments"] == 4  # parallel-load segments
        size = sum(f.stat().st_size for f in (lake / "raw/dbo/Simulacao").rglob("*.parquet"))
        assert sim["bytes_written"] == human_bytes(size)
        assert sim["s3_uri"] == f"{lake.as_uri()}/raw/dbo/Simulacao/"
        assert sim["dms/table_state"] == "Table completed" and sim["dms/statistics"]["FullLoadRows"] == 40
        assert sim["rows_per_second"] > 0 and sim["duration_seconds"] >= 0
        assert sim["lob_values_truncated"] == 1 and "dbo.Simulacao.Observacao" in sim["lob_truncation_risk"][0]
        assert evaluations(result) == {
            (key(n).path[-1], c): True for n in SUBSET for c in (ROW_COUNT_CHECK, SCHEMA_CHECK, FILES_CHECK)
        }

        # a leftover from some other load, and a file whose schema drifted: the checks see both
        grupo = lake / "raw" / "dbo" / "Grupo"
        shutil.copy(grupo / "LOAD00000001.parquet", grupo / "LOAD00000003.parquet")
        lance = next((lake / "raw" / "dbo" / "SimulacaoLance").glob("LOAD*"))
        table = pq.read_table(lance)
        pq.write_table(table.set_column(0, "LanceId", table.column("LanceId").cast("int32")), lance)
        checks = run(
            project_defs,
            instance,
            dg.AssetSelection.checks_for_assets(key("Grupo"), key("SimulacaoLance")),
            dms,
            name="checks",
        )
        assert evaluations(checks) == {
            ("grupo", ROW_COUNT_CHECK): False,
            ("grupo", SCHEMA_CHECK): True,
            ("grupo", FILES_CHECK): False,
            ("simulacao_lance", ROW_COUNT_CHECK): True,
            ("simulacao_lance", SCHEMA_CHECK): False,
            ("simulacao_lance", FILES_CHECK): True,
        }
        failed = {e.check_name: e.metadata for e in checks.get_asset_check_evaluations() if not e.passed}
        assert (
            "raw/dbo/Grupo/LOAD00000003.parquet: not written by the latest load"
            in failed[FILES_CHECK]["problems"].value
        )
        assert failed[ROW_COUNT_CHECK]["rows_in_files"].value == 4  # the leftover doubles the two rows


def test_a_failed_load_records_nothing_and_leaves_the_lake_as_it_was(project_defs, source, dms, tmp_path, monkeypatch):
    import duckdb

    with duckdb.connect(str(source)) as con:
        con.execute('DROP VIEW dbo."vw_FunilMensal"')
    with dg.instance_for_test() as instance:
        result = run(project_defs, instance, dg.AssetSelection.assets(key("Grupo"), key("vw_FunilMensal")), dms)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert "dbo.vw_FunilMensal: the view does not exist in the source" in str(failure.event_specific_data.error)
        assert not result.get_asset_materialization_events()
    assert not Path(tmp_path / "lake" / "raw").exists()


def test_raw_row_count_check_fails_naming_a_table_written_during_its_extraction():
    from types import SimpleNamespace

    from consorcio_assets.catalog import catalog as packaged
    from consorcio_assets.defs.s3_raw import _row_count

    facts = [SimpleNamespace(rows=10, error=None)]
    meta = {"source_row_count": 10, "dms/full_load_rows": 10}
    assert _row_count(packaged()["Simulacao"], facts, meta).passed
    changed = {**meta, "source_changed_during_load": {"rows_before": 10, "rows_after": 10, "rows_changed": 3}}
    result = _row_count(packaged()["Simulacao"], facts, changed)
    assert not result.passed and result.metadata["rows_changed_during_load"].value == 3
    assert "dbo.Simulacao changed while DMS extracted it" in result.description
    assert "3 row(s) written after the start" in result.description
