"""Bad input: each case fails naming what is wrong (table, file, column, key) and leaves the previous good version
in every zone; once the input is fixed a rerun completes. Two inputs are not errors — an empty table and a 50 MB
LOB — and must arrive whole."""

from __future__ import annotations

import hashlib
import shutil

import duckdb
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from consorcio_assets.common.lake_zones import Lake
from consorcio_assets.dms.engine import run_full_load
from consorcio_assets.dms.mappings import table_mappings
from consorcio_assets.dms.preflight import PreflightError, preflight
from consorcio_assets.dms.resource import LocalDms
from consorcio_assets.dms.settings_files import load_settings
from consorcio_assets_tests.faults.support import Snapshot, aurora_rows, digest, missing, visible
from consorcio_assets_tests.glue import data
from consorcio_assets_tests.glue.data import CAT
from consorcio_assets_tests.glue.helpers import error_of, fetch, ok, run_job, write_raw

SEGMENTO = CAT["Segmento"]


def _raw(loaded):
    return loaded.lake / "raw" / "dbo" / "Segmento"


def _glue(loaded, *args, fmt="parquet", expected_rows=4):
    return run_job(loaded.lake, SEGMENTO, CAT, loaded.url, "--raw-format", fmt, *args, expected_rows=expected_rows)


def _rerun_completes(loaded, fmt="parquet") -> None:
    """The fixed input loads, and the good version's rows are all there."""
    ok(_glue(loaded, fmt=fmt))
    assert missing(loaded.before.aurora, aurora_rows(loaded.url, SEGMENTO)) == 0
    assert pq.read_table(loaded.lake / "transformed" / "segmento").num_rows == 4


