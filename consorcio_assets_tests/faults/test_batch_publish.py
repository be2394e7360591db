"""A run's loads become visible together or not at all (issue 19, item 1), and free text never leaks (item 4).

A good version of every table is loaded once (DMS engine and Glue job through Dagster, 2,000 simulações); each
case clones it (database, lake, source), edits the DuckDB stand-in as the issue did, runs the loads again and
asserts what a user needs after a failed run: every foreign key of schema `consorcio` valid, the view snapshots
and every table as they were, nothing left staged; and that a rerun after fixing the source completes.
"""

from __future__ import annotations

import itertools
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import psycopg
import pyarrow.parquet as pq
import pytest
from dagster._serdes import serialize_value
from psycopg import sql

from consorcio_assets.common.stages import AURORA, S3_RAW, TRANSFORMED
from consorcio_assets_tests.faults.support import hidden_leftovers, visible

SIMULACOES = 2_000
LOADS = "loads_only"


def _url(server_url: str, name: str) -> str:
    return server_url.replace("/postgres?", f"/{name}?", 1)


def _env(monkeypatch, home: Path, url: str, source: Path, on_invalid: str = "fail") -> None:
    for name, value in {
        "CONSORCIO_ENV": "local",
        "CONSORCIO_HOME": str(home),
        "CONSORCIO_TARGET_URL": url,
        "CONSORCIO_LAKE_URI": (home / "lake").as_uri(),
        "CONSORCIO_SOURCE_URL": f"duckdb:///{source}",
        "CONSORCIO_GLUE_ON_INVALID": on_invalid,
    }.items():
        monkeypatch.setenv(name, value)


#: the tables the issue's edits touch, with their children and the view snapshots built on them: one batch
SIMULACAO_FAMILY = ("Simulacao", "SimulacaoParcela", "SimulacaoLance", "vw_SimulacaoResumo", "vw_FunilMensal")


def run_loads(instance: dg.DagsterInstance | None = None, tables: tuple[str, ...] | None = None):
    """DMS full load, transform and Aurora load of `tables` (default every table) as one batch; no checks (they
    are not what is tested here)."""
    from consorcio_assets.catalog import catalog
    from consorcio_assets.common.stages import asset_key
    from consorcio_assets.definitions import defs

    if tables is None:
        selection = dg.AssetSelection.groups(S3_RAW, TRANSFORMED, AURORA)
    else:
        cat = catalog()
        selection = dg.AssetSelection.assets(
            *(asset_key(stage, cat[t]) for t in tables for stage in (S3_RAW, TRANSFORMED, AURORA))
        )
    job = dg.define_asset_job(LOADS, selection=selection.without_checks())
    merged = dg.Definitions.merge(defs(), dg.Definitions(jobs=[job]))
    return merged.resolve_job_def(LOADS).execute_in_process(instance=instance, raise_on_error=False)


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """The step failures' errors (their descriptions name tables, constraints and keys)."""
    return "\n".join(
        e.step_failure_data.error.message for e in result.all_events if e.is_step_failure and e.step_failure_data.error
    )


def edit_source(source: Path, *statements: str) -> None:
    with duckdb.connect(str(source)) as conn:
        for statement in statements:
            conn.execute(statement)


def tables_state(url: str) -> dict[str, list[tuple]]:
    """Every table of schema consorcio → its rows, sorted (as text, so any type compares)."""
    with psycopg.connect(url) as conn:
        names = [
            n
            for (n,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'consorcio' ORDER BY 1"
            ).fetchall()
        ]
        return {
            n: sorted(
                tuple(str(v) for v in row)
                for row in conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier("consorcio", n))).fetchall()
            )
            for n in names
        }


def invalid_foreign_keys(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            n
            for (n,) in conn.execute(
                "SELECT conname FROM pg_constraint WHERE contype = 'f' AND NOT convalidated "
                "AND connamespace = 'consorcio'::regnamespace"
            ).fetchall()
        ]


def staged_leftovers(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            n
            for (n,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'consorcio_staging' AND tablename <> '_staged'"
            ).fetchall()
        ]


def fetch(url: str, query: str, params=None) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def aurora_materializations(result) -> list[str]:
    return [
        e.asset_key.to_user_string() for e in result.get_asset_materialization_events() if e.asset_key.path[0] == AURORA
    ]


def assert_consistent_and_unchanged(home: Home) -> None:
    """After a failed run: nothing changed (Aurora and the transformed zone), every key valid, nothing left staged."""
    url, before = home.url, home.before
    assert visible(home.home / "lake" / "transformed") == home.transformed
    assert hidden_leftovers(home.home / "lake") == []
    assert invalid_foreign_keys(url) == []
    now = tables_state(url)
    assert set(now) == set(before)
    changed = [t for t in before if now[t] != before[t]]
    assert changed == [], f"tables changed by a failed run: {changed}"
    assert staged_leftovers(url) == []


