"""Check results a person can act on, and never a PII value."""

import dagster as dg

from consorcio_assets.checks.outcome import WARN, Outcome, description, failed_to_run, format_key, to_check_result


def test_result_names_table_keys_counts_and_sql(cat):
    outcome = Outcome(
        "aurora",
        cat["SimulacaoParcela"],
        "rows_match_source",
        False,
        "2 rows differ",
        counts={"rows_different": 2},
        keys=[f"SimulacaoId={i}, NumeroParcela=1" for i in range(30)],
        sql="SELECT 1",
        details={"column_mismatches": {"ValorTotal": 2}},
    )
    result = to_check_result(outcome)
    assert result.asset_key == dg.AssetKey(["aurora", "simulacao_parcela"]) and not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    assert result.description.startswith(
        "consorcio.simulacao_parcela: 2 rows differ; first offending keys: "
        "SimulacaoId=0, NumeroParcela=1; SimulacaoId=1"
    )
    assert len(result.metadata["first_keys"].value) == 20 and result.metadata["rows_different"].value == 2
    assert "```sql\nSELECT 1\n```" in result.metadata["sql"].value
    assert result.metadata["runbook"].url.endswith("docs/runbook.md#row-level-reconciliation-hashdiff")


def test_warn_severity_and_pii_key_columns_are_redacted(cat):
    warn = to_check_result(Outcome("aurora", cat["Simulacao"], "x", False, "counted", severity=WARN))
    assert warn.severity == dg.AssetCheckSeverity.WARN
    assert (
        format_key(cat["Cliente"], ["123.456.789-09", "ana@example.com"], ["CpfCnpj", "Email"])
        == "CpfCnpj=<redacted>, Email=<redacted>"
    )
    assert format_key(cat["Cliente"], ["3f0c"]) == "ClienteId=3f0c"


def test_a_database_error_is_reported_without_its_literals(cat):
    err = ValueError(
        'invalid input for type uuid: "ana@example.com", Key (cpf_cnpj)=(12345678909) exists\n'
        "DETAIL: 'Maria da Silva'"
    )
    outcome = failed_to_run("aurora", cat["Cliente"], "rows_match_source", err)
    text = description(outcome)
    assert not outcome.passed and outcome.summary.startswith("check could not run: ValueError: invalid input")
    assert "12345678909" not in text and "ana@example.com" not in text and "Maria" not in text
