"""The contract's views live in Aurora as real views under the application's names (`consorcio.<view>`),
created after a publish; DMS's snapshots of them load as tables into `consorcio_snapshot`. Everything here is
loaded by the Glue job itself (a swap of a base table must keep the views)."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from consorcio_assets.checks import views
from consorcio_assets.target.live_views import apply_live_views
from consorcio_assets.target.roles import apply_roles
from consorcio_assets_tests.glue.data import CAT
from consorcio_assets_tests.glue.helpers import fetch
from consorcio_assets_tests.glue.test_semantics import ROWS, load, simulacoes, target

LIVE = ("consorcio.vw_simulacao_resumo", "consorcio.vw_funil_mensal")


@pytest.fixture
def live(fresh_db, tmp_path) -> str:
    for name, rows in ROWS.items():
        load(tmp_path / "lake", fresh_db, name, rows())
    apply_roles(fresh_db)
    with psycopg.connect(fresh_db) as conn:
        assert apply_live_views(conn, CAT) == list(LIVE)
    return fresh_db


def relkind(url: str, name: str) -> str | None:
    return fetch(url, "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (name,))[0][0]


def read_as(url: str, role: str, statement: str):
    with psycopg.connect(url) as conn:
        conn.execute(f"SET ROLE {role}")
        return conn.execute(statement).fetchall()


def test_live_views_are_views_that_show_a_base_table_update_at_once(live):
    assert [relkind(live, v) for v in LIVE] == ["v", "v"]
    with psycopg.connect(live, autocommit=True) as conn:
        conn.execute("UPDATE consorcio.simulacao SET valor_credito = 123456.78 WHERE simulacao_id = 1")
        conn.execute("UPDATE consorcio.cliente SET uf = 'RJ'")
    assert fetch(live, "SELECT valor_credito FROM consorcio.vw_simulacao_resumo WHERE simulacao_id = 1") == [
        (Decimal("123456.78"),)
    ]
    assert fetch(live, "SELECT uf, simulacoes, credito_simulado FROM consorcio.vw_funil_mensal") == [
        ("RJ", 3, Decimal("323456.78"))
    ]


def test_application_and_checker_roles_read_the_live_views(live):
    for role in ("consorcio_app", "consorcio_checker"):
        assert read_as(live, role, "SELECT count(*) FROM consorcio.vw_simulacao_resumo") == [(3,)]
        assert read_as(live, role, "SELECT count(*) FROM consorcio.vw_funil_mensal") == [(1,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        read_as(live, "consorcio_analyst", "SELECT count(*) FROM consorcio.vw_simulacao_resumo")


def test_live_views_survive_a_reload_of_a_base_table(live, tmp_path):
    load(tmp_path / "lake", live, "Simulacao", simulacoes(5))  # the job swaps consorcio.simulacao
    assert [relkind(live, v) for v in LIVE] == ["v", "v"]
    assert fetch(live, "SELECT count(*) FROM consorcio.vw_simulacao_resumo") == [(5,)]
    assert read_as(live, "consorcio_app", "SELECT sum(simulacoes) FROM consorcio.vw_funil_mensal") == [(5,)]
    with psycopg.connect(live) as conn:  # re-applying after the next publish is harmless
        assert apply_live_views(conn, CAT) == list(LIVE)


def snapshot_rows(url: str, name: str) -> list[dict]:
    """What DMS would extract from the source view: here, the live view's rows under the source names."""
    view = CAT[name]
    columns = ", ".join(c.target_name for c in view.columns)
    rows = fetch(url, f"SELECT {columns} FROM {view.qualified_live_view}")
    return [{c.name: v for c, v in zip(view.columns, row)} for row in rows]


def test_snapshot_loads_into_its_own_schema_and_the_check_compares_it_with_the_live_view(live, tmp_path):
    resumo = CAT["vw_SimulacaoResumo"]
    assert resumo.qualified_target == "consorcio_snapshot.vw_simulacao_resumo"
    load(tmp_path / "lake", live, "vw_SimulacaoResumo", snapshot_rows(live, "vw_SimulacaoResumo"))
    assert relkind(live, "consorcio_snapshot.vw_simulacao_resumo") == "r"
    assert relkind(live, "consorcio.vw_simulacao_resumo") == "v"  # the snapshot load left the live view alone
    assert views.reconcile(target(live), resumo, CAT).passed
    with psycopg.connect(live, autocommit=True) as conn:  # the application writes after the load
        conn.execute("UPDATE consorcio.simulacao SET prazo_meses = 99 WHERE simulacao_id = 2")
    outcome = views.reconcile(target(live), resumo, CAT)
    assert not outcome.passed
    assert outcome.counts == {"snapshot_rows_not_recomputed": 1, "recomputed_rows_not_in_snapshot": 1}
    assert outcome.keys == ["SimulacaoId=2 (live view)", "SimulacaoId=2 (snapshot)"]


def test_the_check_fails_naming_a_missing_live_view(live):
    with psycopg.connect(live, autocommit=True) as conn:
        conn.execute("DROP VIEW consorcio.vw_funil_mensal")
    outcome = views.reconcile(target(live), CAT["vw_FunilMensal"], CAT)
    assert not outcome.passed and outcome.summary == "live view consorcio.vw_funil_mensal does not exist"


def test_the_glue_step_creates_the_live_views_after_it_publishes(local_env):
    """Through Dagster: the batch publishes the base tables, then the step creates the live views (logged)."""
    import os

    import dagster as dg

    from consorcio_assets.defs.glue_aurora import glue_transform_and_load
    from consorcio_assets_tests.glue import data
    from consorcio_assets_tests.glue.helpers import local_resources, write_raw

    lake, url = local_env / "lake", os.environ["CONSORCIO_TARGET_URL"]
    for name, rows in ROWS.items():
        write_raw(lake, CAT[name], data.table(name, rows()))
    keys = [dg.AssetKey([stage, CAT[n].target_name]) for n in ROWS for stage in ("transformed", "aurora")]
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [glue_transform_and_load],
            selection=keys,
            instance=instance,
            raise_on_error=False,
            resources=local_resources(max_concurrent_runs=2),
        )
        logs = [e.user_message for e in instance.all_logs(result.run_id)]
    assert result.success
    assert [relkind(url, v) for v in LIVE] == ["v", "v"]
    assert any(m == f"live views created or replaced: {', '.join(LIVE)}" for m in logs)
    assert fetch(url, "SELECT count(*) FROM consorcio.vw_simulacao_resumo") == [(3,)]
