"""The checks as Dagster definitions: `verify_migration` runs every check and materializes nothing; it is
green on a faithful migration and catches each corruption of the list, naming the table and the keys."""

import json

import dagster as dg
import duckdb
import pytest

from consorcio_assets.common.lake_resource import LakeResource
from consorcio_assets.defs import checks as check_defs
from consorcio_assets.source.resource import SourceDb
from consorcio_assets.target.resource import TargetDb

CORRUPTIONS = {
    # the corruption: the SQL that makes it
    "one row deleted": ("DELETE FROM consorcio.simulacao_lance WHERE lance_id = {lance}",),
    "one centavo changed": (
        "UPDATE consorcio.simulacao_parcela SET valor_seguro = valor_seguro + 0.01 "
        "WHERE simulacao_id = {parcela_sim} AND numero_parcela = 1",
    ),
    "timestamp shifted by 1 µs": (
        "UPDATE consorcio.simulacao SET atualizada_em = atualizada_em "
        "+ interval '1 microsecond' WHERE simulacao_id = {ts_sim}",
    ),
    "GUID changed": (
        "UPDATE consorcio.simulacao SET simulacao_guid = gen_random_uuid() WHERE simulacao_id = {guid_sim}",
    ),
    "NULL where a value was": ("UPDATE consorcio.cliente SET email = NULL WHERE cliente_id = '{email_cliente}'",),
    "orphan foreign key": (
        "ALTER TABLE consorcio.simulacao DROP CONSTRAINT fk_simulacao_grupo",
        "UPDATE consorcio.simulacao SET grupo_id = 999999 WHERE simulacao_id = {orphan_sim}",
    ),
    "wrong instalment": (
        "UPDATE consorcio.simulacao SET primeira_parcela = primeira_parcela + 0.01 "
        "WHERE simulacao_id = {parcela_errada}",
    ),
    "invalid CPF": ("UPDATE consorcio.cliente SET cpf_cnpj = '12345678900' WHERE cliente_id = '{cpf_cliente}'",),
    "truncated LOB": (
        "UPDATE consorcio.simulacao SET observacao = left(observacao, 3) WHERE simulacao_id = {lob_sim}",
    ),
}


@pytest.fixture
def env(monkeypatch, tmp_path, small_source, migrated, lake_copy):
    monkeypatch.setenv("CONSORCIO_ENV", "local")
    monkeypatch.setenv("CONSORCIO_HOME", str(tmp_path))
    monkeypatch.setenv("CONSORCIO_SOURCE_URL", f"duckdb:///{small_source}")
    monkeypatch.setenv("CONSORCIO_TARGET_URL", migrated)
    monkeypatch.setenv("CONSORCIO_LAKE_URI", lake_copy.as_uri())
    return tmp_path


def _keys(fetch) -> dict:
    q = {
        "lance": "SELECT max(lance_id) FROM consorcio.simulacao_lance",
        "parcela_sim": "SELECT min(simulacao_id) FROM consorcio.simulacao_parcela",
        "ts_sim": "SELECT simulacao_id FROM consorcio.simulacao ORDER BY 1 OFFSET 5",
        "guid_sim": "SELECT simulacao_id FROM consorcio.simulacao ORDER BY 1 OFFSET 6",
        "email_cliente": "SELECT cliente_id FROM consorcio.cliente WHERE email IS NOT NULL ORDER BY 1",
        "orphan_sim": "SELECT simulacao_id FROM consorcio.simulacao ORDER BY 1 OFFSET 7",
        "parcela_errada": "SELECT simulacao_id FROM consorcio.simulacao ORDER BY 1 OFFSET 8",
        "cpf_cliente": "SELECT cliente_id FROM consorcio.cliente WHERE tipo_pessoa = 'F' ORDER BY 1 DESC",
        "lob_sim": "SELECT simulacao_id FROM consorcio.simulacao WHERE length(observacao) > 10 ORDER BY 1 DESC",
    }
    return {name: fetch(sql)[0] for name, sql in q.items()}


