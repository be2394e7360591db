from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consorcio_assets.catalog import (
    TYPE_RULES,
    ContractError,
    UnsupportedTypeError,
    catalog,
    parse_contract,
    snake_case,
)
from consorcio_assets.catalog.parser import load_catalog

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "source-system"
CONTRACT = REPO / "consorcio_assets" / "contract" / "consorcio_simulacao.sql"


def test_packaged_contract_is_identical_to_the_shared_one():
    assert CONTRACT.read_bytes() == (SHARED / "consorcio_simulacao.sql").read_bytes()
    rules = REPO / "consorcio_assets" / "contract" / "business-rules.md"
    assert rules.read_bytes() == (SHARED / "business-rules.md").read_bytes()


def test_whole_contract_parses_into_tables_and_views():
    cat = catalog()
    assert [t.name for t in cat.base_tables] == [
        "UnidadeFederativa",
        "Segmento",
        "IndiceCorrecao",
        "Administradora",
        "PlanoComercial",
        "Grupo",
        "Cliente",
        "Simulacao",
        "SimulacaoLance",
        "SimulacaoParcela",
    ]
    assert [v.target_name for v in cat.views] == ["vw_simulacao_resumo", "vw_funil_mensal"]
    sim = cat["Simulacao"]
    assert sim.primary_key == ("SimulacaoId",) and sim.column("SimulacaoId").identity
    assert ("UQ_Simulacao_Guid", ("SimulacaoGuid",)) in sim.unique_keys
    assert {fk.ref_table for fk in sim.foreign_keys} == {"Cliente", "PlanoComercial", "Grupo"}
    assert sim.column("ClienteId").nullable and not sim.column("PlanoId").nullable
    assert sim.column("PctFundoComumMes").computed.startswith("CAST(100.0 / PrazoMeses")
    assert [i.name for i in sim.indexes] == ["IX_Simulacao_CriadaEm"]
    assert {c.name for c in sim.checks} == {"CK_Simulacao_Valor", "CK_Simulacao_Situacao"}
    assert cat["SimulacaoParcela"].primary_key == ("SimulacaoId", "NumeroParcela")
    assert cat["IndiceCorrecao"].primary_key == ("Indice", "Competencia")
    assert cat["PlanoComercial"].column("BaseSeguro").comment == "'SD' saldo devedor, 'CR' credito"


def test_column_types_follow_the_mapping_table():
    cat = catalog()
    expect = {
        ("Administradora", "Ativa"): ("BOOLEAN", pa.bool_(), "boolean"),
        ("Segmento", "SegmentoId"): ("UINT1", pa.uint8(), "smallint"),
        ("PlanoComercial", "CreditoMinimo"): ("NUMERIC(19,4)", pa.decimal128(19, 4), "numeric(19,4)"),
        ("Simulacao", "ValorCredito"): ("NUMERIC(15,2)", pa.decimal128(15, 2), "numeric(15,2)"),
        ("Simulacao", "AtualizadaEm"): ("DATETIME", pa.timestamp("us"), "timestamp(6)"),
        ("Simulacao", "CriadaEm"): ("WSTRING", pa.string(), "timestamptz(6)"),
        ("Cliente", "CadastradoEm"): ("WSTRING", pa.string(), "timestamptz(3)"),
        ("Simulacao", "SimulacaoGuid"): ("STRING", pa.string(), "uuid"),
        ("Simulacao", "Observacao"): ("NCLOB", pa.string(), "text"),
        ("Simulacao", "VersaoLinha"): ("BYTES", pa.binary(), "bytea"),
        ("SimulacaoParcela", "Vencimento"): ("DATE", pa.date32(), "date"),
        ("IndiceCorrecao", "PublicadoEm"): ("DATETIME", pa.timestamp("us"), "timestamp(3)"),
    }
    for (table, column), (dms, arrow, pg) in expect.items():
        c = cat[table].column(column)
        assert (c.dms_type, c.arrow_type(), c.postgres_type) == (dms, arrow, pg), (table, column)
    assert cat["Simulacao"].column("CriadaEm").offset_column == "criada_em_offset_minutes"
    assert not any("money" == r.postgres for r in TYPE_RULES.values())


