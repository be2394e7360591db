"""Stage parity (lake footers and databases) and column aggregates, on faithful and corrupted data."""

from decimal import Decimal

from consorcio_assets.checks import aggregates, parity
from consorcio_assets.common.lake_zones import Lake


def test_parity_passes_at_both_stages(source_side, target_side, lake_copy, cat):
    lake = Lake(lake_copy.as_uri())
    for table in cat:
        transformed = parity.transformed_parity(source_side, lake, table)
        aurora = parity.aurora_parity(source_side, target_side, lake, table)
        assert transformed.passed and aurora.passed, (table.name, transformed.summary, aurora.summary)
        assert aurora.counts["transformed_rows"] == aurora.counts["aurora_rows"] == aurora.counts["source_rows"]


def test_one_deleted_row_breaks_aurora_parity(source_side, target_side, lake_copy, cat, corrupt):
    corrupt(
        "DELETE FROM consorcio.simulacao_lance WHERE lance_id = (SELECT max(lance_id) FROM consorcio.simulacao_lance)"
    )
    outcome = parity.aurora_parity(source_side, target_side, Lake(lake_copy.as_uri()), cat["SimulacaoLance"])
    assert not outcome.passed and outcome.counts["difference"] == -1
    assert outcome.summary.startswith("1 rows missing in Aurora (consorcio.simulacao_lance)")
    assert "consorcio.simulacao_lance" in outcome.sql


def test_missing_transformed_files_break_transformed_parity(source_side, lake_copy, cat):
    for part in (lake_copy / "transformed" / "grupo").iterdir():
        part.unlink()
    outcome = parity.transformed_parity(source_side, Lake(lake_copy.as_uri()), cat["Grupo"])
    assert not outcome.passed and "no data for this table" in outcome.summary


def test_aggregates_pass_on_faithful_data(source_side, target_side, cat):
    for table in cat:
        outcome = aggregates.reconcile(source_side, target_side, table)
        assert outcome.passed, (table.name, outcome.summary, outcome.details)


def test_one_centavo_changes_one_sum(source_side, target_side, cat, corrupt):
    corrupt(
        "UPDATE consorcio.simulacao SET parcela_integral = parcela_integral + 0.01 "
        "WHERE simulacao_id = (SELECT min(simulacao_id) FROM consorcio.simulacao)"
    )
    outcome = aggregates.reconcile(source_side, target_side, cat["Simulacao"])
    assert not outcome.passed and outcome.counts["metrics_mismatched"] == 1
    mismatch = outcome.details["mismatches"]["sum(ParcelaIntegral)"]
    assert Decimal(mismatch["target"]) - Decimal(mismatch["source"]) == Decimal("0.01")


def test_null_where_a_value_was_counts_nulls_and_hides_pii(source_side, target_side, cat, corrupt, fetch):
    (email,) = fetch("SELECT email FROM consorcio.cliente WHERE email IS NOT NULL ORDER BY cliente_id LIMIT 1")
    corrupt(f"UPDATE consorcio.cliente SET email = NULL WHERE email = '{email}'")
    outcome = aggregates.reconcile(source_side, target_side, cat["Cliente"])
    assert set(outcome.details["mismatches"]) == {"nulls(Email)", "sum(length(Email))"}
    assert outcome.details["mismatches"]["nulls(Email)"] == "<pii>"
    assert email not in repr(outcome)


def test_timestamp_shift_moves_a_maximum(source_side, target_side, cat, corrupt):
    corrupt(
        "UPDATE consorcio.simulacao SET atualizada_em = atualizada_em + interval '1 microsecond' "
        "WHERE atualizada_em = (SELECT max(atualizada_em) FROM consorcio.simulacao)"
    )
    outcome = aggregates.reconcile(source_side, target_side, cat["Simulacao"])
    assert list(outcome.details["mismatches"]) == ["max(AtualizadaEm)"]
