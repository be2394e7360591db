import shutil

import duckdb
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from consorcio_assets.catalog import catalog
from consorcio_assets.source.queries import observation_query, observe
from consorcio_assets.source.stand_in import build, seed


def test_seeded_stand_in_stores_values_as_sql_server_returns_them(small_source):
    with duckdb.connect(str(small_source), read_only=True) as con:
        cpf, uf = con.execute("SELECT CpfCnpj, Uf FROM dbo.Cliente WHERE TipoPessoa = 'F' LIMIT 1").fetchone()
        assert len(cpf) == 14 and cpf.endswith("   ") and len(uf) == 2  # CHAR(14) pads an 11-digit CPF
        criada, atualizada_type = con.execute(
            "SELECT CriadaEm, typeof(AtualizadaEm) FROM dbo.Simulacao LIMIT 1"
        ).fetchone()
        assert criada[19] == "." and criada[-6] in "+-" and len(criada.split(" ")[1]) == 16  # 7 fractional digits
        assert atualizada_type == "TIMESTAMP_NS"
        from decimal import ROUND_HALF_UP, Decimal

        for n, pct in con.execute("SELECT DISTINCT PrazoMeses, PctFundoComumMes FROM dbo.Simulacao").fetchall():
            assert pct == (Decimal(100) / n).quantize(Decimal("0.000001"), ROUND_HALF_UP), n  # computed column
        assert len(con.execute("SELECT VersaoLinha FROM dbo.Simulacao LIMIT 1").fetchone()[0]) == 8


def test_views_are_queryable_and_consistent_with_base_tables(small_source):
    with duckdb.connect(str(small_source), read_only=True) as con:
        n_sim = con.execute("SELECT count(*) FROM dbo.Simulacao").fetchone()[0]
        assert con.execute("SELECT count(*) FROM dbo.vw_SimulacaoResumo").fetchone()[0] == n_sim
        assert con.execute("SELECT sum(Simulacoes) FROM dbo.vw_FunilMensal").fetchone()[0] == n_sim
        total = con.execute("SELECT sum(ValorCredito) FROM dbo.Simulacao").fetchone()[0]
        assert con.execute("SELECT sum(CreditoSimulado) FROM dbo.vw_FunilMensal").fetchone()[0] == total
        # the month is the local month of CriadaEm (SQL Server reads DATETIMEOFFSET's local time)
        mes = con.execute("SELECT min(Mes) FROM dbo.vw_FunilMensal").fetchone()[0]
        assert mes.day == 1


def test_same_seed_gives_identical_data_and_another_seed_does_not(tmp_path, small_source):
    again = tmp_path / "again.duckdb"
    seed(again, simulacoes=300, seed=7)
    other = tmp_path / "other.duckdb"
    seed(other, simulacoes=300, seed=8)
    query = observation_query(catalog()["Simulacao"])
    versions = []
    for path in (small_source, again, other):
        engine = sa.create_engine(f"duckdb:///{path}", connect_args={"read_only": True}, poolclass=sa.NullPool)
        with engine.connect() as conn:
            versions.append(observe(conn, catalog()["Simulacao"]).data_version)
        engine.dispose()
    assert versions[0] == versions[1] != versions[2]
    assert query is not None


def test_existing_stand_in_needs_force_and_is_never_half_written(tmp_path, small_source):
    path = tmp_path / "src.duckdb"
    shutil.copy(small_source, path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="--force"):
        seed(path, simulacoes=10, seed=1)

    def broken_rows():
        yield from []
        raise RuntimeError("generator died half-way")

    with pytest.raises(RuntimeError):
        build(path, broken_rows(), force=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["src.duckdb"]


def test_data_version_changes_when_a_value_changes(tmp_path, small_source):
    path = tmp_path / "src.duckdb"
    shutil.copy(small_source, path)
    table = catalog()["SimulacaoParcela"]

    def version():
        engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.NullPool)
        with engine.connect() as conn:
            obs = observe(conn, table)
        engine.dispose()
        return obs

    first = version()
    with duckdb.connect(str(path)) as con:
        con.execute(
            "UPDATE dbo.SimulacaoParcela SET ValorSeguro = ValorSeguro + 0.01 "
            "WHERE SimulacaoId = (SELECT min(SimulacaoId) FROM dbo.SimulacaoParcela) AND NumeroParcela = 1"
        )
    second = version()
    assert first.row_count == second.row_count > 0
    assert first.data_version != second.data_version


def test_source_queries_compile_for_sql_server():
    for table in catalog():
        sql = str(observation_query(table).compile(dialect=mssql.dialect()))
        assert "COUNT_BIG(*)" in sql and "CHECKSUM_AGG(BINARY_CHECKSUM(*))" in sql
        assert f"FROM {table.schema}.[{table.name}]" in sql
    sql = str(observation_query(catalog()["Simulacao"]).compile(dialect=mssql.dialect()))
    assert "max(dbo.[Simulacao].[VersaoLinha])" in sql


@pytest.mark.parametrize("engine_first", [True, False])
def test_the_dms_engine_and_the_checks_open_the_stand_in_at_once(small_source, engine_first):
    """A check step on a thread beside the DMS step: one opens the file through SQLAlchemy, the other directly;
    DuckDB refuses the second when their configurations differ."""
    from consorcio_assets.source.queries import connect_stand_in, duckdb_engine

    engine = duckdb_engine(f"duckdb:///{small_source}")
    if engine_first:
        with engine.connect() as conn:
            raw = connect_stand_in(small_source)
            assert (
                raw.execute("SELECT count(*) FROM dbo.Segmento").fetchone()[0]
                == conn.execute(sa.text("SELECT count(*) FROM dbo.Segmento")).scalar_one()
            )
            raw.close()
    else:
        raw = connect_stand_in(small_source)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM dbo.Segmento")).scalar_one() > 0
        raw.close()
    engine.dispose()
