"""Expected precision loss is counted (WARN); LOB truncation is an ERROR naming the rows."""

from consorcio_assets.checks import precision
from consorcio_assets.checks.outcome import WARN


def test_100ns_digits_are_counted_per_column_as_a_warning(source_side, cat, small_source):
    import duckdb

    with duckdb.connect(str(small_source), read_only=True) as con:
        expected = con.execute(
            'SELECT count(*) FILTER (WHERE epoch_ns("AtualizadaEm") % 1000 <> 0), '
            'count(*) FILTER (WHERE substr("CriadaEm", 27, 1) <> \'0\') FROM dbo."Simulacao"'
        ).fetchone()
    outcome = precision.sub_microsecond(source_side, cat["Simulacao"])
    assert outcome.severity == WARN and not outcome.passed
    assert (outcome.counts["AtualizadaEm_values"], outcome.counts["CriadaEm_values"]) == expected
    assert expected[0] > 0 and outcome.keys[0].startswith("SimulacaoId=")
    assert precision.hundred_ns_columns(cat["Cliente"]) == []  # DATETIMEOFFSET(3) has no 100 ns digit


def test_lob_passes_on_faithful_data(source_side, target_side, cat):
    assert precision.lob_truncation(source_side, target_side, cat["Simulacao"]).passed


def test_truncated_lob_is_an_error_naming_the_row(source_side, target_side, cat, corrupt, fetch):
    (sim,) = fetch("SELECT simulacao_id FROM consorcio.simulacao WHERE length(observacao) > 20 ORDER BY 1 LIMIT 1")
    corrupt(f"UPDATE consorcio.simulacao SET observacao = left(observacao, 20) WHERE simulacao_id = {sim}")
    outcome = precision.lob_truncation(source_side, target_side, cat["Simulacao"])
    assert not outcome.passed and outcome.severity == "ERROR"
    assert outcome.counts["rows_truncated"] == 1 and outcome.keys == [f"SimulacaoId={sim}"]
    assert "LOB truncated" in outcome.summary