@dataclass
class Home:
    home: Path
    url: str
    source: Path
    before: dict[str, list[tuple]]
    transformed: dict[str, str]


@pytest.fixture(scope="module")
def good_version(pg_server_url, tmp_path_factory):
    """(template database, home) holding every table's good version, loaded through Dagster."""
    from consorcio_assets.source.stand_in import seed

    name = f"tpl_{uuid.uuid4().hex[:12]}"
    home = tmp_path_factory.mktemp("batch") / "home"
    source = home / "source" / "consorcio_simulacao.duckdb"
    seed(source, simulacoes=SIMULACOES, seed=19)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, home, _url(pg_server_url, name), source)
        result = run_loads()
    assert result.success, failure_text(result)[-3000:]
    yield name, home
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def loaded(pg_server_url, good_version, tmp_path, monkeypatch) -> Home:
    """A private copy of the good version (database, lake, source), the environment pointing at it."""
    template, template_home = good_version
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    home = tmp_path / "home"
    shutil.copytree(template_home / "lake", home / "lake")
    shutil.copytree(template_home / "source", home / "source")
    url = _url(pg_server_url, name)
    source = home / "source" / "consorcio_simulacao.duckdb"
    _env(monkeypatch, home, url, source)
    yield Home(home, url, source, tables_state(url), visible(home / "lake" / "transformed"))
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_failed_table_publishes_nothing(loaded, fault_case):
    """Issue scenario 1: a simulação deleted with its instalments and bids, and a bid with TipoLance 'X'."""
    fault_case.expect(
        "a run whose simulacao_lance fails its CHECK, after deleting a simulação",
        "nothing is published: every table keeps its previous version, every foreign key valid; "
        "the rerun after the fix publishes all",
    )
    lance = fetch(
        loaded.url, "SELECT lance_id FROM consorcio.simulacao_lance WHERE simulacao_id <> 25 ORDER BY lance_id LIMIT 1"
    )[0][0]
    edit_source(
        loaded.source,
        "DELETE FROM dbo.SimulacaoParcela WHERE SimulacaoId = 25",
        "DELETE FROM dbo.SimulacaoLance WHERE SimulacaoId = 25",
        "DELETE FROM dbo.Simulacao WHERE SimulacaoId = 25",
        f"UPDATE dbo.SimulacaoLance SET TipoLance = 'X' WHERE LanceId = {lance}",
    )
    result = run_loads(tables=SIMULACAO_FAMILY)
    assert not result.success
    message = failure_text(result)
    assert "ck_lance_tipo" in message and f"lance_id={lance}" in message
    assert "Nothing was published to Aurora" in message
    assert aurora_materializations(result) == []  # nothing claims a new version, so no check runs on one
    assert_consistent_and_unchanged(loaded)
    assert fetch(loaded.url, "SELECT count(*) FROM consorcio.simulacao WHERE simulacao_id = 25")[0][0] == 1

    edit_source(loaded.source, f"UPDATE dbo.SimulacaoLance SET TipoLance = 'L' WHERE LanceId = {lance}")
    rerun = run_loads(tables=SIMULACAO_FAMILY)
    assert rerun.success, failure_text(rerun)[-3000:]
    assert invalid_foreign_keys(loaded.url) == [] and staged_leftovers(loaded.url) == []
    for table in (
        "consorcio.simulacao",
        "consorcio.simulacao_parcela",
        "consorcio.simulacao_lance",
        "consorcio_snapshot.vw_simulacao_resumo",
        "consorcio.vw_simulacao_resumo",
    ):  # snapshot, live view
        assert fetch(loaded.url, f"SELECT count(*) FROM {table} WHERE simulacao_id = 25")[0][0] == 0
    fault_case.saw(
        "the run failed naming simulacao_lance, ck_lance_tipo and the key; 0 tables changed, 0 foreign "
        "keys NOT VALID; the rerun published every table",
        0,
    )


