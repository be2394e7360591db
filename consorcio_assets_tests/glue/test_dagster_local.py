"""`transformed/<table>` and `aurora/<table>` materialized through Dagster: PipesGlueClient driving the local
Glue client, which runs the real job script, against raw files written as DMS writes them."""

from __future__ import annotations

import os
import re

import dagster as dg
import pytest

from consorcio_assets.defs.glue_aurora import glue_transform_and_load
from consorcio_assets_tests.glue import data
from consorcio_assets_tests.glue.data import CAT
from consorcio_assets_tests.glue.helpers import fetch, local_resources, write_raw

TABLES = {
    "UnidadeFederativa": data.UFS,
    "Segmento": data.segmentos(),
    "Administradora": data.administradoras(),
    "PlanoComercial": data.planos(),
}


def _keys(names, stages=("transformed", "aurora")):
    return [dg.AssetKey([stage, CAT[n].target_name]) for n in names for stage in stages]


def _materialize(names, stages=("transformed", "aurora"), instance=None):
    return dg.materialize(
        [glue_transform_and_load],
        selection=_keys(names, stages),
        raise_on_error=False,
        instance=instance,
        resources=local_resources(max_concurrent_runs=2),
    )


@pytest.fixture
def raw_lake(local_env):
    lake = local_env / "lake"
    for name, rows in TABLES.items():
        write_raw(lake, CAT[name], data.table(name, rows))
    return lake


def _materializations(result) -> dict[str, dict]:
    return {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}


def test_materializes_transformed_and_aurora_through_pipes(raw_lake, local_env):
    url = os.environ["CONSORCIO_TARGET_URL"]
    with dg.instance_for_test() as instance:
        result = _materialize(TABLES, instance=instance)
        logs = [e.user_message for e in instance.all_logs(result.run_id)]
    assert result.success
    meta = _materializations(result)
    assert set(meta) == {k.to_user_string() for k in _keys(TABLES)}
    aurora = meta["aurora/plano_comercial"]
    assert aurora["dagster/row_count"].value == 5 and aurora["rows_rejected"].value == 0
    assert aurora["dagster/table_name"].value == "consorcio.consorcio.plano_comercial"
    assert aurora["rows_per_s"].value > 0 and aurora["duration_s"].value > 0
    schema = aurora["dagster/column_schema"].value
    assert [c.name for c in schema.columns][:3] == ["plano_id", "administradora_id", "segmento_id"]
    lineage = aurora["dagster/column_lineage"].value.deps_by_column["pct_taxa_adm"]
    assert lineage == [
        dg.TableColumnDep(asset_key=dg.AssetKey(["transformed", "plano_comercial"]), column_name="pct_taxa_adm")
    ]
    assert meta["transformed/plano_comercial"]["dagster/column_lineage"].value.deps_by_column["pct_taxa_adm"] == [
        dg.TableColumnDep(asset_key=dg.AssetKey(["s3_raw", "plano_comercial"]), column_name="PctTaxaAdm")
    ]
    assert re.fullmatch(r"[\d.]+ (bytes|KiB|MiB) \([\d,]+ bytes\)|[\d,]+ bytes", aurora["bytes_copied"].value)
    # local mode: no AWS console links or AWS wording, in metadata or in the run's logs
    for values in meta.values():
        assert not [k for k in values if "AWS" in k], sorted(values)
        assert not [v for v in values.values() if "console.aws" in str(getattr(v, "value", v))]
    assert aurora["glue/run_id"].value.startswith("jr_")
    assert not [m for m in logs if "AWS" in m], [m for m in logs if "AWS" in m][:3]
    assert any("Started local Glue job" in m for m in logs)
    transformed = meta["transformed/segmento"]
    assert transformed["rows_read"].value == 4 and transformed["files_written"].value == 1
    assert transformed["uri"].value == (local_env / "lake" / "transformed" / "segmento").as_uri()
    checks = result.get_asset_check_evaluations()
    assert {(c.asset_key.path[-1], c.check_name, c.passed) for c in checks} == {
        (CAT[n].target_name, "no_rejected_rows", True) for n in TABLES
    }
    # the child's keys were validated on its staging table (parents first), so its swap left none NOT VALID
    assert aurora["foreign_keys_not_valid"].value == 0
    assert (
        fetch(
            url,
            "SELECT bool_and(convalidated) FROM pg_constraint WHERE contype = 'f' "
            "AND connamespace = 'consorcio'::regnamespace",
        )[0][0]
        is True
    )
    assert fetch(url, "SELECT count(*) FROM consorcio.plano_comercial")[0][0] == 5
    assert list((local_env / "glue" / "logs").rglob("stderr"))  # the local client keeps each run's logs


def test_a_failed_parent_skips_its_children_and_fails_the_step(raw_lake, local_env):
    bad = data.segmentos()
    bad[0]["Codigo"] = "MUITO-LONGO-DEMAIS"
    write_raw(raw_lake, CAT["Segmento"], data.table("Segmento", bad))
    result = _materialize(["UnidadeFederativa", "Segmento", "PlanoComercial"])
    assert not result.success
    failure = result.failure_data_for_node("glue_transform_and_load").error.message
    assert "Segmento.Codigo: longer than varchar(10)" in failure and "SegmentoId=1" in failure
    assert "PlanoComercial: skipped: parent table(s) Segmento failed" in failure
    # the batch publishes all of its loads or none: UnidadeFederativa loaded fine but was not swapped in
    assert "Nothing was published to Aurora" in failure
    assert set(_materializations(result)) == set()
    assert not (raw_lake / "transformed" / "unidade_federativa").exists()  # its parts were not swapped in either
    url = os.environ["CONSORCIO_TARGET_URL"]
    assert fetch(url, "SELECT to_regclass('consorcio.unidade_federativa')")[0][0] is None
    assert (
        fetch(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'consorcio_staging' AND tablename <> '_staged'")[
            0
        ][0]
        == 0
    )  # the staged tables were dropped


def test_aurora_alone_loads_from_the_transformed_zone(raw_lake, local_env):
    assert _materialize(["UnidadeFederativa"], stages=("transformed",)).success
    for path in (raw_lake / "raw").rglob("*.parquet"):
        path.unlink()  # the aurora stage must not need the raw zone
    result = _materialize(["UnidadeFederativa"], stages=("aurora",))
    assert result.success
    assert set(_materializations(result)) == {"aurora/unidade_federativa"}
    loaded = fetch(os.environ["CONSORCIO_TARGET_URL"], "SELECT uf FROM consorcio.unidade_federativa ORDER BY uf")
    assert loaded == [("DF",), ("RJ",), ("SP",)]
