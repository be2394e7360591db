"""Free text is classified by a rule of the catalog (character LOB types, long character columns) and reaches the
Glue job's spec, which then never quotes its values."""

from consorcio_assets.catalog import catalog
from consorcio_assets.catalog.model import FREE_TEXT_MIN_LENGTH, FREE_TEXT_TYPES
from consorcio_assets.glue_runner.spec import table_spec


def test_observacao_is_the_contracts_free_text():
    cat = catalog()
    found = [(t.name, c.name) for t in cat for c in t.columns if c.free_text]
    assert found == [("Simulacao", "Observacao")]
    observacao = cat["Simulacao"].column("Observacao")
    assert observacao.confidential and not observacao.pii
    assert observacao.sql_type in FREE_TEXT_TYPES
    assert all((c.length or 0) < FREE_TEXT_MIN_LENGTH for t in cat for c in t.columns if not c.free_text)


def test_the_spec_tells_the_job():
    cat = catalog()
    columns = {c["source"]: c for c in table_spec(cat["Simulacao"], cat)["columns"]}
    assert columns["Observacao"]["free_text"] is True
    assert not any(c["free_text"] for name, c in columns.items() if name != "Observacao")


def test_the_job_never_quotes_free_text():
    import pyarrow as pa

    from consorcio_glue.keys import value_hint
    from consorcio_glue.spec import Col

    cat = catalog()
    cols = {c["source"]: Col.of(c) for c in table_spec(cat["Simulacao"], cat)["columns"]}
    batch = pa.record_batch({"Observacao": ["Cliente Fulano CPF 12345678909\x00"], "Situacao": ["X"]})
    assert value_hint(cols["Observacao"], batch, 0) == ""
    assert value_hint(cols["Situacao"], batch, 0) == " (value 'X')"