def test_reject_mode_rejects_the_children_of_a_rejected_parent(loaded, monkeypatch, fault_case):
    """Issue scenario 2: reject mode, ValorCredito = -1 on SimulacaoId 11."""
    fault_case.expect(
        "reject mode: a simulação breaking its CHECK",
        "the simulação and its instalments and bids "
        "are rejected by key (the reason names the parent key); no orphan, every foreign key valid",
    )
    monkeypatch.setenv("CONSORCIO_GLUE_ON_INVALID", "reject")
    children = {
        t: fetch(loaded.url, f"SELECT count(*) FROM consorcio.{t} WHERE simulacao_id = 11")[0][0]
        for t in ("simulacao_parcela", "simulacao_lance")
    }
    assert children["simulacao_parcela"] > 0
    edit_source(loaded.source, "UPDATE dbo.Simulacao SET ValorCredito = -1 WHERE SimulacaoId = 11")
    result = run_loads(tables=SIMULACAO_FAMILY)
    assert result.success, failure_text(result)[-3000:]
    assert invalid_foreign_keys(loaded.url) == [] and staged_leftovers(loaded.url) == []
    for table in ("simulacao", "simulacao_parcela", "simulacao_lance"):
        assert fetch(loaded.url, f"SELECT count(*) FROM consorcio.{table} WHERE simulacao_id = 11")[0][0] == 0
    rejects = fetch(loaded.url, "SELECT table_name, primary_key, reason FROM consorcio.consorcio_rejects")
    by_table: dict[str, list] = {}
    for table, _key, reason in rejects:
        by_table.setdefault(table, []).append(reason)
    assert by_table["simulacao"] == ["violates check constraint ck_simulacao_valor"]
    for table, count in children.items():
        assert len(by_table.get(table, [])) == count
        assert all("(simulacao_id=11)" in r and "fk_" in r for r in by_table.get(table, []))
    assert not any("-1" in r for r in itertools.chain.from_iterable(by_table.values()))  # keys, never values

    monkeypatch.setenv("CONSORCIO_GLUE_ON_INVALID", "fail")
    edit_source(loaded.source, "UPDATE dbo.Simulacao SET ValorCredito = 50000 WHERE SimulacaoId = 11")
    rerun = run_loads(tables=SIMULACAO_FAMILY)
    assert rerun.success, failure_text(rerun)[-3000:]
    assert (
        fetch(loaded.url, "SELECT count(*) FROM consorcio.simulacao_parcela WHERE simulacao_id = 11")[0][0]
        == children["simulacao_parcela"]
    )
    assert fetch(loaded.url, "SELECT count(*) FROM consorcio.consorcio_rejects")[0][0] == 0
    assert invalid_foreign_keys(loaded.url) == []
    fault_case.saw(
        f"simulação 11 and its {sum(children.values())} children rejected by key; 0 orphans, 0 foreign "
        "keys NOT VALID; the rerun restored them",
        0,
    )


def test_views_and_other_tables_stay_with_their_base_when_one_fails(loaded, fault_case):
    """Issue scenario 3: ValorCredito negated on SimulacaoId 2 and a 13-digit CPF planted in Cliente."""
    fault_case.expect(
        "simulacao fails its CHECK while a bad CPF is planted in cliente",
        "no view snapshot and no other table is swapped in: they agree with their base tables; "
        "no table is reported materialized, so none is counted as checked",
    )
    valor = fetch(loaded.url, "SELECT valor_credito FROM consorcio.simulacao WHERE simulacao_id = 2")[0][0]
    edit_source(
        loaded.source,
        f"UPDATE dbo.Simulacao SET ValorCredito = -{valor} WHERE SimulacaoId = 2",
        "UPDATE dbo.Cliente SET CpfCnpj = '1234567890123' WHERE ClienteId = "
        "(SELECT min(ClienteId) FROM dbo.Cliente WHERE TipoPessoa = 'F')",
    )
    result = run_loads()
    assert not result.success
    assert "ck_simulacao_valor" in failure_text(result)
    assert aurora_materializations(result) == []
    assert_consistent_and_unchanged(loaded)  # cliente included: the bad CPF is not in
    assert fetch(loaded.url, "SELECT count(*) FROM consorcio.cliente WHERE cpf_cnpj = '1234567890123'")[0][0] == 0
    assert (
        fetch(
            loaded.url,
            "SELECT v.valor_credito = s.valor_credito FROM consorcio_snapshot.vw_simulacao_resumo v "
            "JOIN consorcio.simulacao s USING (simulacao_id) WHERE simulacao_id = 2",
        )[0][0]
        is True
    )

    edit_source(loaded.source, f"UPDATE dbo.Simulacao SET ValorCredito = {valor} WHERE SimulacaoId = 2")
    rerun = run_loads(tables=("Cliente", *SIMULACAO_FAMILY))
    assert rerun.success, failure_text(rerun)[-3000:]
    assert invalid_foreign_keys(loaded.url) == []
    fault_case.saw(
        "simulacao failed its CHECK; 0 tables or snapshots swapped, 0 aurora materializations "
        "reported; the rerun published every table",
        0,
    )


