"""The local engine writes what DMS writes: layout, numbering, types, CSV, LOBs, empty tables, atomic reloads."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from consorcio_assets.catalog import catalog
from consorcio_assets.common.lake_zones import Lake
from consorcio_assets.dms import engine
from consorcio_assets.dms.engine import run_full_load
from consorcio_assets.dms.layout import (
    COMPLETED,
    ERRORED,
    expected_schema,
    layout_problems,
    list_files,
    read_csv_batches,
)
from consorcio_assets.dms.mappings import table_mappings
from consorcio_assets.dms.settings_files import load_settings
from consorcio_assets_tests.dms.data import LONG_OBSERVACAO_CHARS, build_source, sort_rows, source_rows

SETTINGS = load_settings()
ALL = [t.name for t in catalog()]


def run(lake: Lake, source: Path, tables=ALL, settings=SETTINGS, boundaries=None):
    mappings = table_mappings([catalog()[t] for t in tables], boundaries)
    return run_full_load(mappings, source_url=f"duckdb:///{source}", lake=lake, settings=settings)


def table_dir(lake: Lake, table: str) -> Path:
    return Path(lake.path("raw", "dbo", table))


def files(lake: Lake, table: str) -> list[str]:
    base = table_dir(lake, table)
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()) if base.exists() else []


def read_parquet(lake: Lake, table: str) -> list[dict]:
    base = table_dir(lake, table)
    tables = [pq.read_table(base / f) for f in files(lake, table)]
    return sort_rows(pa.concat_tables(tables).to_pylist(), table)


def digest(lake: Lake) -> dict[str, str]:
    root = Path(lake.path("raw"))
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_parquet_files_hold_the_source_value_by_value_in_dms_types(hand_made_source, lake):
    ranges = {"Simulacao": [["11"], ["21"], ["31"]], "vw_SimulacaoResumo": [["21"]]}  # a view in ranges too
    report = run(lake, hand_made_source, boundaries=ranges)
    assert files(lake, "vw_SimulacaoResumo") == ["SEGMENT1/LOAD00000001.parquet", "SEGMENT2/LOAD00000001.parquet"]
    for name in ALL:
        result = report.tables[name]
        assert result.state == COMPLETED, result.error
        expected = source_rows(hand_made_source, name)
        assert result.full_load_rows == len(expected) > 0
        assert read_parquet(lake, name) == expected, name
        for f in files(lake, name):
            schema = pq.read_schema(table_dir(lake, name) / f)
            assert [(x.name, x.type) for x in schema] == [
                (x.name, x.type) for x in expected_schema(catalog()[name], SETTINGS.endpoint)
            ], name
    assert report.tables["Simulacao"].lob_truncated == {"Observacao": 1}


def test_the_sqlalchemy_streaming_path_for_sql_server_writes_the_same_values(hand_made_source, lake):
    import sqlalchemy as sa

    url = f"duckdb:///{hand_made_source}"
    source = engine.SqlAlchemySource(sa.create_engine(url, connect_args={"read_only": True}, poolclass=sa.NullPool))
    report = engine.LocalFullLoad(source, lake, SETTINGS.with_endpoint(RowGroupLength=16)).run(
        table_mappings([catalog()[t] for t in ALL])
    )
    source.close()
    for name in ALL:
        assert report.tables[name].state == COMPLETED, report.tables[name].error
        expected = source_rows(hand_made_source, name)
        if name == "Simulacao":  # this driver converts 100 ns to microseconds toward zero, not down (pre-1970)
            expected[2]["AtualizadaEm"] = datetime(1969, 12, 31, 23, 59, 59, 999999)
        assert read_parquet(lake, name) == expected, name
    meta = pq.ParquetFile(table_dir(lake, "SimulacaoParcela") / "LOAD00000001.parquet").metadata
    assert meta.num_row_groups == 8  # 120 rows streamed 16 at a time


def test_values_take_sql_server_text_and_dms_precision(hand_made_source, lake):
    run(lake, hand_made_source, tables=["Simulacao", "Cliente", "Segmento", "PlanoComercial"])
    sim = {r["SimulacaoId"]: r for r in read_parquet(lake, "Simulacao")}
    assert sim[1]["SimulacaoGuid"] == "00000000-0000-0002-0000-000000001EEF"  # upper-case GUID
    assert sim[2]["CriadaEm"] == "2024-03-03 23:59:59.0000002 -00:00"  # DATETIMEOFFSET text, offset kept
    assert sim[3]["AtualizadaEm"] == datetime(1969, 12, 31, 23, 59, 59, 999998)  # truncated, not rounded
    assert sim[4]["AtualizadaEm"] == datetime(2024, 3, 5, 14, 22, 5, 7)  # 05.0000076: truncated to .000007
    assert sim[1]["VersaoLinha"] == (0x10001).to_bytes(8, "big")
    assert sim[7]["PctFundoComumMes"] == Decimal("7.142857")  # the computed column is loaded too
    cliente = {r["ClienteId"]: r for r in read_parquet(lake, "Cliente")}
    pessoa = next(r for r in cliente.values() if r["TipoPessoa"] == "F")
    assert len(pessoa["CpfCnpj"]) == 14 and pessoa["CpfCnpj"].endswith("   ")  # CHAR(14) keeps its padding
    assert read_parquet(lake, "Segmento")[1]["SegmentoId"] == 255
    plano = read_parquet(lake, "PlanoComercial")[0]
    assert plano["CreditoMaximo"] == Decimal("922337203685477.5807")  # MONEY at its limit, decimal(19,4)
    schema = pq.read_schema(table_dir(lake, "Segmento") / "LOAD00000001.parquet")
    assert schema.field("SegmentoId").type == pa.uint8()


def test_millisecond_timestamps_are_truncated_too(hand_made_source, lake):
    settings = SETTINGS.with_endpoint(ParquetTimestampInMillisecond=True)
    run(lake, hand_made_source, tables=["Simulacao", "IndiceCorrecao"], settings=settings)
    assert read_parquet(lake, "Simulacao") == source_rows(hand_made_source, "Simulacao", ms=True)
    assert read_parquet(lake, "IndiceCorrecao") == source_rows(hand_made_source, "IndiceCorrecao", ms=True)
    schema = pq.read_schema(table_dir(lake, "Simulacao") / "LOAD00000001.parquet")
    assert schema.field("AtualizadaEm").type == pa.timestamp("ms")


def test_max_file_size_starts_new_files_numbered_in_upper_case_hex(hand_made_source, lake):
    settings = SETTINGS.with_endpoint(MaxFileSize=1, RowGroupLength=5)
    report = run(lake, hand_made_source, tables=["SimulacaoParcela"], settings=settings)
    names = files(lake, "SimulacaoParcela")
    assert len(names) > 10 and names == [f"LOAD{i:08X}.parquet" for i in range(1, len(names) + 1)]
    assert "LOAD00000009.parquet" in names and "LOAD0000000A.parquet" in names  # hexadecimal, upper-case
    metas = [pq.ParquetFile(table_dir(lake, "SimulacaoParcela") / n).metadata for n in names]
    assert sum(m.num_rows for m in metas) == 120
    assert {m.row_group(i).num_rows for m in metas for i in range(m.num_row_groups)} == {5}
    assert [f.path.rsplit("/", 1)[1] for f in report.tables["SimulacaoParcela"].files] == names
    assert layout_problems(names, settings.endpoint) == []


@pytest.mark.parametrize(
    "overrides, version, codec, dictionary, statistics",
    [
        ({}, "2.6", "UNCOMPRESSED", True, True),
        ({"CompressionType": "GZIP", "ParquetVersion": "PARQUET_1_0"}, "1.0", "GZIP", True, True),
        ({"EncodingType": "plain", "EnableStatistics": False}, "2.6", "UNCOMPRESSED", False, False),
    ],
)
def test_parquet_settings_shape_the_files(hand_made_source, lake, overrides, version, codec, dictionary, statistics):
    run(lake, hand_made_source, tables=["Grupo"], settings=SETTINGS.with_endpoint(**overrides))
    assert files(lake, "Grupo") == ["LOAD00000001.parquet"]  # GZIP compresses inside a .parquet file
    meta = pq.ParquetFile(table_dir(lake, "Grupo") / "LOAD00000001.parquet").metadata
    chunk = meta.row_group(0).column(0)
    assert (meta.format_version, chunk.compression) == (version, codec)
    assert (chunk.dictionary_page_offset is not None, chunk.is_stats_set) == (dictionary, statistics)
    assert read_parquet(lake, "Grupo") == source_rows(hand_made_source, "Grupo")


def test_row_group_length_bounds_every_row_group(hand_made_source, lake):
    run(lake, hand_made_source, tables=["SimulacaoParcela"], settings=SETTINGS.with_endpoint(RowGroupLength=7))
    meta = pq.ParquetFile(table_dir(lake, "SimulacaoParcela") / "LOAD00000001.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [7] * 17 + [1]


def csv_settings(**overrides):
    return SETTINGS.with_endpoint(DataFormat="csv", **overrides)


def read_csv(lake: Lake, table: str, settings) -> list[dict]:
    fs, _ = lake.filesystem()
    rows = []
    for f in files(lake, table):
        for batch in read_csv_batches(fs, str(table_dir(lake, table) / f), catalog()[table], settings.endpoint):
            rows += batch.to_pylist()
    return sort_rows(rows, table)


def test_csv_files_hold_the_same_values_with_rfc4180_quoting(hand_made_source, lake):
    settings = csv_settings()
    run(lake, hand_made_source, settings=settings)
    for name in ALL:
        assert files(lake, name) == ["LOAD00000001.csv"], name
        assert read_csv(lake, name, settings) == source_rows(hand_made_source, name), name
    text = (table_dir(lake, "Simulacao") / "LOAD00000001.csv").read_text()
    lines = {line.split(",", 1)[0]: line for line in text.split("\n") if line[:1].isdigit()}
    assert ',"diz ""olá"", e sai\nlinha 2",' in text  # quotes doubled, the line break kept inside quotes
    assert ',"a,b;c",' in lines["3"] and ",NULL," in lines["4"]  # "NULL" is text: CsvNullValue is ""
    assert ',"",' in lines["1"]  # the empty string, quoted: an unquoted empty field is NULL
    assert lines["5"].split(",")[2] == "" and ",0000000000010001" in lines["1"].upper()  # NULL ClienteId; hex


def test_csv_options_header_op_column_delimiter_and_gzip(hand_made_source, lake):
    settings = csv_settings(
        AddColumnName=True, IncludeOpForFullLoad=True, CsvDelimiter=";", CsvNullValue="NULL", CompressionType="GZIP"
    )
    report = run(lake, hand_made_source, tables=["Grupo"], settings=settings)
    assert files(lake, "Grupo") == ["LOAD00000001.csv.gz"]
    assert report.tables["Grupo"].bytes == (table_dir(lake, "Grupo") / "LOAD00000001.csv.gz").stat().st_size
    import gzip

    text = gzip.decompress((table_dir(lake, "Grupo") / "LOAD00000001.csv.gz").read_bytes()).decode()
    assert text.splitlines() == [
        "Op;GrupoId;PlanoId;CodigoGrupo;QuantidadeCotas;DataConstituicao;DiaAssembleia;Situacao",
        "I;1;1;G0001;500;2021-05-01;15;A",
        "I;2;2;G0002;500;NULL;15;A",
    ]


def test_csv_files_stop_before_the_row_that_would_pass_max_file_size(hand_made_source, lake):
    settings = csv_settings(MaxFileSize=1)
    run(lake, hand_made_source, tables=["SimulacaoParcela"], settings=settings)
    names = files(lake, "SimulacaoParcela")
    sizes = [(table_dir(lake, "SimulacaoParcela") / n).stat().st_size for n in names]
    assert len(names) > 5 and max(sizes) <= 1024 and min(sizes[:-1]) > 1024 - 100
    assert len(read_csv(lake, "SimulacaoParcela", settings)) == 120


def test_lob_values_over_lob_max_size_are_truncated(hand_made_source, lake):
    settings = SETTINGS.with_target_metadata(LobMaxSize=1)
    report = run(lake, hand_made_source, tables=["Simulacao"], settings=settings)
    obs = {r["SimulacaoId"]: r["Observacao"] for r in read_parquet(lake, "Simulacao")}
    assert len(obs[5]) == 512 and obs[5] == "x" * 512  # NVARCHAR: 1 KB = 512 characters
    assert obs[6] == "çãõ € 𝄞" and obs[2].startswith("diz")
    assert report.tables["Simulacao"].lob_truncated == {"Observacao": 1}
    assert len(run(lake, hand_made_source, tables=["Simulacao"]).tables["Simulacao"].files) == 1
    assert len({r["SimulacaoId"]: r for r in read_parquet(lake, "Simulacao")}[5]["Observacao"]) == 65536
    assert LONG_OBSERVACAO_CHARS > 65536


def test_an_empty_table_gets_no_folder_and_loses_its_previous_files(hand_made_source, tmp_path, lake):
    run(lake, hand_made_source, tables=["SimulacaoLance"])
    assert files(lake, "SimulacaoLance") == ["LOAD00000001.parquet"]
    empty = build_source(tmp_path / "empty.duckdb", lances=False)
    report = run(lake, empty, tables=["SimulacaoLance"])
    assert report.tables["SimulacaoLance"].state == COMPLETED and report.tables["SimulacaoLance"].files == ()
    assert not table_dir(lake, "SimulacaoLance").exists()


def test_parallel_load_segments_go_to_their_sub_folders_split_as_dms_does(hand_made_source, lake):
    run(lake, hand_made_source, tables=["Simulacao"], boundaries={"Simulacao": [["11"], ["21"]]})
    assert files(lake, "Simulacao") == [f"SEGMENT{i}/LOAD00000001.parquet" for i in (1, 2, 3)]
    ids = {
        i: pq.read_table(table_dir(lake, "Simulacao") / f"SEGMENT{i}/LOAD00000001.parquet")
        .column("SimulacaoId")
        .to_pylist()
        for i in (1, 2, 3)
    }
    assert sorted(ids[1]) == list(range(1, 11))  # segment 1: SimulacaoId < 11
    assert sorted(ids[2]) == list(range(11, 21)) and sorted(ids[3]) == list(range(21, 41))


def test_unnamed_segments_prefix_their_files_and_share_the_counter(hand_made_source, lake):
    mappings = table_mappings([catalog()["Simulacao"]], {"Simulacao": [["11"], ["21"]]})
    del mappings["rules"][1]["parallel-load"]["segment-names"]
    run_full_load(mappings, source_url=f"duckdb:///{hand_made_source}", lake=lake, settings=SETTINGS)
    names = files(lake, "Simulacao")
    assert sorted(n.split("_")[0] for n in names) == ["SEGMENT1", "SEGMENT2", "SEGMENT3"]
    assert sorted(n.split("_")[1] for n in names) == [f"LOAD{i:08X}.parquet" for i in (1, 2, 3)]
    assert layout_problems(names, SETTINGS.endpoint) == []


def test_a_writer_failing_half_way_leaves_the_previous_files(hand_made_source, lake, monkeypatch):
    settings = SETTINGS.with_endpoint(MaxFileSize=1, RowGroupLength=5)
    run(lake, hand_made_source, tables=["SimulacaoParcela", "Grupo"], settings=settings)
    before = digest(lake)
    closed = []
    real_close = engine.LoadFolder._close_file

    def failing_close(self):
        real_close(self)
        closed.append(self.files[-1][0])
        if len(closed) == 3 and "SimulacaoParcela" in self.folder:
            raise OSError("disk vanished")

    monkeypatch.setattr(engine.LoadFolder, "_close_file", failing_close)
    report = run(lake, hand_made_source, tables=["SimulacaoParcela"], settings=settings.with_endpoint(MaxFileSize=2))
    result = report.tables["SimulacaoParcela"]
    assert result.state == ERRORED and "dbo.SimulacaoParcela" in result.error and "disk vanished" in result.error
    assert digest(lake) == before  # the previous 24 files, untouched; nothing of the failed load visible
    assert not any(Path(lake.path("_dms", "staging")).rglob("*.parquet"))


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from consorcio_assets.catalog import catalog
    from consorcio_assets.dms import engine
    from consorcio_assets.dms.mappings import table_mappings
    from consorcio_assets.dms.settings_files import load_settings
    from consorcio_assets.common.lake_zones import Lake

    real_close = engine.LoadFolder._close_file
    def slow_close(self):
        real_close(self)
        print("CLOSED", self.files[-1][0], flush=True)
        time.sleep(60)
    engine.LoadFolder._close_file = slow_close
    settings = load_settings().with_endpoint(MaxFileSize=1, RowGroupLength=7)
    engine.run_full_load(table_mappings([catalog()["SimulacaoParcela"]]), source_url="duckdb:///" + sys.argv[1],
                         lake=Lake(sys.argv[2]), settings=settings)
""")