def _short(message: str, limit: int = 220) -> str:
    message = message.removeprefix("ERROR: ")
    return message if len(message) <= limit else message[: limit - 1] + "…"


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_damaged_parquet_file(segmento, fault_case, damage):
    fault_case.expect(
        f"{damage} Parquet LOAD file",
        "fails naming table and file; transformed zone and Aurora keep "
        "the previous version; rerun with the good file completes",
    )
    shutil.rmtree(_raw(segmento))
    write_raw(segmento.lake, SEGMENTO, data.table("Segmento", data.segmentos()), rows_per_file=2)
    second = _raw(segmento) / "LOAD00000002.parquet"
    good = second.read_bytes()
    if damage == "truncated":
        second.write_bytes(good[: len(good) // 2])
    else:  # the first column chunk's page header overwritten: the footer still reads, the data does not
        second.write_bytes(good[:4] + b"\xff" * 48 + good[52:])
    message = error_of(_glue(segmento))
    assert message.startswith("ERROR: Segmento: ") and "raw/dbo/Segmento/LOAD00000002.parquet" in message
    fault_case.saw(_short(message), segmento.lost())
    assert segmento.lost() == 0
    second.write_bytes(good)
    _rerun_completes(segmento)


def _csv_lines(loaded) -> list[str]:
    shutil.rmtree(_raw(loaded))
    write_raw(loaded.lake, SEGMENTO, data.table("Segmento", data.segmentos()), fmt="csv")
    return (_raw(loaded) / "LOAD00000001.csv").read_text(encoding="utf-8").splitlines(keepends=True)


@pytest.mark.parametrize("flaw", ["extra delimiter", "unterminated quote"])
def test_malformed_csv(segmento, fault_case, flaw):
    fault_case.expect(
        f"CSV (DataFormat csv) with an {flaw}",
        "fails naming table, file and (when the row is known) its key; nothing replaced; rerun completes",
    )
    lines = _csv_lines(segmento)
    good = "".join(lines)
    if flaw == "extra delimiter":
        lines[2] = lines[2].replace("SEG3", "SEG3,x", 1)
    else:
        lines[1] = lines[1].replace("SEG2", '"SEG2', 1)
    (_raw(segmento) / "LOAD00000001.csv").write_text("".join(lines), encoding="utf-8")
    message = error_of(_glue(segmento, fmt="csv"))
    assert "Segmento" in message and "raw/dbo/Segmento/LOAD00000001.csv" in message
    if flaw == "extra delimiter":
        assert "SegmentoId=3" in message and "expected 6, got 7" in message
    fault_case.saw(_short(message), segmento.lost())
    assert segmento.lost() == 0
    (_raw(segmento) / "LOAD00000001.csv").write_text(good, encoding="utf-8")
    _rerun_completes(segmento, fmt="csv")


def test_load_file_of_another_table(segmento, fault_case):
    fault_case.expect(
        "LOAD file of another table's schema",
        "fails naming table, file, missing and unexpected columns; nothing replaced; rerun completes",
    )
    good = (_raw(segmento) / "LOAD00000001.parquet").read_bytes()
    pq.write_table(data.table("Administradora", data.administradoras()), _raw(segmento) / "LOAD00000001.parquet")
    message = error_of(_glue(segmento, expected_rows=3))
    assert "Segmento: raw/dbo/Segmento/LOAD00000001.parquet has columns that differ" in message
    assert "'Codigo'" in message and "'Cnpj'" in message  # one missing, one unexpected
    fault_case.saw(_short(message), segmento.lost())
    assert segmento.lost() == 0
    (_raw(segmento) / "LOAD00000001.parquet").write_bytes(good)
    _rerun_completes(segmento)


@pytest.mark.parametrize("encoding", ["csv", "parquet"])
def test_invalid_utf8(segmento, fault_case, encoding):
    fault_case.expect(
        f"invalid UTF-8 in a {encoding} LOAD file",
        "fails naming table, file (and column and key when the reader knows the row); nothing replaced",
    )
    accented = "imóveis".encode()
    if encoding == "csv":
        _csv_lines(segmento)
        path = _raw(segmento) / "LOAD00000001.csv"
    else:  # uncompressed, so the text's bytes are in the file as they are
        path = _raw(segmento) / "LOAD00000001.parquet"
        pq.write_table(data.table("Segmento", data.segmentos()), path, compression="none")
    good = path.read_bytes()
    at = good.index(accented) + len("im")
    path.write_bytes(good[:at] + b"\xff" + good[at + 1 :])  # 'ó' loses its lead byte: not UTF-8 any more
    message = error_of(_glue(segmento, fmt=encoding))
    assert "Segmento" in message and f"raw/dbo/Segmento/LOAD00000001.{encoding}" in message
    assert "UTF-8" in message or "UTF8" in message
    if encoding == "parquet":
        assert "Segmento.Descricao" in message and "SegmentoId=1" in message
    fault_case.saw(_short(message), segmento.lost())
    assert segmento.lost() == 0
    path.write_bytes(good)
    _rerun_completes(segmento, fmt=encoding)


# -- the source side: DMS's pre-flight and full-load -----------------------------------------------------------


def _dms(source, lake) -> LocalDms:
    return LocalDms(lake_uri=lake.as_uri(), source_url=f"duckdb:///{source}")


def _alter(source, statement: str) -> None:
    with duckdb.connect(str(source)) as conn:
        conn.execute(statement)


DRIFT = {
    "added": (
        "ALTER TABLE dbo.Segmento ADD COLUMN Regiao VARCHAR",
        "dbo.Segmento.Regiao: column is in the source but not in the catalog",
    ),
    "removed": ("ALTER TABLE dbo.Segmento DROP COLUMN Descricao", "dbo.Segmento.Descricao: column is missing"),
    "retyped": (
        "ALTER TABLE dbo.Segmento ALTER COLUMN PrazoMinimo TYPE VARCHAR",
        "dbo.Segmento.PrazoMinimo: source type is VARCHAR, the catalog expects SMALLINT",
    ),
}


@pytest.mark.parametrize("change", list(DRIFT))
def test_source_schema_drift(source_copy, small_source, tmp_path, fault_case, change):
    fault_case.expect(
        f"source column {change} (drift)",
        "the pre-flight fails naming table and column before any file is written; raw zone unchanged; rerun completes",
    )
    lake = tmp_path / "lake"
    dms = _dms(source_copy, lake)
    dms.full_load([SEGMENTO])
    before = digest(lake / "raw")
    statement, expected = DRIFT[change]
    _alter(source_copy, statement)
    with pytest.raises(PreflightError) as failure:
        dms.full_load([SEGMENTO])
    assert expected in str(failure.value)
    lost = missing(before.items(), digest(lake / "raw").items())
    fault_case.saw(_short(str(failure.value).replace("\n", " ")), lost)
    assert lost == 0 and digest(lake / "raw") == before
    shutil.copy(small_source, source_copy)  # the source back in line with the catalog
    assert dms.full_load([SEGMENTO]).tables["Segmento"].full_load_rows > 0


def test_table_disappeared_from_the_source(source_copy, small_source, tmp_path, fresh_db, fault_case):
    fault_case.expect(
        "source table disappeared",
        "the pre-flight fails naming the table; raw zone, transformed "
        "zone and Aurora keep the previous load; rerun completes",
    )
    lake, table = tmp_path / "lake", CAT["IndiceCorrecao"]
    dms = _dms(source_copy, lake)
    rows = dms.full_load([table]).tables[table.name].full_load_rows
    ok(run_job(lake, table, CAT, fresh_db, expected_rows=rows))
    before = Snapshot.take(fresh_db, lake, table)
    _alter(source_copy, "DROP TABLE dbo.IndiceCorrecao")
    with pytest.raises(PreflightError) as failure:
        dms.full_load([table])
    assert "dbo.IndiceCorrecao: the table does not exist in the source" in str(failure.value)
    lost = before.lost(Snapshot.take(fresh_db, lake, table))
    fault_case.saw(_short(str(failure.value).replace("\n", " ")), lost)
    assert lost == 0
    shutil.copy(small_source, source_copy)
    assert dms.full_load([table]).tables[table.name].full_load_rows == rows


def test_empty_table(source_copy, tmp_path, fresh_db, fault_case):
    fault_case.expect(
        "empty source table",
        "no error: DMS writes no file and Aurora gets an empty table; but no "
        "files where DMS loaded rows fails naming table and folder",
    )
    lake, table = tmp_path / "lake", CAT["IndiceCorrecao"]
    dms = _dms(source_copy, lake)
    rows = dms.full_load([table]).tables[table.name].full_load_rows
    ok(run_job(lake, table, CAT, fresh_db, expected_rows=rows))
    before = Snapshot.take(fresh_db, lake, table)
    _alter(source_copy, "DELETE FROM dbo.IndiceCorrecao")
    assert dms.full_load([table]).tables[table.name].full_load_rows == 0
    assert not (lake / "raw" / "dbo" / "IndiceCorrecao").exists()  # as DMS: no folder for an empty table
    stale = error_of(run_job(lake, table, CAT, fresh_db, expected_rows=rows))  # rows recorded, files gone
    assert f"no LOAD files under raw/dbo/IndiceCorrecao/ but DMS loaded {rows} rows" in stale
    assert before.lost(Snapshot.take(fresh_db, lake, table), ("transformed", "aurora")) == 0
    ok(run_job(lake, table, CAT, fresh_db, expected_rows=0))
    assert aurora_rows(fresh_db, table) == [] and pq.read_table(lake / "transformed" / "indice_correcao").num_rows == 0
    fault_case.saw(f"loads 0 rows without error; stale expectation: {_short(stale, 120)}", 0)


def _view_with_a_duplicate_key(source) -> None:
    """The view's snapshot returns one simulation twice (as a view joining on a non-unique key would)."""
    _alter(source, "ALTER VIEW dbo.vw_SimulacaoResumo RENAME TO vw_Original")
    _alter(
        source,
        "CREATE VIEW dbo.vw_SimulacaoResumo AS SELECT * FROM dbo.vw_Original UNION ALL "
        "(SELECT * FROM dbo.vw_Original ORDER BY SimulacaoId LIMIT 1)",
    )


def test_duplicate_primary_key_in_a_view_snapshot(source_copy, small_source, tmp_path, fresh_db, fault_case):
    fault_case.expect(
        "duplicate primary key in a view snapshot",
        "Aurora load fails naming the table, its primary key and the duplicated key; previous snapshot stays",
    )
    lake, view = tmp_path / "lake", CAT["vw_SimulacaoResumo"]
    dms = _dms(source_copy, lake)
    rows = dms.full_load([view]).tables[view.name].full_load_rows
    ok(run_job(lake, view, CAT, fresh_db, expected_rows=rows))
    before = Snapshot.take(fresh_db, lake, view)
    _view_with_a_duplicate_key(source_copy)
    doubled = dms.full_load([view]).tables[view.name].full_load_rows
    assert doubled == rows + 1
    first = fetch(fresh_db, "SELECT min(simulacao_id) FROM consorcio_snapshot.vw_simulacao_resumo")[0][0]
    message = error_of(run_job(lake, view, CAT, fresh_db, expected_rows=doubled))
    assert "vw_simulacao_resumo" in message and "primary_key" in message and f"simulacao_id={first}" in message
    lost = before.lost(Snapshot.take(fresh_db, lake, view), ("transformed", "aurora"))
    fault_case.saw(_short(message), lost)
    assert lost == 0
    shutil.copy(small_source, source_copy)
    ok(run_job(lake, view, CAT, fresh_db, expected_rows=dms.full_load([view]).tables[view.name].full_load_rows))
    assert len(aurora_rows(fresh_db, view)) == rows


LOB_CHARS = 50 * 2**20


def test_50_mb_lob_value(source_copy, tmp_path, fresh_db, fault_case):
    fault_case.expect(
        "50 MB LOB value (Simulacao.Observacao)",
        "pre-flight names table, column and size over LobMaxSize; with LobMaxSize raised it arrives whole",
    )
    table = CAT["Simulacao"]
    _alter(
        source_copy,
        f"UPDATE dbo.Simulacao SET Observacao = 'ação ' || repeat('0123456789', {LOB_CHARS // 10}) "
        "|| ' fim' WHERE SimulacaoId = (SELECT min(SimulacaoId) FROM dbo.Simulacao)",
    )
    with duckdb.connect(str(source_copy), read_only=True) as conn:
        key, value = conn.execute(
            "SELECT SimulacaoId, Observacao FROM dbo.Simulacao ORDER BY SimulacaoId LIMIT 1"
        ).fetchone()
    engine = sa.create_engine(f"duckdb:///{source_copy}", connect_args={"read_only": True}, poolclass=sa.NullPool)
    try:
        overflows = preflight(engine, [table], load_settings().task, segments={}).overflows
    finally:
        engine.dispose()
    assert [str(o) for o in overflows] == [
        f"dbo.Simulacao.Observacao: longest value is {2 * len(value)} bytes, over LobMaxSize (128 KB): "
        "DMS will truncate it"
    ]
    lake = tmp_path / "lake"
    settings = load_settings().with_target_metadata(LobMaxSize=2 * len(value) // 1024 + 1)
    report = run_full_load(
        table_mappings([table]), source_url=f"duckdb:///{source_copy}", lake=Lake(lake.as_uri()), settings=settings
    )
    loaded = report.tables[table.name]
    assert loaded.lob_truncated == {} and visible(lake / "raw" / "dbo" / "Simulacao")
    ok(run_job(lake, table, CAT, fresh_db, expected_rows=loaded.full_load_rows))
    got = fetch(
        fresh_db, "SELECT length(observacao), md5(observacao) FROM consorcio.simulacao WHERE simulacao_id = %s", (key,)
    )[0]
    lost = int(got != (len(value), hashlib.md5(value.encode()).hexdigest()))
    fault_case.saw(
        f"pre-flight: {overflows[0]}; with LobMaxSize raised: {got[0]:,} characters in Aurora, same MD5 as the source",
        lost,
    )
    assert lost == 0
    assert fetch(fresh_db, "SELECT count(*) FROM consorcio.simulacao")[0][0] == loaded.full_load_rows
