"""Table mappings from the catalog, the settings files DMS gets, and how the local engine reads both back."""

from __future__ import annotations

import botocore.session
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from consorcio_assets.catalog import catalog
from consorcio_assets.dms.mappings import (
    locator,
    segment_boundaries,
    segment_predicates,
    selected_tables,
    table_mappings,
)
from consorcio_assets.dms.settings_files import (
    DmsSettings,
    EndpointSettings,
    SettingsError,
    TaskSettings,
    endpoint_settings,
    load_settings,
    load_task_settings,
)

BOUNDS = {"Simulacao": [["5001"], ["10001"], ["15001"]], "SimulacaoParcela": [["5001"], ["10001"], ["15001"]]}


def selections(mappings: dict) -> dict[str, dict]:
    return {r["object-locator"]["table-name"]: r for r in mappings["rules"] if r["rule-type"] == "selection"}


def test_every_table_and_view_is_selected_with_its_type_and_a_load_order_parents_first():
    cat = catalog()
    rules = selections(table_mappings(cat, BOUNDS))
    assert set(rules) == {locator(t.name) for t in cat}
    assert rules["vw[_]FunilMensal"]["object-locator"]["table-type"] == "view"
    assert rules["Simulacao"]["object-locator"] == {
        "schema-name": "dbo",
        "table-name": "Simulacao",
        "table-type": "table",
    }
    order = {name: int(r["load-order"]) for name, r in rules.items()}
    for t in cat:  # DMS initialises higher load-order first: every parent before its children and views
        for parent in [fk.ref_table for fk in t.foreign_keys] + list(t.depends_on):
            assert order[locator(parent)] > order[locator(t.name)], (parent, t.name)
    assert len({r["rule-id"] for r in table_mappings(cat, BOUNDS)["rules"]}) == len(
        table_mappings(cat, BOUNDS)["rules"]
    )


def test_large_tables_get_parallel_load_ranges_with_named_segments():
    settings = [r for r in table_mappings(catalog(), BOUNDS)["rules"] if r["rule-type"] == "table-settings"]
    assert [r["object-locator"]["table-name"] for r in settings] == ["Simulacao", "SimulacaoParcela"]
    assert settings[1]["parallel-load"] == {
        "type": "ranges",
        "columns": ["SimulacaoId"],
        "boundaries": [["5001"], ["10001"], ["15001"]],
        "segment-names": ["SEGMENT1", "SEGMENT2", "SEGMENT3", "SEGMENT4"],
    }


def test_a_subset_maps_just_that_subset():
    cat = catalog()
    mappings = table_mappings([cat["SimulacaoParcela"], cat["Grupo"]], BOUNDS)
    assert sorted(selections(mappings)) == ["Grupo", "SimulacaoParcela"]
    assert [r["object-locator"]["table-name"] for r in mappings["rules"] if r["rule-type"] == "table-settings"] == [
        "SimulacaoParcela"
    ]
    assert [s.table.name for s in selected_tables(mappings)] == ["Grupo", "SimulacaoParcela"]


def test_the_engine_reads_the_selection_back_with_dms_wildcards():
    cat = catalog()
    everything = selected_tables(table_mappings(cat, BOUNDS))
    assert {s.table.name for s in everything} == {t.name for t in cat}
    assert next(s for s in everything if s.table.name == "Simulacao").parallel_load["columns"] == ["SimulacaoId"]
    wildcard = {
        "rules": [
            {
                "rule-type": "selection",
                "rule-id": "1",
                "rule-name": "1",
                "rule-action": "include",
                "object-locator": {"schema-name": "dbo", "table-name": "Simulacao%", "table-type": "all"},
            },
            {
                "rule-type": "selection",
                "rule-id": "2",
                "rule-name": "2",
                "rule-action": "exclude",
                "object-locator": {"schema-name": "dbo", "table-name": "%Lance"},
            },
        ]
    }
    assert sorted(s.table.name for s in selected_tables(wildcard)) == ["Simulacao", "SimulacaoParcela"]
    views_only = {
        "rules": [
            {
                **wildcard["rules"][0],
                "object-locator": {"schema-name": "dbo", "table-name": "vw_%", "table-type": "view"},
            }
        ]
    }
    assert sorted(s.table.name for s in selected_tables(views_only)) == ["vw_FunilMensal", "vw_SimulacaoResumo"]


