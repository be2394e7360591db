"""The Glue script alone (a subprocess) against the embedded PostgreSQL: idempotent reruns, the swap's
atomicity when the job is killed mid-COPY, foreign keys across swaps, the per-table lock, and bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest

from consorcio_assets_tests.glue import data
from consorcio_assets_tests.glue.data import CAT
from consorcio_assets_tests.glue.helpers import error_of, fetch, job_command, job_env, ok, rows_of, run_job, write_raw


def _load(lake: Path, url: str, name: str, rows: list[dict], *args: str, fmt: str = "parquet"):
    write_raw(lake, CAT[name], data.table(name, rows), fmt=fmt)
    return run_job(lake, CAT[name], CAT, url, "--raw-format", fmt, *args, expected_rows=len(rows))


def _constraints(url: str, table: str) -> dict[str, tuple[str, bool]]:
    rows = fetch(
        url, "SELECT conname, contype, convalidated FROM pg_constraint WHERE conrelid = %s::regclass", (table,)
    )
    return {name: (kind, valid) for name, kind, valid in rows}


def test_load_builds_the_physical_model_and_reruns_idempotently(fresh_db, tmp_path):
    lake = tmp_path / "lake"
    ok(_load(lake, fresh_db, "Administradora", data.administradoras()))
    first = rows_of(fresh_db, "consorcio.administradora", "administradora_id")
    done = _load(lake, fresh_db, "Administradora", data.administradoras())
    ok(done)
    assert rows_of(fresh_db, "consorcio.administradora", "administradora_id") == first
    assert len(first) == 3 and first[0][1] == "00000000000001"
    assert set(_constraints(fresh_db, "consorcio.administradora")) == {"pk_administradora", "uq_administradora_cnpj"}
    # identity: the sequence continues past the loaded ids
    assert (
        fetch(fresh_db, "SELECT nextval(pg_get_serial_sequence('consorcio.administradora', 'administradora_id'))")[0][0]
        == 4
    )
    comment = fetch(fresh_db, "SELECT col_description('consorcio.administradora'::regclass, 2)")[0][0]
    assert "dbo.Administradora.Cnpj CHAR(14)" in comment
    assert fetch(fresh_db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'consorcio_staging'")[0][0] == 0
    parts = sorted(p.name for p in (lake / "transformed" / "administradora").iterdir())
    assert parts == ["part-00000.parquet"]
    assert pq.read_table(lake / "transformed" / "administradora").num_rows == 3
    assert '"rows_written": 3' in done.stdout


def test_a_loaded_table_is_vacuumed_and_analyzed(fresh_db, tmp_path):
    """Left to autovacuum, a fresh table is scanned in the background while the next load runs."""
    lake = tmp_path / "lake"
    write_raw(lake, CAT["SimulacaoParcela"], data.parcelas(5_000))
    ok(run_job(lake, CAT["SimulacaoParcela"], CAT, fresh_db))
    pages, visible, tuples = fetch(
        fresh_db,
        "SELECT relpages, relallvisible, reltuples FROM pg_class WHERE oid = 'consorcio.simulacao_parcela'::regclass",
    )[0]
    assert pages > 0 and visible == pages and tuples == 5_000
    assert (
        fetch(
            fresh_db,
            "SELECT n_ins_since_vacuum FROM pg_stat_user_tables WHERE relid = 'consorcio.simulacao_parcela'::regclass",
        )[0][0]
        == 0
    )


def test_parent_swap_keeps_children_consistent(fresh_db, tmp_path):
    lake = tmp_path / "lake"
    for name, rows in (
        ("Segmento", data.segmentos()),
        ("Administradora", data.administradoras()),
        ("PlanoComercial", data.planos()),
    ):
        ok(_load(lake, fresh_db, name, rows))
    fk = ("f", True)
    assert _constraints(fresh_db, "consorcio.plano_comercial")["fk_plano_segmento"] == fk
    with psycopg.connect(fresh_db, autocommit=True) as conn:  # views someone else built on the tables
        conn.execute(
            "CREATE SCHEMA analytics; CREATE ROLE leitor_glue_test; "
            "CREATE VIEW analytics.planos AS SELECT p.plano_id, s.codigo FROM consorcio.plano_comercial p "
            "JOIN consorcio.segmento s USING (segmento_id); "
            "CREATE VIEW analytics.contagem AS SELECT count(*) AS n FROM analytics.planos; "
            "COMMENT ON VIEW analytics.planos IS 'planos por segmento'; "
            "GRANT SELECT ON analytics.planos TO leitor_glue_test"
        )
    try:
        ok(_load(lake, fresh_db, "Segmento", data.segmentos(6)))  # parent reloaded: the child's key is re-added
        assert _constraints(fresh_db, "consorcio.plano_comercial")["fk_plano_segmento"] == fk
        assert fetch(fresh_db, "SELECT n FROM analytics.contagem") == [(5,)]
        assert fetch(
            fresh_db,
            "SELECT obj_description('analytics.planos'::regclass, 'pg_class'), "
            "has_table_privilege('leitor_glue_test', 'analytics.planos', 'SELECT')",
        ) == [("planos por segmento", True)]
    finally:
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.execute("DROP SCHEMA analytics CASCADE; DROP ROLE leitor_glue_test")
    # a parent reload that would orphan children is rolled back, naming the key and the orphans
    done = _load(lake, fresh_db, "Segmento", data.segmentos(1))
    message = error_of(done)
    assert "fk_plano_segmento" in message and "plano_id=" in message and "rolled back" in message
    assert len(rows_of(fresh_db, "consorcio.segmento", "segmento_id")) == 6
    assert _constraints(fresh_db, "consorcio.plano_comercial")["fk_plano_segmento"] == fk


def test_a_child_row_without_its_parent_fails_the_load_naming_the_key(fresh_db, tmp_path):
    lake = tmp_path / "lake"
    for name, rows in (
        ("Segmento", data.segmentos()),
        ("Administradora", data.administradoras()),
        ("PlanoComercial", data.planos()),
    ):
        ok(_load(lake, fresh_db, name, rows))
    before = rows_of(fresh_db, "consorcio.plano_comercial", "plano_id")
    message = error_of(_load(lake, fresh_db, "PlanoComercial", data.planos(4, segmentos_ids=(1, 99))))
    assert "plano_comercial: 2 row(s) break foreign key fk_plano_segmento" in message
    assert "(plano_id=1), (plano_id=3)" in message
    assert rows_of(fresh_db, "consorcio.plano_comercial", "plano_id") == before  # the previous table stays
    assert set(_constraints(fresh_db, "consorcio.plano_comercial").values()) <= {
        ("p", True),
        ("f", True),
        ("c", True),
        ("u", True),
    }


def test_the_swap_reports_own_keys_a_parent_swap_left_not_valid(fresh_db, tmp_path):
    """A parent swapped between the child's key build and its swap re-adds the child's key NOT VALID on the
    staging table: the child's swap must hand it to the closing validation, not take it as validated."""
    from consorcio_assets.glue_runner.spec import table_spec
    from consorcio_glue.aurora import swap
    from consorcio_glue.spec import Spec

    lake = tmp_path / "lake"
    for name, rows in (
        ("Segmento", data.segmentos()),
        ("Administradora", data.administradoras()),
        ("PlanoComercial", data.planos()),
    ):
        ok(_load(lake, fresh_db, name, rows))
    spec = Spec(table_spec(CAT["PlanoComercial"], CAT))
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE consorcio_staging.plano_comercial (LIKE consorcio.plano_comercial); "
            "INSERT INTO consorcio_staging.plano_comercial SELECT * FROM consorcio.plano_comercial; "
            "ALTER TABLE consorcio_staging.plano_comercial ADD CONSTRAINT fk_plano_administradora "
            "FOREIGN KEY (administradora_id) REFERENCES consorcio.administradora (administradora_id); "
            "ALTER TABLE consorcio_staging.plano_comercial ADD CONSTRAINT fk_plano_segmento "
            "FOREIGN KEY (segmento_id) REFERENCES consorcio.segmento (segmento_id) NOT VALID"
        )
        touched = swap(conn, spec, None, "test", validate=False)
    assert [name for _, name in touched] == ["fk_plano_segmento"]
    assert _constraints(fresh_db, "consorcio.plano_comercial") == {
        "fk_plano_administradora": ("f", True),
        "fk_plano_segmento": ("f", False),
    }