FAKE_NAME, FAKE_CPF = "Luiza Lopes Lacerda", "44708000669"


def _haystack(instance_dir: Path, home: Path, instance, run_id: str, console: str) -> dict[str, str]:
    texts = {"event log": "\n".join(serialize_value(e) for e in instance.all_logs(run_id)), "console": console}
    for root in (instance_dir, home / "glue" / "logs"):
        for path in sorted(root.rglob("*")):
            if path.is_file():
                texts[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    return texts


def test_free_text_never_leaks(loaded, monkeypatch, capfd, fault_case):
    """Issue item 4: a NUL planted in Observacao with a name and a CPF, in fail and in reject mode."""
    fault_case.expect(
        "a NUL in Observacao holding a name and a CPF",
        "the error names column, file, row and key; "
        "the text appears in no output, event log, compute log, Glue log or reject",
    )
    edit_source(
        loaded.source,
        "UPDATE dbo.Simulacao SET Observacao = 'Cliente "
        + FAKE_NAME
        + " CPF "
        + FAKE_CPF
        + " ligou' || chr(0) || 'de novo' WHERE SimulacaoId = 7",
    )
    needles = [re.compile(re.escape(v)) for v in (FAKE_NAME, FAKE_CPF, "ligou")]
    found = []
    for mode in ("fail", "reject"):
        monkeypatch.setenv("CONSORCIO_GLUE_ON_INVALID", mode)
        instance_dir = loaded.home / f"dagster-{mode}"
        instance_dir.mkdir()
        with dg.DagsterInstance.local_temp(str(instance_dir)) as instance:
            result = run_loads(instance, SIMULACAO_FAMILY)
            texts = _haystack(instance_dir, loaded.home, instance, result.run_id, "".join(capfd.readouterr()))
        if mode == "fail":
            assert not result.success
            assert "Simulacao.Observacao: contains a NUL character in raw/dbo/Simulacao/" in texts["event log"]
            assert "SimulacaoId=7" in texts["event log"]
        else:
            assert result.success, failure_text(result)[-3000:]
            texts["rejects table"] = "\n".join(
                str(r) for r in fetch(loaded.url, "SELECT * FROM consorcio.consorcio_rejects")
            )
            assert "contains a NUL character" in texts["rejects table"]
            for parquet in (loaded.home / "lake" / "transformed").rglob("_rejects.parquet"):
                texts[str(parquet)] = str(pq.read_table(parquet).to_pylist())
        found += [(mode, where) for where, text in texts.items() for n in needles if n.search(text)]
    fault_case.saw(f"free text searched in every output of a failing and a rejecting run: {len(found)} found", 0)
    assert found == []


def test_two_batches_staging_one_table(segmento, fault_case):
    """Batch A stages Segmento, batch B stages it again before A publishes: A's publish refuses (its staging was
    replaced) and changes nothing; B's publish swaps B's version in, Aurora and transformed zone together."""
    from consorcio_assets_tests.faults.support import aurora_rows
    from consorcio_assets_tests.glue import data
    from consorcio_assets_tests.glue.data import CAT
    from consorcio_assets_tests.glue.helpers import error_of, ok, run_job, write_raw

    fault_case.expect(
        "two batches stage one table before either publishes",
        "the earlier batch's publish fails naming the table and changes nothing; the later one publishes its version",
    )
    table, lake, url = segmento.table, segmento.lake, segmento.url

    def stage(rows: int, batch: str) -> None:
        write_raw(lake, table, data.table("Segmento", data.segmentos(rows)))
        ok(
            run_job(
                lake,
                table,
                CAT,
                url,
                "--swap",
                "deferred",
                "--batch-tables",
                "segmento",
                "--run-id",
                batch,
                expected_rows=rows,
            )
        )

    def publish(batch: str):
        return run_job(lake, table, CAT, url, "--action", "publish", "--tables", "segmento", "--run-id", batch)

    stage(6, "batch-a")
    stage(5, "batch-b")
    assert segmento.lost() == 0 and len(aurora_rows(url, table)) == 4  # staged is not visible
    refused = publish("batch-a")
    assert refused.returncode == 1
    assert "segmento: not staged by this batch (run batch-a) or restaged by another run" in error_of(refused)
    assert segmento.lost() == 0
    ok(publish("batch-b"))
    assert len(aurora_rows(url, table)) == 5
    assert pq.read_table(lake / "transformed" / "segmento").num_rows == 5
    assert staged_leftovers(url) == [] and hidden_leftovers(lake) == []
    fault_case.saw("batch A's publish refused naming segmento, nothing changed; batch B's 5 rows published", 0)