def test_pii_is_classified_from_the_business_rules():
    pii = {(t.name, c.name) for t in catalog() for c in t.columns if c.pii}
    assert pii == {("Cliente", n) for n in ("CpfCnpj", "Nome", "Email", "Telefone", "DataNascimento", "RendaMensal")}


def test_views_get_types_keys_and_dependencies():
    cat = catalog()
    resumo, funil = cat["vw_SimulacaoResumo"], cat["vw_FunilMensal"]
    assert resumo.primary_key == ("SimulacaoId",)
    assert resumo.column("PctCustoAdministrativo").postgres_type == "numeric(8,4)"
    assert resumo.column("DataSimulacao").sql_type == "date"
    assert funil.primary_key == ("Mes", "Segmento", "Uf")
    assert funil.column("Simulacoes").sql_type == "bigint"
    assert funil.column("CreditoSimulado").postgres_type == "numeric(38,2)"
    assert not funil.column("Uf").nullable
    order = [t.name for t in cat.load_order()]
    assert order.index("vw_FunilMensal") > order.index("Cliente")
    assert order.index("SimulacaoParcela") > order.index("Simulacao") > order.index("Cliente")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("SimulacaoParcela", "simulacao_parcela"),
        ("CpfCnpj", "cpf_cnpj"),
        ("PctFundoComumMes", "pct_fundo_comum_mes"),
        ("vw_SimulacaoResumo", "vw_simulacao_resumo"),
        ("Uf", "uf"),
        ("ClienteId", "cliente_id"),
    ],
)
def test_snake_case(name, expected):
    assert snake_case(name) == expected


@given(st.lists(st.sampled_from(["Simulacao", "Parcela", "Valor", "Id", "Cep", "Uf", "Pct"]), min_size=1, max_size=5))
def test_snake_case_of_pascal_words_joins_them_with_underscores(words):
    assert snake_case("".join(words)) == "_".join(w.lower() for w in words)


EXTRA_TABLE = """
GO
CREATE TABLE dbo.SimulacaoComissao (
    ComissaoId      BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT PK_SimulacaoComissao PRIMARY KEY,
    SimulacaoId     BIGINT         NOT NULL CONSTRAINT FK_Comissao_Simulacao REFERENCES dbo.Simulacao (SimulacaoId),
    ValorComissao   MONEY          NOT NULL,
    PagaEm          DATETIME2(3)   NULL
);
GO
"""


def test_adding_a_table_to_the_contract_is_the_only_edit_needed(tmp_path):
    contract = tmp_path / "contract.sql"
    contract.write_text(CONTRACT.read_text() + EXTRA_TABLE)
    cat = load_catalog(contract)
    t = cat["SimulacaoComissao"]
    assert t.target_name == "simulacao_comissao" and t.primary_key == ("ComissaoId",)
    assert t.column("ValorComissao").postgres_type == "numeric(19,4)"
    assert t.column("PagaEm").postgres_type == "timestamp(3)"
    assert [fk.ref_table for fk in t.foreign_keys] == ["Simulacao"]
    assert len(cat) == len(catalog()) + 1


def test_unsupported_type_names_the_column():
    with pytest.raises(UnsupportedTypeError, match=r"dbo\.Mapa\.Area"):
        parse_contract("CREATE TABLE dbo.Mapa (Id INT NOT NULL PRIMARY KEY, Area GEOGRAPHY NULL)")


def test_table_without_primary_key_is_an_error_naming_it():
    with pytest.raises(ContractError, match=r"dbo\.Solta has no primary key"):
        parse_contract("CREATE TABLE dbo.Solta (Id INT NOT NULL, Nome NVARCHAR(10) NULL)")


def test_view_that_cannot_be_typed_names_the_view():
    sql = (
        CONTRACT.read_text()
        + "\nGO\nCREATE VIEW dbo.vw_Estranha AS SELECT s.SimulacaoId, SOUNDEX(s.Situacao) AS X FROM dbo.Simulacao AS s;\nGO\n"
    )
    with pytest.raises(ContractError, match="vw_Estranha"):
        parse_contract(sql)