@pytest.fixture
def databases(small_source, migrated, lake_copy) -> dict:
    """The checks' resources, injected: the small stand-in, the migrated target and its lake."""
    return {
        "source_db": SourceDb(url=f"duckdb:///{small_source}"),
        "target_db": TargetDb(url=migrated),
        "lake": LakeResource(uri=lake_copy.as_uri()),
    }


def _group_checks() -> list[dg.AssetChecksDefinition]:
    return list(check_defs.defs().asset_checks)


def _group_check_keys() -> set[dg.AssetCheckKey]:
    return {spec.key for checks in _group_checks() for spec in checks.check_specs}


def _run(resources: dict):
    """Every check group of `defs.checks`, as verify_migration runs them (in process, nothing materialized)."""
    checks = _group_checks()
    job = dg.define_asset_job(
        "verify", selection=dg.AssetSelection.checks(*checks), executor_def=dg.in_process_executor
    )
    defs = dg.Definitions(asset_checks=checks, jobs=[job], resources=resources)
    return defs.resolve_job_def("verify").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )


def _failed(result) -> dict:
    return {
        (e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations() if not e.passed
    }


def test_verify_job_runs_every_check_and_is_green_on_a_faithful_migration(env, databases):
    result = _run(databases)
    specs = _group_check_keys()
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len(specs) > 100
    assert not result.get_asset_materialization_events()
    assert result.success
    # the only non-passing check is the expected, counted loss of DATETIME2(7)'s 100 ns digit (WARN)
    assert {k: e.severity for k, e in _failed(result).items()} == {
        ("aurora/simulacao", "datetime2_100ns_truncated"): dg.AssetCheckSeverity.WARN
    }
    # each check reports what it cost (the bench ranks the slowest by it: a step runs several checks at once)
    seconds = [e.metadata["seconds"].value for e in evaluations]
    assert all(isinstance(s, float) and s >= 0 for s in seconds) and max(seconds) > 0


def test_verify_job_catches_every_corruption_naming_table_and_keys(env, databases, corrupt, fetch, small_source):
    k = _keys(fetch)
    for statements in CORRUPTIONS.values():
        corrupt(*(s.format(**k) for s in statements))
    result = _run(databases)
    assert not result.success  # blocking ERROR checks fail their step
    failed = _failed(result)
    expected = {
        ("aurora/simulacao_lance", "row_count_matches_source"): "1 rows missing in Aurora (consorcio.simulacao_lance)",
        ("aurora/simulacao_lance", "rows_match_source"): f"LanceId={k['lance']} (missing in target)",
        ("aurora/simulacao_parcela", "rows_match_source"): f"SimulacaoId={k['parcela_sim']}, NumeroParcela=1",
        ("aurora/simulacao_parcela", "rule_schedule_values"): f"SimulacaoId={k['parcela_sim']}, NumeroParcela=1",
        ("aurora/simulacao", "rows_match_source"): f"SimulacaoId={k['ts_sim']} (differs)",
        ("aurora/simulacao", "aggregates_match_source"): "consorcio.simulacao",
        ("aurora/vw_simulacao_resumo", "view_matches_recomputation"): f"SimulacaoId={k['guid_sim']}",
        ("aurora/cliente", "rows_match_source"): f"ClienteId={k['email_cliente']} (differs)",
        ("aurora/simulacao", "foreign_keys_resolve"): f"SimulacaoId={k['orphan_sim']} (fk_simulacao_grupo)",
        ("aurora/simulacao", "schema_matches_catalog"): "foreign key (grupo_id) -> grupo (grupo_id) missing",
        ("aurora/simulacao", "rule_simulation_plan"): f"SimulacaoId={k['orphan_sim']}",
        ("aurora/simulacao", "rule_instalments"): f"SimulacaoId={k['parcela_errada']}",
        ("aurora/cliente", "rule_documents"): f"ClienteId={k['cpf_cliente']}",
        ("aurora/simulacao", "lob_not_truncated"): f"SimulacaoId={k['lob_sim']}",
    }
    for key, text in expected.items():
        assert key in failed, key
        assert text in failed[key].description and failed[key].severity == dg.AssetCheckSeverity.ERROR, key
    for sim in ("ts_sim", "guid_sim", "orphan_sim", "parcela_errada", "lob_sim"):
        assert (
            f"SimulacaoId={k[sim]} (differs)"
            in failed[("aurora/simulacao", "rows_match_source")].metadata["first_keys"].value
        )
    # no PII value of the source anywhere in what the checks reported
    with duckdb.connect(str(small_source), read_only=True) as con:
        pii = {
            str(v)
            for row in con.execute(
                'SELECT "CpfCnpj", "Nome", "Email", "Telefone", "RendaMensal" FROM dbo."Cliente"'
            ).fetchall()
            for v in row
            if v is not None
        }
    reported = json.dumps(
        [
            [e.description, {n: str(m.value) for n, m in e.metadata.items()}]
            for e in result.get_asset_check_evaluations()
        ]
    )
    leaked = [v for v in pii if len(v.strip()) > 5 and v.strip() in reported]
    assert leaked == []


def test_consorcio_verify_prints_one_line_per_check_and_fails_on_error(
    env, corrupt, fetch, fresh_db, monkeypatch, capsys
):
    """The CLI path: `dagster job execute` in a subprocess on the PostgreSQL-backed instance."""
    from consorcio_assets.tooling.verify import main_verify

    monkeypatch.setenv("DAGSTER_PG_URL", fresh_db)  # the run storage, on its own database
    monkeypatch.setenv("DAGSTER_HOME", str(env / "dagster_home"))
    (lance,) = fetch("SELECT max(lance_id) FROM consorcio.simulacao_lance")
    corrupt(f"DELETE FROM consorcio.simulacao_lance WHERE lance_id = {lance}")
    code = main_verify()
    out = capsys.readouterr().out
    assert code == 1 and " FAILURE; log " in out  # the blocking ERROR check failed its step, hence the run
    lines = {tuple(line.split()[:4]): line for line in out.splitlines() if line[:4] in ("PASS", "FAIL", "WARN")}
    failed = lines[("FAIL", "aurora", "simulacao_lance", "rows_match_source")]
    assert "rows_missing_in_target=1" in failed and f"keys: LanceId={lance} (missing in target)" in failed
    assert ("PASS", "aurora", "simulacao_parcela", "rows_match_source") in lines
    assert ("WARN", "aurora", "simulacao", "datetime2_100ns_truncated") in lines
    assert len([k for k in lines if k[1] in ("aurora", "transformed", "sqlserver")]) == len(_group_check_keys())


def test_excluded_checks_are_the_ones_bundled_in_an_asset_op():
    """A check bundled in an asset's op would materialize its asset: excluded (with its op named), while a
    standalone check is not; a job over the standalone ones runs and materializes nothing."""

    @dg.asset(check_specs=[dg.AssetCheckSpec("bundled", asset="loaded")])
    def loaded():
        raise AssertionError("verify_migration must not materialize anything")

    @dg.asset_check(asset="loaded")
    def standalone():
        return dg.AssetCheckResult(passed=True)

    job = dg.define_asset_job("verify", selection=dg.AssetSelection.checks(standalone))
    defs = dg.Definitions(assets=[loaded], asset_checks=[standalone], jobs=[job])
    excluded = check_defs.excluded_checks(defs)
    assert [(key.name, "`loaded` materializes loaded" in why) for key, why in excluded] == [("bundled", True)]
    result = defs.resolve_job_def("verify").execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert [e.check_name for e in result.get_asset_check_evaluations()] == ["standalone"]
    assert not result.get_asset_materialization_events()