def _copy_running(url: str) -> int | None:
    row = fetch(
        url,
        "SELECT max(tuples_processed) FROM pg_stat_progress_copy WHERE relid = "
        "to_regclass('consorcio_staging.simulacao_parcela')",
    )
    return row[0][0] if row else None


def test_kill_during_copy_keeps_the_previous_table(fresh_db, tmp_path):
    lake = tmp_path / "lake"
    parcela = CAT["SimulacaoParcela"]
    write_raw(lake, parcela, data.parcelas(1_000))
    ok(run_job(lake, parcela, CAT, fresh_db))
    before = rows_of(fresh_db, "consorcio.simulacao_parcela", "simulacao_id, numero_parcela")
    big = data.parcelas(400_000, seed=2)
    write_raw(lake, parcela, big, rows_per_file=100_000)
    job = subprocess.Popen(
        job_command(lake, parcela, CAT, "--batch-rows", "8192"),
        env=job_env(fresh_db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not (_copy_running(fresh_db) or 0) > 0:
        assert job.poll() is None and time.monotonic() < deadline, "the COPY never started"
        time.sleep(0.01)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    copied = _copy_running(fresh_db)
    assert copied is None or copied < big.num_rows  # killed mid-COPY
    assert rows_of(fresh_db, "consorcio.simulacao_parcela", "simulacao_id, numero_parcela") == before
    assert pq.read_table(lake / "transformed" / "simulacao_parcela").num_rows == 1_000
    done = run_job(lake, parcela, CAT, fresh_db, expected_rows=big.num_rows)
    ok(done)
    assert fetch(fresh_db, "SELECT count(*), sum(valor_total) FROM consorcio.simulacao_parcela")[0] == (
        big.num_rows,
        sum(big.column("ValorTotal").to_pylist()),
    )
    assert not [p for p in (lake / "transformed").iterdir() if p.name.startswith(".")]
    assert fetch(fresh_db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'consorcio_staging'")[0][0] == 0


def test_two_runs_of_a_table_never_interleave(fresh_db, tmp_path):
    lake = tmp_path / "lake"
    write_raw(lake, CAT["Segmento"], data.table("Segmento", data.segmentos()))
    with psycopg.connect(fresh_db, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtextextended('consorcio.load:segmento', 0))")
        job = subprocess.Popen(
            job_command(lake, CAT["Segmento"], CAT),
            env=job_env(fresh_db),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not fetch(fresh_db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")[0][0]:
            assert job.poll() is None and time.monotonic() < deadline, "the job did not wait for the lock"
            time.sleep(0.05)
        time.sleep(0.5)
        assert job.poll() is None  # still waiting for the lock held by "another run"
        holder.execute("SELECT pg_advisory_unlock(hashtextextended('consorcio.load:segmento', 0))")
        _out, err = job.communicate(timeout=60)
    assert job.returncode == 0, err
    assert "waiting for its lock" in err


# -- bad input: the run fails naming table, file and key; Aurora keeps its previous state -------------------


@pytest.fixture(scope="module")
def segmento_db(pg_server_url, tmp_path_factory):
    """One database with Segmento loaded, shared by the bad-input tests: each must leave it as it was."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_server_url.replace("/postgres?", f"/{name}?", 1)
    ok(_load(tmp_path_factory.mktemp("lake"), url, "Segmento", data.segmentos()))
    yield url, rows_of(url, "consorcio.segmento", "segmento_id")
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def loaded(segmento_db, tmp_path):
    url, before = segmento_db
    lake = tmp_path / "lake"
    write_raw(lake, CAT["Segmento"], data.table("Segmento", data.segmentos()))
    yield lake, url, before


def _unchanged(url: str, before) -> None:
    assert rows_of(url, "consorcio.segmento", "segmento_id") == before
    assert fetch(url, "SELECT count(*) FROM consorcio.consorcio_rejects")[0][0] == 0


def _clear_raw(lake: Path) -> None:
    for f in (lake / "raw" / "dbo" / "Segmento").iterdir():
        f.unlink()


def test_missing_load_folder_for_a_non_empty_table(loaded):
    lake, url, before = loaded
    _clear_raw(lake)
    (lake / "raw" / "dbo" / "Segmento").rmdir()
    message = error_of(run_job(lake, CAT["Segmento"], CAT, url, expected_rows=4))
    assert "Segmento" in message and "no LOAD files under raw/dbo/Segmento/" in message and "4 rows" in message
    _unchanged(url, before)


def test_an_empty_table_without_folder_loads_empty(fresh_db, tmp_path):
    lake = tmp_path / "lake"
    ok(_load(lake, fresh_db, "Segmento", data.segmentos()))
    _clear_raw(lake)
    (lake / "raw" / "dbo" / "Segmento").rmdir()
    ok(run_job(lake, CAT["Segmento"], CAT, fresh_db, expected_rows=0))
    assert rows_of(fresh_db, "consorcio.segmento", "segmento_id") == []


def test_truncated_parquet_file(loaded):
    lake, url, before = loaded
    _clear_raw(lake)
    rows = data.segmentos(8)
    write_raw(lake, CAT["Segmento"], data.table("Segmento", rows), rows_per_file=4)
    second = lake / "raw" / "dbo" / "Segmento" / "LOAD00000002.parquet"
    second.write_bytes(second.read_bytes()[: second.stat().st_size // 2])
    message = error_of(run_job(lake, CAT["Segmento"], CAT, url, expected_rows=8))
    assert "Segmento" in message and "raw/dbo/Segmento/LOAD00000002.parquet" in message
    _unchanged(url, before)


def test_missing_rows_against_what_dms_loaded(loaded):
    lake, url, before = loaded
    message = error_of(run_job(lake, CAT["Segmento"], CAT, url, expected_rows=5))
    assert "hold 4 rows but DMS loaded 5" in message
    _unchanged(url, before)


def test_csv_with_a_wrong_column_count(loaded):
    lake, url, before = loaded
    _clear_raw(lake)
    [path] = write_raw(lake, CAT["Segmento"], data.table("Segmento", data.segmentos()), fmt="csv")
    lines = path.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0]  # SegmentoId 3 loses its last field
    path.write_text("\n".join(lines) + "\n")
    message = error_of(run_job(lake, CAT["Segmento"], CAT, url, "--raw-format", "csv"))
    assert "raw/dbo/Segmento/LOAD00000001.csv" in message and "SegmentoId=3" in message
    assert "expected 6, got 5" in message
    _unchanged(url, before)


@pytest.mark.parametrize(
    "fmt,column,value,reason",
    [
        ("parquet", "Codigo", "CODIGO-LONGO", "longer than varchar(10)"),
        ("csv", "PrazoMinimo", 70000, "unparsable as smallint"),
    ],
)
def test_value_out_of_range_for_the_target_type(loaded, fmt, column, value, reason):
    lake, url, before = loaded
    _clear_raw(lake)
    rows = data.segmentos()
    if fmt == "parquet":
        rows[2][column] = value
        write_raw(lake, CAT["Segmento"], data.table("Segmento", rows))
    else:
        [path] = write_raw(lake, CAT["Segmento"], data.table("Segmento", rows), fmt="csv")
        lines = path.read_text().splitlines()
        fields = lines[2].split(",")
        fields[CAT["Segmento"].columns.index(CAT["Segmento"].column(column))] = str(value)
        lines[2] = ",".join(fields)
        path.write_text("\n".join(lines) + "\n")
    message = error_of(run_job(lake, CAT["Segmento"], CAT, url, "--raw-format", fmt))
    assert f"Segmento.{column}: {reason}" in message
    assert f"raw/dbo/Segmento/LOAD00000001.{fmt}" in message and "SegmentoId=3" in message
    _unchanged(url, before)


def test_check_constraint_violation_names_the_key(loaded):
    lake, url, before = loaded
    _clear_raw(lake)
    write_raw(lake, CAT["Segmento"], data.table("Segmento", data.segmentos(row1={"PrazoMinimo": 0})))
    message = error_of(run_job(lake, CAT["Segmento"], CAT, url))
    assert "ck_segmento_prazo" in message and "segmento_id=2" in message
    _unchanged(url, before)


def test_reject_mode_routes_bad_rows_aside(fresh_db, tmp_path):
    lake, url = tmp_path / "lake", fresh_db
    rows = data.segmentos(5, row1={"PrazoMinimo": 0}, row3={"Codigo": "CODIGO-LONGO"})
    write_raw(lake, CAT["Segmento"], data.table("Segmento", rows))
    done = run_job(lake, CAT["Segmento"], CAT, url, "--on-invalid", "reject", "--run-id", "r1")
    ok(done)
    assert [r[0] for r in rows_of(url, "consorcio.segmento", "segmento_id")] == [1, 3, 5]
    rejects = fetch(
        url,
        "SELECT table_name, source_file, primary_key, column_name, reason, run_id "
        "FROM consorcio.consorcio_rejects ORDER BY primary_key->>'SegmentoId'",
    )
    assert rejects == [
        ("segmento", None, {"SegmentoId": 2}, None, "violates check constraint ck_segmento_prazo", "r1"),
        (
            "segmento",
            "raw/dbo/Segmento/LOAD00000001.parquet",
            {"SegmentoId": 4},
            "codigo",
            "longer than varchar(10) (value 'CODIGO-LONGO')",
            "r1",
        ),
    ]
    assert '"rows_rejected": 2' in done.stdout
    ok(_load(lake, url, "Segmento", data.segmentos(), "--on-invalid", "reject"))  # a clean rerun clears them
    assert fetch(url, "SELECT count(*) FROM consorcio.consorcio_rejects")[0][0] == 0


def test_csv_variants_dms_can_write(fresh_db, tmp_path):
    """Header, ';' delimiter, a NULL marker, DMS's leading Op and timestamp columns, parallel-load segments."""
    import pyarrow as pa

    lake, table = tmp_path / "lake", CAT["PlanoComercial"]
    rows = data.planos(6)
    rows[1]["Nome"] = 'Plano "A"; com ponto e vírgula\ne quebra'
    full = data.table("PlanoComercial", rows)
    full = full.add_column(0, "Op", pa.array(["I"] * full.num_rows)).add_column(
        1, "ts", pa.array(["2024-01-01 00:00:00.000000"] * full.num_rows)
    )
    for segment, start in (("part1", 0), ("part2", 3)):
        write_raw(
            lake, table, full.slice(start, 3), fmt="csv", segment=segment, null="NULL", delimiter=";", header=True
        )
    for name, parent_rows in (("Segmento", data.segmentos()), ("Administradora", data.administradoras())):
        ok(_load(lake, fresh_db, name, parent_rows))
    ok(
        run_job(
            lake,
            table,
            CAT,
            fresh_db,
            "--raw-format",
            "csv",
            "--csv-delimiter",
            ";",
            "--csv-null-value",
            "NULL",
            "--csv-header",
            "true",
            "--extra-columns",
            "Op,ts",
            expected_rows=6,
        )
    )
    loaded = fetch(
        fresh_db, "SELECT plano_id, nome, pct_reducao, pct_lance_fixo FROM consorcio.plano_comercial ORDER BY plano_id"
    )
    assert [r[0] for r in loaded] == [1, 2, 3, 4, 5, 6]
    assert loaded[1][1] == rows[1]["Nome"] and loaded[1][2] is None and loaded[0][3] == Decimal("25.00")