def test_a_writer_killed_half_way_leaves_the_previous_files(hand_made_source, lake):
    run(lake, hand_made_source, tables=["SimulacaoParcela"])
    before = digest(lake)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(hand_made_source), lake.uri],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        line = child.stdout.readline()
        assert line.startswith("CLOSED") and "/_dms/staging/" in line, line
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert digest(lake) == before and files(lake, "SimulacaoParcela") == ["LOAD00000001.parquet"]
    assert list(Path(lake.path("_dms", "staging")).rglob("LOAD*"))  # the killed load's debris, outside raw/
    run(lake, hand_made_source, tables=["SimulacaoParcela"], settings=SETTINGS.with_endpoint(RowGroupLength=60))
    assert not list(Path(lake.path("_dms")).rglob("LOAD*"))  # the next load of the table clears it
    assert len(read_parquet(lake, "SimulacaoParcela")) == 120


def test_a_lake_that_cannot_be_written_fails_each_table_by_name(hand_made_source, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    report = run(Lake((blocker / "lake").as_uri()), hand_made_source, tables=["Grupo", "Segmento"])
    assert {r.state for r in report.tables.values()} == {ERRORED}
    assert "dbo.Grupo: cannot write to the lake" in report.tables["Grupo"].error
    assert blocker.read_text() == "x"


def test_the_same_code_writes_to_s3(hand_made_source, s3_bucket):
    lake = Lake(f"s3://{s3_bucket}/lake")
    for _ in range(2):  # a reload replaces the files
        report = run(
            lake, hand_made_source, tables=["Simulacao", "Grupo", "vw_FunilMensal"], boundaries={"Simulacao": [["21"]]}
        )
        assert {r.state for r in report.tables.values()} == {COMPLETED}
    fs, root = lake.filesystem()
    assert isinstance(fs, pafs.S3FileSystem)
    listed = list_files(fs, root, "raw")
    assert [f.path for f in listed] == [
        "raw/dbo/Grupo/LOAD00000001.parquet",
        "raw/dbo/Simulacao/SEGMENT1/LOAD00000001.parquet",
        "raw/dbo/Simulacao/SEGMENT2/LOAD00000001.parquet",
        "raw/dbo/vw_FunilMensal/LOAD00000001.parquet",
    ]
    rows = pa.concat_tables([pq.read_table(f"{root}/{f.path}", filesystem=fs) for f in listed[1:3]]).to_pylist()
    assert sort_rows(rows, "Simulacao") == source_rows(hand_made_source, "Simulacao")
    assert not [f for f in list_files(fs, root, "_dms")]  # staging emptied after the swap


def test_layout_problems_name_strangers_and_gaps():
    endpoint = SETTINGS.endpoint
    assert layout_problems(["LOAD00000001.parquet", "SEGMENT1/LOAD00000001.parquet"], endpoint) == []
    problems = layout_problems(
        ["LOAD00000001.parquet", "LOAD00000003.parquet", "part-0.parquet", "LOAD00000002.csv", "load0000000a.parquet"],
        endpoint,
    )
    assert len(problems) == 4 and any("[1, 3]" in p for p in problems)


@pytest.mark.parametrize("value, expected", [(b"\x00\xff\x10", "00FF10"), (b"", ""), (None, None)])
def test_binary_renders_as_upper_case_hex(value, expected):
    assert engine.hex_upper(pa.array([b"zz", value], pa.binary()).slice(1)).to_pylist() == [expected]


def test_stale_cleanup_tolerates_a_work_folder_removed_while_listed():
    """A lake being reset under a starting load: the listing of `_dms/staging` fails, which means nothing stale."""
    from consorcio_assets.catalog import catalog
    from consorcio_assets.dms.engine import Workspace

    class VanishingFs:
        listed: list[str] = []  # noqa: RUF012 - one list for every instance: the test reads what was listed

        def get_file_info(self, selector):
            self.listed.append(selector.base_dir)
            raise FileNotFoundError(f"Cannot list directory '{selector.base_dir}'")

    fs = VanishingFs()
    Workspace(fs, "/lake", "load-1").remove_stale(catalog()["Segmento"])
    assert fs.listed == ["/lake/_dms/staging", "/lake/_dms/trash"]


def test_a_write_to_the_source_during_extraction_is_detected(source, lake):
    """A full-load of a source being written is not a snapshot: the table's data version changes around it."""
    import sqlalchemy as sa

    from consorcio_assets.dms.versions import DataVersion

    eng = sa.create_engine(f"duckdb:///{source}")
    src = engine.SqlAlchemySource(eng)
    batches = src.batches

    def writing_batches(query, table, rows):  # the application writes while DMS reads the table
        for n, batch in enumerate(batches(query, table, rows)):
            if table.name == "Simulacao" and n == 0:
                with eng.begin() as conn:
                    conn.exec_driver_sql(
                        "UPDATE dbo.Simulacao SET Situacao = 'C', "
                        "VersaoLinha = from_hex('00000000FFFFFFF0') WHERE SimulacaoId = 2"
                    )
            yield batch

    src.batches = writing_batches
    report = engine.LocalFullLoad(src, lake, SETTINGS).run(table_mappings([catalog()[t] for t in ALL]))
    src.close()
    sim = report.tables["Simulacao"]
    assert sim.state == COMPLETED and isinstance(sim.version_before, DataVersion)
    assert sim.source_changes == {
        "rows_before": sim.version_before.rows,
        "rows_after": sim.version_before.rows,
        "rows_changed": 1,
    }
    assert sim.version_after.max_rowversion == "00000000fffffff0"
    unchanged = [n for n in ALL if n != "Simulacao"]
    assert all(report.tables[n].source_changes is None for n in unchanged)
    assert all(report.tables[n].version_before == report.tables[n].version_after for n in unchanged)


def test_the_stand_in_is_a_snapshot_while_open_so_its_versions_are_read_once(source, lake):
    """No process can write the stand-in while the engine holds it read-only, so the version after equals the one
    before without a second pass over each table (a view's pass computes the whole view)."""
    duck = engine.DuckDBSource(source)
    writer = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(source)!r}).execute('CHECKPOINT')"],
        capture_output=True,
        text=True,
    )
    assert writer.returncode != 0 and "lock" in writer.stderr  # the claim `DuckDBSource.snapshot` rests on
    read = []
    execute = duck.execute
    duck.execute = lambda sql: read.append(sql) or execute(sql)
    report = engine.LocalFullLoad(duck, lake, SETTINGS).run(table_mappings([catalog()[t] for t in ALL]))
    duck.close()
    assert len(read) == len(ALL)
    for name in ALL:
        result = report.tables[name]
        assert result.state == COMPLETED and result.source_changes is None
        assert result.version_after == result.version_before and result.version_before.rows == result.full_load_rows