def test_segment_where_clauses_are_the_ones_dms_builds():
    table = catalog()["SimulacaoParcela"]
    parallel = {
        "type": "ranges",
        "columns": ["SimulacaoId", "NumeroParcela"],
        "boundaries": [["10", "30"], ["20", "5"]],
    }
    sqls = [
        str(w.compile(dialect=mssql.dialect(), compile_kwargs={"literal_binds": True})).replace(
            "dbo.[SimulacaoParcela].", ""
        )
        for _, w in segment_predicates(table, parallel)
    ]
    assert sqls == [
        "[SimulacaoId] < 10 OR [SimulacaoId] = 10 AND [NumeroParcela] < 30",
        "NOT ([SimulacaoId] < 10 OR [SimulacaoId] = 10 AND [NumeroParcela] < 30) "
        "AND ([SimulacaoId] < 20 OR [SimulacaoId] = 20 AND [NumeroParcela] < 5)",
        "NOT ([SimulacaoId] < 20 OR [SimulacaoId] = 20 AND [NumeroParcela] < 5)",
    ]


def test_segment_boundaries_split_the_key_range_evenly(hand_made_source):
    engine = sa.create_engine(f"duckdb:///{hand_made_source}", connect_args={"read_only": True}, poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert segment_boundaries(conn, catalog()["Simulacao"], 4) == [["11"], ["21"], ["31"]]
        assert segment_boundaries(conn, catalog()["Grupo"], 4) == [["2"]]  # two rows: one cut
        assert segment_boundaries(conn, catalog()["UnidadeFederativa"], 4) == []  # not an integer key
    engine.dispose()


def test_settings_files_use_only_s3_settings_and_task_settings_dms_knows():
    model = botocore.session.get_session().get_service_model("dms")
    shape = model.shape_for("S3Settings").members
    for key, value in endpoint_settings().raw.items():
        assert key in shape, key
        if getattr(shape[key], "enum", None):
            assert value in shape[key].enum, (key, value)
    task = load_task_settings()
    assert set(task) <= {
        "TargetMetadata",
        "FullLoadSettings",
        "Logging",
        "ErrorBehavior",
        "ValidationSettings",
        "ControlTablesSettings",
        "StreamBufferSettings",
        "ChangeProcessingTuning",
    }
    settings = load_settings()
    assert settings.endpoint.data_format == "parquet" and settings.endpoint.bucket_folder == "raw"
    assert settings.task.lob_max_bytes == 128 * 1024  # fits the generator's longest Observacao (~113 KB)


@pytest.mark.parametrize(
    "endpoint, task, message",
    [
        ({"DataFormat": "json"}, {}, "DataFormat"),
        ({"MaxFileSize": 0}, {}, "MaxFileSize"),
        ({"DatePartitionEnabled": True}, {}, "DatePartitionEnabled"),
        ({}, {"TargetMetadata": {"FullLobMode": True}}, "FullLobMode"),
        ({}, {"TargetMetadata": {"SupportLobs": False}}, "SupportLobs"),
        ({}, {"FullLoadSettings": {"TargetTablePrepMode": "DO_NOTHING"}}, "mix"),
    ],
)
def test_settings_the_engine_cannot_honour_are_refused(endpoint, task, message):
    with pytest.raises(SettingsError, match=message):
        DmsSettings(
            EndpointSettings({**endpoint_settings().raw, **endpoint}), TaskSettings({**load_task_settings(), **task})
        )


def test_enum_values_are_read_case_insensitively():
    endpoint = EndpointSettings({"DataFormat": "CSV", "CompressionType": "GZIP", "ParquetVersion": "PARQUET_2_0"})
    assert (endpoint.data_format, endpoint.extension, endpoint.parquet_version) == ("csv", ".csv.gz", "parquet-2-0")