def test_view_over_unknown_table_names_the_view():
    with pytest.raises(ContractError, match="vw_Nada"):
        parse_contract(CONTRACT.read_text() + "\nGO\nCREATE VIEW dbo.vw_Nada AS SELECT x.Id FROM dbo.Nada AS x;\nGO\n")


def test_check_constraints_translate_to_postgres_with_target_names():
    ck = {c.name: c for c in catalog()["PlanoComercial"].checks}["CK_Plano_Taxas"]
    sql = ck.to_sql("postgres")
    assert "pct_taxa_adm > 0" in sql and "pct_antecipacao <= pct_taxa_adm" in sql


def test_real_and_float_keep_their_width():
    cat = parse_contract(
        "CREATE TABLE dbo.Medida (Id INT NOT NULL PRIMARY KEY, A REAL NULL, B FLOAT NULL, "
        "C FLOAT(24) NULL, D FLOAT(53) NULL)"
    )
    t = cat["Medida"]
    assert [t.column(c).arrow_type() for c in "ABCD"] == [pa.float32(), pa.float64(), pa.float32(), pa.float64()]
    assert [t.column(c).postgres_type for c in "ABCD"] == ["real", "double precision", "real", "double precision"]


# -- application semantics: defaults, computed columns, collations -------------------------------------------


def test_every_contract_default_is_parsed_and_translated():
    from consorcio_assets.catalog import catalog as packaged

    defaults = {(t.name, c.name): (c.default, c.postgres_default) for t in packaged() for c in t.columns if c.default}
    assert defaults == {
        ("Administradora", "Ativa"): ("(1)", "true"),
        ("PlanoComercial", "PctAntecipacao"): ("(0)", "0"),
        ("Cliente", "ClienteId"): ("(NEWSEQUENTIALID())", "gen_random_uuid()"),
    }


@pytest.mark.parametrize(
    "tsql, family, expected",
    [
        ("(1)", "bool", "true"),
        ("((0))", "bool", "false"),
        ("(0)", "decimal", "0"),
        ("(-2.5)", "decimal", "-2.5"),
        ("(NEWID())", "uuid", "gen_random_uuid()"),
        ("(GETDATE())", "timestamp", "LOCALTIMESTAMP"),
        ("(SYSDATETIMEOFFSET())", "timestamptz", "now()"),
        ("(N'it''s')", "text", "'it''s'"),
        ("(SYSUTCDATETIME())", "timestamp", "(now() AT TIME ZONE 'UTC')"),
    ],
)
def test_default_rule_table(tsql, family, expected):
    from consorcio_assets.catalog.defaults import translate_default

    assert translate_default(tsql, family, "dbo.T.C") == expected


@pytest.mark.parametrize(
    "column, message",
    [
        ("X INT NOT NULL CONSTRAINT DF_X DEFAULT (ABS(-1))", "dbo.T.X: DEFAULT (ABS(-1))"),
        ("X BIT NOT NULL CONSTRAINT DF_X DEFAULT (NEWID())", "dbo.T.X: DEFAULT (NEWID())"),
        ("X AS CAST(SOUNDEX(Id) AS VARCHAR(4)) PERSISTED", "dbo.T.X: computed expression"),
    ],
)
def test_an_expression_without_translation_fails_the_catalog_naming_it(column, message):
    sql = f"CREATE TABLE dbo.T (Id INT NOT NULL CONSTRAINT PK_T PRIMARY KEY, {column});"
    with pytest.raises(ContractError) as err:
        parse_contract(sql)
    assert message in str(err.value)


def test_computed_column_is_translated_for_a_generated_column():
    from consorcio_assets.catalog import catalog as packaged

    column = packaged()["Simulacao"].column("PctFundoComumMes")
    assert column.postgres_computed == "CAST(100.0 / prazo_meses AS DECIMAL(9, 6))"


def test_collation_rules_name_existing_text_columns():
    from consorcio_assets.catalog import catalog as packaged
    from consorcio_assets.catalog.collations import COLLATION_RULES, COLLATIONS

    cat = packaged()
    for rule in COLLATION_RULES:
        column = cat[rule.table].column(rule.column)
        assert column.family in ("char", "text") and column.collation == rule.collation in COLLATIONS
