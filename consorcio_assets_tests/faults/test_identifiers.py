"""Names that are SQL reserved words or hold quotes go through every stage quoted: a copy of the contract with
two such tables is built into the source stand-in, full-loaded by the DMS engine, loaded into Aurora by the Glue
job (twice: the second load swaps a table others reference) and reconciled row by row. A column name crafted
as an injection stays a column name."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa
from psycopg import sql

from consorcio_assets.catalog import TARGET_SCHEMA, parse_contract
from consorcio_assets.checks import hashdiff
from consorcio_assets.checks.sides import SOURCE, TARGET, Side
from consorcio_assets.common.lake_zones import Lake
from consorcio_assets.dms.engine import run_full_load
from consorcio_assets.dms.layout import COMPLETED
from consorcio_assets.dms.mappings import table_mappings
from consorcio_assets.dms.settings_files import load_settings
from consorcio_assets.source.stand_in import build
from consorcio_assets.target.postgres import sqlalchemy_url
from consorcio_assets_tests.faults.support import aurora_rows
from consorcio_assets_tests.glue.helpers import fetch, ok, run_job

CONTRACT = Path(__file__).resolve().parents[2] / "consorcio_assets" / "contract" / "consorcio_simulacao.sql"
INJECTION = 'x"); DROP TABLE consorcio.segmento; --'
ORDER, NOTA = "Order", "Nota \"Fiscal'"
EXTRA = f"""
CREATE TABLE dbo.[Order] (
    [Select]        INT            NOT NULL CONSTRAINT [PK_Order] PRIMARY KEY,
    [From]          NVARCHAR(40)   NULL,
    [Group"Name]    VARCHAR(20)    NULL,
    [{INJECTION}]   INT            NULL,
    [Segmento]      TINYINT        NULL CONSTRAINT [FK_Order_Segmento] REFERENCES dbo.Segmento (SegmentoId),
    CONSTRAINT [CK_Order_Select] CHECK ([Select] > 0)
);
GO
CREATE INDEX [IX_Order_From] ON dbo.[Order] ([From]);
GO
CREATE TABLE dbo.[{NOTA.replace("]", "]]")}] (
    [Order]         INT            NOT NULL CONSTRAINT [PK_Nota] PRIMARY KEY
                                   CONSTRAINT [FK_Nota_Order] REFERENCES dbo.[Order] ([Select]),
    [Where]         VARCHAR(10)    NOT NULL,
    [Column]        DECIMAL(9,2)   NULL
);
GO
"""


def _batch(cat, name: str, rows: list[dict]):
    table = cat[name]
    schema = pa.schema([pa.field(c.name, c.arrow_type()) for c in table.columns if not c.computed])
    return name, pa.RecordBatch.from_pylist(rows, schema=schema)


def _rows(cat):
    yield _batch(
        cat,
        "Segmento",
        [
            {
                "SegmentoId": 1,
                "Codigo": "IMOVEL",
                "Descricao": "Imóveis",
                "IndiceReajuste": "INCC",
                "PrazoMinimo": 12,
                "PrazoMaximo": 200,
            }
        ],
    )
    yield _batch(
        cat,
        ORDER,
        [{"Select": i, "From": f"de '{i}'", 'Group"Name': 'g"1', INJECTION: i, "Segmento": 1} for i in (1, 2, 3)],
    )
    yield _batch(cat, NOTA, [{"Order": i, "Where": "aqui", "Column": Decimal("1.50")} for i in (1, 2)])


def test_reserved_words_and_quotes_in_names(tmp_path, fresh_db, fault_case):
    fault_case.expect(
        "identifiers that are reserved words or hold quotes (and an injection attempt)",
        "every stage quotes them: loads, reloads and reconciles; the injected DROP never runs",
    )
    cat = parse_contract(CONTRACT.read_text(encoding="utf-8") + EXTRA)
    source = tmp_path / "source.duckdb"
    build(source, _rows(cat), cat)
    lake = tmp_path / "lake"
    names = ["Segmento", ORDER, NOTA]
    report = run_full_load(
        table_mappings([cat[n] for n in names], catalog=cat),
        source_url=f"duckdb:///{source}",
        lake=Lake(lake.as_uri()),
        settings=load_settings(),
        catalog=cat,
    )
    assert {n: (r.state, r.full_load_rows) for n, r in report.tables.items()} == {
        "Segmento": (COMPLETED, 1),
        ORDER: (COMPLETED, 3),
        NOTA: (COMPLETED, 2),
    }
    for name in [*names, ORDER]:  # Order again: its swap re-adds the foreign key Nota holds on it
        ok(run_job(lake, cat[name], cat, fresh_db, expected_rows=report.tables[name].full_load_rows))
    columns = fetch(
        fresh_db,
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = 'order' ORDER BY ordinal_position",
        (TARGET_SCHEMA,),
    )
    assert [c for (c,) in columns] == ["select", "from", 'group"name', INJECTION.lower(), "segmento"]
    assert fetch(fresh_db, "SELECT count(*) FROM consorcio.segmento") == [(1,)]  # not dropped
    nota = sql.Identifier(TARGET_SCHEMA, cat[NOTA].target_name).as_string(None)
    assert fetch(
        fresh_db,
        "SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' AND conrelid = %s::regclass",
        (nota,),
    ) == [("fk_nota_order", True)]
    source_side = Side(
        SOURCE, sa.create_engine(f"duckdb:///{source}", connect_args={"read_only": True}, poolclass=sa.NullPool)
    )
    target_side = Side(TARGET, sa.create_engine(sqlalchemy_url(fresh_db), poolclass=sa.NullPool))
    outcomes = {n: hashdiff.reconcile(source_side, target_side, cat[n]) for n in (ORDER, NOTA)}
    source_side.engine.dispose()
    target_side.engine.dispose()
    assert all(o.passed for o in outcomes.values()), {n: o.summary for n, o in outcomes.items()}
    lost = 5 - len(aurora_rows(fresh_db, cat[ORDER])) - len(aurora_rows(fresh_db, cat[NOTA]))
    fault_case.saw(
        f'consorcio."order" and consorcio."nota ""fiscal\'" loaded twice and reconciled; column '
        f'"{INJECTION.lower()}" is just a column',
        lost,
    )
    assert lost == 0
