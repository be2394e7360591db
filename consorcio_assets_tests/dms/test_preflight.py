"""Pre-flight: a vanished table, schema drift, LOBs DMS would truncate, connectivity, all before any file."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from consorcio_assets.catalog import catalog
from consorcio_assets.common.lake_zones import Lake
from consorcio_assets.dms.engine import run_full_load
from consorcio_assets.dms.layout import ERRORED
from consorcio_assets.dms.mappings import table_mappings
from consorcio_assets.dms.preflight import PreflightError, columns_query, count_query, drift, lob_query, preflight
from consorcio_assets.dms.resource import LocalDms
from consorcio_assets.dms.settings_files import load_settings

TASK = load_settings().task


def engine_on(path: Path) -> sa.Engine:
    return sa.create_engine(f"duckdb:///{path}", connect_args={"read_only": True}, poolclass=sa.NullPool)


def drifted(tmp_path: Path, source: Path, *statements: str) -> Path:
    path = tmp_path / "drifted.duckdb"
    shutil.copy(source, path)
    with duckdb.connect(str(path)) as con:
        for sql in statements:
            con.execute(sql)
    return path


def test_preflight_counts_rows_measures_lobs_and_cuts_segments(hand_made_source):
    report = preflight(engine_on(hand_made_source), list(catalog()), TASK)
    assert report.source_rows["Simulacao"] == 40 and report.source_rows["vw_FunilMensal"] > 0
    assert report.lob_max_bytes[("Simulacao", "Observacao")] == 140_000  # 70,000 characters x 2 bytes
    assert [str(o) for o in report.overflows] == [
        "dbo.Simulacao.Observacao: longest value is 140000 bytes, over LobMaxSize (128 KB): DMS will truncate it"
    ]
    assert report.boundaries == {
        "Simulacao": [["11"], ["21"], ["31"]],
        "SimulacaoParcela": [["11"], ["21"], ["31"]],
        "vw_SimulacaoResumo": [["21"]],  # a view is cut on its key as a table is (DMS parallel-loads views too)
    }


def test_drift_and_a_vanished_view_are_named_by_table_and_column(hand_made_source, tmp_path):
    path = drifted(
        tmp_path,
        hand_made_source,
        'DROP VIEW dbo."vw_FunilMensal"',
        'ALTER TABLE dbo."Grupo" ALTER "QuantidadeCotas" TYPE INTEGER',
        'ALTER TABLE dbo."Cliente" DROP COLUMN "Telefone"',
        'ALTER TABLE dbo."SimulacaoLance" ADD COLUMN "Extra" INTEGER',
    )
    with pytest.raises(PreflightError) as err:
        preflight(engine_on(path), list(catalog()), TASK)
    lines = str(err.value).splitlines()[1:]
    assert sorted(line.strip() for line in lines) == [
        "dbo.Cliente.Telefone: column is missing from the source",
        "dbo.Grupo.QuantidadeCotas: source type is INTEGER, the catalog expects SMALLINT",
        "dbo.SimulacaoLance.Extra: column is in the source but not in the catalog",
        "dbo.vw_FunilMensal: the view does not exist in the source",
    ]


def test_a_drifted_source_writes_nothing(hand_made_source, tmp_path):
    path = drifted(tmp_path, hand_made_source, 'ALTER TABLE dbo."Grupo" ALTER "QuantidadeCotas" TYPE INTEGER')
    dms = LocalDms(source_url=f"duckdb:///{path}", lake_uri=(tmp_path / "lake").as_uri())
    with pytest.raises(PreflightError, match=r"dbo\.Grupo\.QuantidadeCotas"):
        dms.full_load([catalog()["Grupo"], catalog()["Segmento"]])
    assert not (tmp_path / "lake" / "raw").exists()


def test_the_engine_names_a_column_whose_values_no_longer_fit(hand_made_source, tmp_path):
    path = drifted(
        tmp_path,
        hand_made_source,
        'ALTER TABLE dbo."Grupo" ALTER "QuantidadeCotas" TYPE VARCHAR',
        'UPDATE dbo."Grupo" SET "QuantidadeCotas" = \'muitas\' WHERE "GrupoId" = 2',
    )
    lake = Lake((tmp_path / "lake").as_uri())
    report = run_full_load(
        table_mappings([catalog()["Grupo"]]), source_url=f"duckdb:///{path}", lake=lake, settings=load_settings()
    )
    assert report.tables["Grupo"].state == ERRORED
    error = report.tables["Grupo"].error
    assert error.startswith("dbo.Grupo.QuantidadeCotas holds string values that DMS type INT2 (int16) cannot take")
    assert "muitas" not in error  # values never reach the logs
    assert not (tmp_path / "lake" / "raw").exists()


def test_an_unreachable_source_is_a_connectivity_error_without_password():
    engine = sa.create_engine("postgresql+psycopg://dms:s3cr3t@127.0.0.1:1/consorcio", poolclass=sa.NullPool)
    with pytest.raises(
        PreflightError, match=r"cannot connect to the source \(postgresql\+psycopg://dms:\*\*\*@"
    ) as err:
        preflight(engine, [catalog()["Grupo"]], TASK)
    assert "s3cr3t" not in str(err.value)


def test_queries_compile_for_sql_server():
    sim = catalog()["Simulacao"]
    sql = lambda q: str(q.compile(dialect=mssql.dialect(), compile_kwargs={"literal_binds": True}))  # noqa: E731
    assert (
        sql(lob_query(sim))
        == "SELECT max(DATALENGTH(dbo.[Simulacao].[Observacao])) AS [Observacao] \nFROM dbo.[Simulacao]"
    )
    assert sql(count_query(sim)).startswith("SELECT COUNT_BIG(*)")
    assert "FROM [INFORMATION_SCHEMA].[COLUMNS]" in sql(columns_query(sim)) and "= 'Simulacao'" in sql(
        columns_query(sim)
    )
    assert lob_query(catalog()["Grupo"]) is None


def sql_server_columns(table) -> list[dict]:
    """INFORMATION_SCHEMA.COLUMNS rows as SQL Server returns them for the contract's table."""
    rows = []
    for c in table.columns:
        data_type = {"rowversion": "timestamp"}.get(c.sql_type, c.sql_type.replace("(max)", ""))
        rows.append(
            {
                "COLUMN_NAME": c.name,
                "DATA_TYPE": data_type,
                "CHARACTER_MAXIMUM_LENGTH": -1 if c.sql_type.endswith("(max)") else c.length,
                "NUMERIC_PRECISION": c.precision,
                "NUMERIC_SCALE": c.scale,
                "DATETIME_PRECISION": c.fsp,
            }
        )
    return rows


def test_sql_server_types_are_compared_with_length_precision_and_scale():
    sim = catalog()["Simulacao"]
    rows = sql_server_columns(sim)
    assert drift(sim, rows, "mssql") == []
    by_name = {r["COLUMN_NAME"]: r for r in rows}
    by_name["Observacao"]["CHARACTER_MAXIMUM_LENGTH"] = 4000
    by_name["ValorCredito"]["NUMERIC_PRECISION"] = 18
    by_name["CriadaEm"]["DATETIME_PRECISION"] = 3
    assert drift(sim, rows, "mssql") == [
        "dbo.Simulacao.ValorCredito: source type is decimal(18,2), the catalog expects decimal(15,2)",
        "dbo.Simulacao.Observacao: source type is nvarchar(4000), the catalog expects nvarchar(max)",
        "dbo.Simulacao.CriadaEm: source type is datetimeoffset(3), the catalog expects datetimeoffset(7)",
    ]
