"""The SQL Server 2017 path: one inventory of source statements, valid on SQL Server 2017 (lint), meaning what
their DuckDB twins mean (transpiled and run on the stand-in, and hand-derived where sqlglot cannot), and the
connection arguments the code builds. No test needs a SQL Server."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mssql

from consorcio_assets.catalog import catalog
from consorcio_assets.checks import business_rules, hashdiff
from consorcio_assets.checks import sql as q
from consorcio_assets.checks.sides import SOURCE, Side
from consorcio_assets.dms.assessment import assess
from consorcio_assets.source import inventory
from consorcio_assets.source.connection import mssql_connection
from consorcio_assets.source.tsql_lint import lint
from consorcio_assets.tooling import cli
from consorcio_assets_tests.tsql_duckdb import install, schema_of, to_duckdb

SCHEMA = schema_of(catalog())

# ---- 1. the inventory ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def statements():
    return inventory.statements()


@dataclass(frozen=True)
class Rendered:
    """A statement rendered for both dialects, and its SQL Server form translated to DuckDB (None: it could not be)."""

    serves: str
    mssql: str | None
    duckdb: str | None
    translated: str | None

    def twin_only(self) -> bool:
        """Statements without a twin (SQL Server only) are not compared."""
        return self.mssql is None or self.duckdb is None


def render(statements) -> list[Rendered]:
    out = []
    for s in statements:
        ms, twin = s.render("mssql"), s.render("duckdb")
        try:
            translated = to_duckdb(ms, SCHEMA) if ms and twin else None
        except sqlglot.errors.SqlglotError:
            translated = None
        out.append(Rendered(f"{s.serves} {s.table}", ms, twin, translated))
    return out


@pytest.fixture(scope="module")
def rendered(statements) -> list[Rendered]:
    return render(statements)


def test_sql_command_prints_every_statement_each_with_its_comment_and_go(capsys, statements):
    assert cli.main(["sql", "--dialect", "mssql"]) == 0
    out = capsys.readouterr().out
    blocks = [b for b in out.split("\nGO\n") if b.strip()]
    assert len(blocks) == len(statements) and out.rstrip().endswith("GO")
    assert all(b.strip().startswith("-- ") for b in blocks)
    served = {s.serves.split(" (")[0].split(":")[0] for s in statements}
    for family in (
        "rows_match_source",
        "aggregates_match_source",
        "row_count_matches_source",
        "source_schema_unchanged",
        "datetime2_100ns_truncated",
        "lob_not_truncated",
        "dms_full_load pre-flight",
        "dms_full_load premigration assessment",
        *(r.check for r in business_rules.RULES),
    ):
        assert family in served, family
    assert {f"sqlserver/{t.name} observation" for t in catalog()} <= served
    assert cli.main(["sql", "--dialect", "duckdb"]) == 0
    twins = capsys.readouterr().out
    assert twins.count("\nGO\n") == out.count("\nGO\n") and "COUNT_BIG" not in twins and "COUNT_BIG" in out


# ---- 2. valid on SQL Server 2017 --------------------------------------------------------------------------------


def test_every_sql_server_statement_parses_and_uses_nothing_sql_server_2017_lacks(rendered):
    problems = {r.serves: lint(r.mssql) for r in rendered if r.mssql}
    assert {k: v for k, v in problems.items() if v} == {}


PLANTED = {
    "GENERATE_SERIES": "SELECT value FROM GENERATE_SERIES(1, 10)",
    "GREATEST/LEAST": "SELECT GREATEST(a, b) FROM t",
    "IS [NOT] DISTINCT FROM": "SELECT a FROM t WHERE a IS NOT DISTINCT FROM b",
    "DATE_BUCKET": "SELECT DATE_BUCKET(week, 1, d) FROM t",
    "DATETRUNC": "SELECT DATETRUNC(month, d) FROM t",
    "APPROX_COUNT_DISTINCT": "SELECT APPROX_COUNT_DISTINCT(a) FROM t",
    "STRING_SPLIT with an ordinal": "SELECT value FROM STRING_SPLIT('a,b', ',', 1)",
    "TRIM(... FROM ...) / two-argument LTRIM, RTRIM": "SELECT TRIM('x' FROM a), LTRIM(a, 'x') FROM t",
    "JSON_OBJECT/JSON_ARRAY": "SELECT JSON_ARRAY(1, 2) FROM t",
    "WINDOW clause": "SELECT sum(a) OVER w FROM t WINDOW w AS (PARTITION BY b)",
    "_UTF8 collation": "SELECT a COLLATE Latin1_General_100_CI_AS_SC_UTF8 FROM t",
    "LIMIT": "SELECT a FROM t LIMIT 5",
    "OFFSET without ORDER BY": "SELECT a FROM t OFFSET 5 ROWS",
    "boolean expression as a value": "SELECT a > b AS bigger FROM t",
}


@pytest.mark.parametrize("construct", sorted(PLANTED))
def test_a_planted_post_2017_construct_fails_the_lint(construct):
    found = lint(PLANTED[construct])
    assert [f for f in found if f.startswith(construct + ":")], found


def test_the_lint_passes_the_2017_spellings_and_catches_the_old_generate_series_fallback(statements):
    assert lint("SELECT TOP (5) a FROM t") == []
    assert lint("SELECT a FROM t ORDER BY a OFFSET 5 ROWS FETCH NEXT 5 ROWS ONLY") == []
    assert lint("SELECT CASE WHEN a > b THEN 1 ELSE 0 END AS bigger, RTRIM(a) FROM t") == []
    old = sa.select(sa.func.sum(sa.column("k"))).select_from(
        sa.func.generate_series(1, sa.column("n")).table_valued("k").render_derived(name="meses")
    )
    assert any(f.startswith("GENERATE_SERIES") for f in lint(q.compile_sql(old, mssql.dialect())))
    assert any(
        f.startswith("OFFSET without ORDER BY")
        for f in lint("SELECT a FROM (SELECT a FROM t ORDER BY a OFFSET 0 ROWS) AS x OFFSET 0 ROWS")
    )


# ---- 3. same meaning: transpiled SQL Server statements on the stand-in against the DuckDB twins ----------------

#: constructs the translation (sqlglot + `tsql_duckdb`'s rewrites) cannot carry to the stand-in, each with why;
#: their SQL Server meaning is derived by hand from the documentation further down
UNTRANSPILABLE = {
    "CHECKSUM_AGG": "the observation's data version is SQL Server's own checksum, compared only with itself",
    "switchoffset": "the stand-in stores DATETIMEOFFSET as SQL Server's literal text "
    "(test_offsets_from_minus_12_to_14)",
    "TZOFFSET": "same as switchoffset",
    "sys.": "SQL Server catalog views; the twins read information_schema / duckdb_constraints()",
    "WITH serie_seguro": "a recursive CTE's column types are unknown to sqlglot, so T-SQL's integer `/` becomes "
    "DuckDB's float `/` (test_bigint_division_truncates)",
    "DATALENGTH": "bytes of UTF-16 storage (test_datalength_counts_utf16_bytes)",
}


def _value(v):
    """A whole DECIMAL compares as the integer it is (SQL Server's SUM of DECIMAL(38, 0) is a DECIMAL)."""
    return int(v) if isinstance(v, Decimal) and v == v.to_integral_value() else v


def _rows(con, sql: str) -> list[str]:
    """The result as comparable texts. A hashdiff leaf compares a non-ASCII text by its value (`v<i>`), not by its
    hash (`h<i>`, in the code page on SQL Server): so does the harness."""
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    by_value = [(names.index(n), names.index("h" + n[1:])) for n in names if n[:1] == "v" and n[1:].isdigit()]
    out = []
    for row in cursor.fetchall():
        values = [_value(v) for v in row]
        for v, h in by_value:
            if values[v] is not None:
                values[h] = None
        out.append(repr(tuple(values)))
    return sorted(out)


def compare_on(path: Path, rendered: list[Rendered]) -> tuple[int, Counter]:
    """(statements whose translated SQL Server form gives the twin's result, unexplained differences)."""
    con = duckdb.connect(str(path), read_only=True)
    install(con)
    equal, unexplained = 0, Counter()
    try:
        for r in rendered:
            if r.twin_only():
                continue
            if r.translated is not None and _same(con, r):
                equal += 1
            elif not any(construct in r.mssql for construct in UNTRANSPILABLE):
                unexplained[r.serves] += 1
    finally:
        con.close()
    return equal, unexplained


def _same(con, r: Rendered) -> bool:
    try:
        return _rows(con, r.translated) == _rows(con, r.duckdb)
    except duckdb.Error:
        return False


def test_transpiled_statements_mean_what_their_twins_mean_on_the_seeded_data(small_source, rendered):
    equal, unexplained = compare_on(small_source, rendered)
    assert unexplained == Counter()
    assert equal >= 110  # of 139 with a twin


EDGES = [
    # (table, column, key column, key value, SQL value)
    ("Simulacao", "Observacao", "SimulacaoId", 1, "'emoji 😀🎉 fim'"),
    ("Simulacao", "Observacao", "SimulacaoId", 2, "'汉字テスト'"),
    ("Simulacao", "Observacao", "SimulacaoId", 3, "'Joa' || chr(771) || 'o'"),  # NFD: a + combining tilde
    ("Simulacao", "Observacao", "SimulacaoId", 4, "''"),
    ("Simulacao", "Observacao", "SimulacaoId", 5, "NULL"),
    ("Simulacao", "Observacao", "SimulacaoId", 6, "repeat('ç', 7000)"),  # a 7,000-character NVARCHAR(MAX)
    ("Simulacao", "Observacao", "SimulacaoId", 11, "'espaços no fim   '"),
    # the same kinds of text in tables without a DATETIMEOFFSET, whose statements all translate
    ("Segmento", "Descricao", "SegmentoId", 1, "'Imóveis 🏠 com espaços   '"),
    ("Segmento", "Descricao", "SegmentoId", 2, "''"),
    ("UnidadeFederativa", "Nome", "Uf", "'SP'", "'São Paulo 汉字'"),
    ("PlanoComercial", "Nome", "PlanoId", 1, "'Plano Jose' || chr(769)"),  # NFD: e + combining acute
    ("Simulacao", "CriadaEm", "SimulacaoId", 7, "'2026-01-01 10:00:00.1234567 -12:00'"),
    ("Simulacao", "CriadaEm", "SimulacaoId", 8, "'2026-01-01 10:00:00.1234567 +14:00'"),
    # DATETIME2 0001 / 9999 do not fit the stand-in's TIMESTAMP_NS (1677-2262): derived by hand below
]


@pytest.fixture(scope="module")
def edge_source(small_source, tmp_path_factory) -> Path:
    """A copy of the stand-in holding the issue's edge values."""
    path = tmp_path_factory.mktemp("edge") / "edge.duckdb"
    shutil.copy(small_source, path)
    with duckdb.connect(str(path)) as con:
        for table, column, key, value, sql in EDGES:
            con.execute(f'UPDATE dbo."{table}" SET "{column}" = {sql} WHERE "{key}" = {value}')
        con.execute(
            'UPDATE dbo."Cliente" SET "RendaMensal" = -922337203685477.5808 WHERE "ClienteId" = '
            '(SELECT min("ClienteId") FROM dbo."Cliente")'
        )
        con.execute(
            'UPDATE dbo."Cliente" SET "RendaMensal" = 922337203685477.5807 WHERE "ClienteId" = '
            '(SELECT max("ClienteId") FROM dbo."Cliente")'
        )
        con.execute(
            'UPDATE dbo."PlanoComercial" SET "CreditoMinimo" = -922337203685477.5808 WHERE "PlanoId" = '
            '(SELECT min("PlanoId") FROM dbo."PlanoComercial")'
        )
        con.execute(
            'UPDATE dbo."PlanoComercial" SET "CreditoMaximo" = 922337203685477.5807 WHERE "PlanoId" = '
            '(SELECT max("PlanoId") FROM dbo."PlanoComercial")'
        )
        con.execute(
            'UPDATE dbo."IndiceCorrecao" SET "PublicadoEm" = TIMESTAMP \'1753-01-01 00:00:00\' '
            'WHERE "Competencia" = (SELECT min("Competencia") FROM dbo."IndiceCorrecao")'
        )
        con.execute(
            'UPDATE dbo."IndiceCorrecao" SET "PublicadoEm" = TIMESTAMP \'9999-12-31 23:59:59.997\' '
            'WHERE "Competencia" = (SELECT max("Competencia") FROM dbo."IndiceCorrecao")'
        )
    return path


def test_transpiled_statements_mean_what_their_twins_mean_on_edge_values(edge_source, rendered):
    equal, unexplained = compare_on(edge_source, rendered)
    assert unexplained == Counter()
    assert equal >= 110


@pytest.mark.parametrize(
    "construct, planted",
    [
        (q.char_length, "LEN({0})"),  # LEN drops trailing spaces: a text's length would shrink on SQL Server
        (q.date_text, "CONVERT(VARCHAR(10), {0}, 103)"),  # dd/mm/yyyy instead of ISO
    ],
)
def test_a_planted_meaning_difference_fails_the_harness(edge_source, statements, monkeypatch, construct, planted):
    monkeypatch.setitem(construct.templates, "mssql", planted)
    chosen = render([s for s in statements if s.serves == "aggregates_match_source"])
    _equal, unexplained = compare_on(edge_source, chosen)
    assert unexplained, "the harness did not notice the planted difference"


# ---- 3b. what sqlglot cannot transpile: SQL Server's result derived by hand from its documentation --------------


def _duck(expr: sa.ColumnElement):
    from duckdb_engine import Dialect

    return duckdb.connect().execute(q.compile_sql(sa.select(expr.label("v")), Dialect())).fetchone()[0]


def _sqlserver_hash60(data: bytes) -> int:
    """HASHBYTES('MD5', x) is the MD5 digest; SUBSTRING(.., 1, 8) its first 8 bytes; CAST(binary(8) AS BIGINT)
    reads them big-endian as a signed integer; & 0x0FFFFFFFFFFFFFFF keeps the low 60 bits."""
    return int.from_bytes(hashlib.md5(data).digest()[:8], "big", signed=True) & 0x0FFFFFFFFFFFFFFF


@pytest.mark.parametrize("text", ["abc", "2026-01-01 10:00:00.123456|-720", "\\N"])
def test_hash60_is_the_documented_md5_prefix_for_ascii(text):
    assert _duck(q.hash60(q.text_literal(text))) == _sqlserver_hash60(text.encode("cp1252"))


@pytest.mark.parametrize("text", ["João", "emoji 😀", "汉字"])
def test_non_ascii_text_hashes_differently_on_sql_server_2017_hence_compared_by_value(text):
    on_sql_server = _sqlserver_hash60(text.encode("cp1252", errors="replace"))  # CAST(N'..' AS VARCHAR(MAX))
    assert _duck(q.hash60(q.text_literal(text))) != on_sql_server
    assert _duck(q.ascii_only(q.text_literal(text))) is False
    assert _duck(q.ascii_only(q.text_literal("plain | text 123"))) is True


def test_char_length_counts_trailing_spaces_as_len_plus_x_does():
    # LEN excludes trailing spaces (documented), so LEN('ab  ' + 'x') - 1 = 4
    assert _duck(q.char_length(q.text_literal("ab  "))) == len("ab  ") == 4


@pytest.mark.parametrize(
    "value, sqlserver",
    [
        ("TIMESTAMP '9999-12-31 23:59:59.997'", "9999-12-31 23:59:59.997000"),  # DATETIME's last tick, style 121
        ("TIMESTAMP '1753-01-01 00:00:00'", "1753-01-01 00:00:00.000000"),
        ("TIMESTAMP '0001-01-01 00:00:00'", "0001-01-01 00:00:00.000000"),  # DATETIME2's first
        ("TIMESTAMP '9999-12-31 23:59:59.999999'", "9999-12-31 23:59:59.999999"),  # DATETIME2(7)'s last, cut
    ],
)
def test_timestamp_text_is_style_121_cut_to_the_microsecond(value, sqlserver):
    assert _duck(q.timestamp_text(sa.literal_column(value))) == sqlserver


@pytest.mark.parametrize("money", ["-922337203685477.5808", "922337203685477.5807"])
def test_money_extremes_as_decimal_text(money):
    # CAST(CAST(m AS DECIMAL(38, 4)) AS VARCHAR(60)) prints every digit, sign first
    assert _duck(q.decimal_text(sa.literal_column(f"CAST({money} AS DECIMAL(19, 4))"), q.num(4))) == money


@pytest.mark.parametrize(
    "literal, minutes, utc",
    [
        ("2026-01-01 10:00:00.1234567 -12:00", -720, "2026-01-01 22:00:00.123456"),
        ("2026-01-01 10:00:00.1234567 +14:00", 840, "2025-12-31 20:00:00.123456"),
        ("2026-01-01 10:00:00.0000000 +00:00", 0, "2026-01-01 10:00:00.000000"),
    ],
)
def test_offsets_from_minus_12_to_14(literal, minutes, utc):
    # DATEPART(TZOFFSET, x) is the offset in minutes; SWITCHOFFSET(x, 0) the same instant at +00:00
    column = catalog()["Simulacao"].column("CriadaEm")
    con = duckdb.connect()
    con.execute('CREATE SCHEMA dbo; CREATE TABLE dbo."Simulacao" ("CriadaEm" VARCHAR)')
    con.execute('INSERT INTO dbo."Simulacao" VALUES (?)', [literal])
    side = Side(SOURCE, inventory.source_side("duckdb").engine)
    clause = sa.table("Simulacao", sa.column("CriadaEm"), schema="dbo")
    from duckdb_engine import Dialect

    sql = q.compile_sql(
        sa.select(side.offset_minutes(clause, column), q.timestamp_text(side.utc(clause, column))), Dialect()
    )
    assert con.execute(sql).fetchone() == (minutes, utc)


@pytest.mark.parametrize("a, b", [(7, 2), (10**30 + 1, 10**15), (0, 5)])
def test_exact_integer_division(a, b):
    # SQL Server: DECIMAL(38, 0) / DECIMAL(38, 0) is an exact DECIMAL, FLOOR of it the integer quotient
    assert (
        _duck(q.idiv(q.wide(q.num(a)) if a < 2**63 else sa.literal_column(f"CAST({a} AS HUGEINT)"), q.num(b))) == a // b
    )


def test_floor_of_a_decimal_quotient_would_round_up_on_sql_server():
    from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

    a, b = 6 * 10**7 - 1, 2 * 10**7  # quotient 2.99999995
    # DECIMAL(38, 0) / DECIMAL(38, 0): the integral part needs 38 digits, so the scale is cut to 6 and the
    # quotient rounded ("Precision, scale, and length (Transact-SQL)"): FLOOR(a / b) was 3
    old = (Decimal(a) / Decimal(b)).quantize(Decimal("0.000001"), ROUND_HALF_UP).to_integral_value(ROUND_FLOOR)
    assert old == 3 != a // b
    assert (Decimal(a) - Decimal(a) % Decimal(b)) / Decimal(b) == a // b == 2  # a - a % b divides exactly
    rendered = q.compile_sql(sa.select(q.idiv(q.wide(q.num(a)), q.wide(q.num(b)))), mssql.dialect())
    assert "FLOOR" not in rendered and "%" in rendered


@pytest.mark.parametrize("a, b", [(7, 2), (2**62, 3), (0, 5)])
def test_bigint_division_truncates(a, b):
    # BIGINT / BIGINT in SQL Server is integer division, truncated toward zero (non-negative here: the floor)
    assert _duck(q.bigint_div(q.num(a), q.num(b))) == a // b


@pytest.mark.parametrize("text, sqlserver_bytes", [("abc", 6), ("a😀é", 8), ("汉字", 4), ("", 0)])
def test_datalength_counts_utf16_bytes(text, sqlserver_bytes):
    # DATALENGTH of an NVARCHAR is its UTF-16 size: 2 bytes a character, 4 beyond the BMP (surrogate pair)
    from consorcio_assets.dms.preflight import ndatalength

    assert _duck(ndatalength(q.text_literal(text))) == sqlserver_bytes == len(text.encode("utf-16-le"))


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=["Cs"]), max_size=40))
def test_datalength_is_the_utf16_size_of_any_text(text):
    """On a stored value (a literal's rendering doubles `%`), as the pre-flight measures Observacao."""
    from duckdb_engine import Dialect

    from consorcio_assets.dms.preflight import ndatalength

    con = duckdb.connect()
    con.execute("CREATE TABLE t (x VARCHAR)")
    con.execute("INSERT INTO t VALUES (?)", [text])
    query = sa.select(ndatalength(sa.table("t", sa.column("x")).c.x))
    assert con.execute(q.compile_sql(query, Dialect())).fetchone()[0] == len(text.encode("utf-16-le"))


def test_the_translation_gives_t_sql_meaning_where_sqlglot_alone_does_not():
    con = duckdb.connect()
    install(con)
    # `+` on strings concatenates; LIKE classes; binary collation; integer division of typed INT columns
    assert con.execute(
        to_duckdb(
            "SELECT 'a' + 'b', CASE WHEN '12' COLLATE Latin1_General_BIN LIKE '[0-9][0-9]' "
            "THEN 1 ELSE 0 END, CASE WHEN 'a_b' LIKE 'a[_]b' THEN 1 ELSE 0 END",
            {},
        )
    ).fetchone() == ("ab", 1, 1)
    sql = to_duckdb("SELECT s.PrazoMeses / 7 FROM dbo.Simulacao AS s", SCHEMA)
    assert "//" in sql or "TRUNC" in sql.upper()


# ---- 4. text SQL Server 2017 cannot hash as UTF-8: compared by value -------------------------------------------


def _copy_with(small_source: Path, tmp_path: Path, *statements: str) -> Path:
    path = tmp_path / f"side{len(list(tmp_path.iterdir()))}.duckdb"
    shutil.copy(small_source, path)
    with duckdb.connect(str(path)) as con:
        for sql in statements:
            con.execute(sql)
    return path


def _side(path: Path) -> Side:
    return Side(SOURCE, sa.create_engine(f"duckdb:///{path}", connect_args={"read_only": True}, poolclass=sa.NullPool))


EMOJI = [
    """UPDATE dbo."Simulacao" SET "Observacao" = 'cliente 😀 quer ' || "SimulacaoId" || '🎉'
            WHERE "SimulacaoId" % 7 = 0"""
]


def test_emoji_rows_are_compared_by_value_without_false_differences(small_source, tmp_path):
    source, target = (_side(_copy_with(small_source, tmp_path, *EMOJI)) for _ in range(2))
    table = catalog()["Simulacao"]
    outcome = hashdiff.reconcile(source, target, table, by_value=True, leaf_rows=50)
    assert outcome.passed, outcome.summary
    with duckdb.connect(str(source.engine.url.database), read_only=True) as con:
        planted, non_ascii = con.execute(
            'SELECT count(*) FILTER (WHERE "SimulacaoId" % 7 = 0), count(*) FILTER (WHERE strlen("Observacao") '
            '<> length("Observacao") OR strlen("Situacao") <> length("Situacao")) FROM dbo."Simulacao"'
        ).fetchone()
    assert planted > 0 and non_ascii >= planted and outcome.counts["rows_compared_by_value"] == non_ascii


def test_a_change_inside_an_emoji_value_is_found_and_named_by_key(small_source, tmp_path):
    source = _side(_copy_with(small_source, tmp_path, *EMOJI))
    target = _side(
        _copy_with(
            small_source,
            tmp_path,
            *EMOJI,
            'UPDATE dbo."Simulacao" SET "Observacao" = replace("Observacao", \'😀\', \'😁\') WHERE "SimulacaoId" = 14',
        )
    )
    outcome = hashdiff.reconcile(source, target, catalog()["Simulacao"], by_value=True, leaf_rows=50)
    assert not outcome.passed
    assert outcome.counts["rows_different"] == 1 and outcome.details["column_mismatches"] == {"Observacao": 1}
    assert any("14" in k for k in outcome.keys)
    assert "😀" not in repr(outcome.details) and "cliente" not in repr(outcome.details)  # keys, not values


def test_leaves_compare_non_ascii_text_by_value_even_when_the_hashes_disagree():
    # SQL Server 2017 and PostgreSQL hash 'João' differently (code page vs UTF-8): the value decides
    text = (False, True)
    sqlserver, postgres = (11, 222, "João"), (11, 333, "João")
    assert hashdiff._comparable(sqlserver, text) == hashdiff._comparable(postgres, text)
    assert hashdiff._comparable((11, 222, "João"), text) != hashdiff._comparable((11, 333, "Joao!"), text)
    assert hashdiff._comparable((11, 222, None), text) != hashdiff._comparable((11, 333, None), text)


def test_by_value_is_on_by_default_only_when_a_side_is_sql_server():
    side = inventory.source_side("mssql")
    projection = hashdiff.projection(side, catalog()["Simulacao"], by_value=True)
    assert projection.by_value and sum(projection.text) == 2  # Situacao, Observacao
    sql = q.compile_sql(hashdiff.segments_query(projection, 1, 100, 10), mssql.dialect())
    assert "by_value" in sql and "NCHAR(127)" in sql


# ---- 5. connection arguments ------------------------------------------------------------------------------------


def test_pymssql_connections_are_read_only_encrypted_and_time_out():
    conn = mssql_connection("mssql+pymssql://dms:secret@db.example:1433/ConsorcioSimulacao")
    assert conn.connect_args == {"read_only": True, "login_timeout": 30, "encryption": "require"}
    assert conn.url.query == {}
    opted_out = mssql_connection("mssql+pymssql://dms:secret@db/ConsorcioSimulacao?encrypt=off&login_timeout=5")
    assert opted_out.connect_args == {"read_only": True, "login_timeout": 5, "encryption": "off"}


def test_pyodbc_connections_carry_the_odbc_keywords():
    conn = mssql_connection("mssql+pyodbc://dms:secret@db/ConsorcioSimulacao?driver=ODBC+Driver+18+for+SQL+Server")
    assert conn.url.query["ApplicationIntent"] == "ReadOnly" and conn.url.query["Encrypt"] == "yes"
    assert conn.connect_args == {"timeout": 30}
    assert mssql_connection("mssql+pyodbc://u:p@db/x?encrypt=no").url.query["Encrypt"] == "no"


def test_bad_connection_options_are_named():
    with pytest.raises(ValueError, match="login_timeout"):
        mssql_connection("mssql+pymssql://u:p@db/x?login_timeout=soon")
    with pytest.raises(ValueError, match="not supported"):
        mssql_connection("mssql+aioodbc://u:p@db/x")


# ---- 6. the DMS premigration assessment --------------------------------------------------------------------------


def test_assessment_names_keyless_tables_unsupported_types_and_keyless_lobs(small_source, tmp_path):
    path = _copy_with(
        small_source,
        tmp_path,
        "CREATE TYPE humor AS ENUM ('a', 'b')",
        'ALTER TABLE dbo."Segmento" ADD COLUMN "Extra" humor',
        'CREATE TABLE dbo."SemChave" ("Id" INTEGER, "Texto" VARCHAR)',
    )
    cat = catalog()
    engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.NullPool)
    keyless = dataclasses.replace(cat["Segmento"], name="SemChave")
    with engine.connect() as conn:
        clean = assess(conn, list(cat), 128 * 1024)
        assert clean.problems == ["dbo.Segmento.Extra: user-defined type enum('a', 'b') (DMS cannot migrate it to S3)"]
        found = assess(conn, [keyless], 128 * 1024)
    assert "dbo.SemChave: table has no primary key (DMS cannot segment or fetch its LOBs by key)" in found.problems
    assert "dbo.SemChave.Texto: LOB column in a table without a primary key" in found.problems


def test_assessment_of_the_seeded_source_is_clean(small_source):
    engine = sa.create_engine(f"duckdb:///{small_source}", connect_args={"read_only": True}, poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert assess(conn, list(catalog()), 128 * 1024).problems == []


# ---- the inventory is what runs ---------------------------------------------------------------------------------


def _shape(sql: str) -> str:
    """A statement with its numbers and lists of numbers blanked: run-time bounds and keys vary."""
    import re

    sql = re.sub(r"'[^']*'", "'?'", " ".join(sql.split()))
    sql = re.sub(r"\b\d+\b", "?", sql).replace("'?'", "?").replace("$?", "?").replace("-?", "?")  # literal or bound
    return re.sub(r"\?(, \?)+", "?", sql)


def test_every_statement_the_checks_send_to_the_source_is_in_the_inventory(small_source, rendered):
    from consorcio_assets.checks import aggregates, parity, precision, schema
    from consorcio_assets.dms.preflight import preflight
    from consorcio_assets.dms.settings_files import load_settings
    from consorcio_assets.source.queries import duckdb_engine, observe

    sent: list[str] = []
    engine = duckdb_engine(f"duckdb:///{small_source}")
    sa.event.listen(engine, "before_cursor_execute", lambda conn, cursor, sql, *args: sent.append(sql))
    source = Side(SOURCE, engine)
    cat = catalog()
    with engine.connect() as conn:
        for table in cat:
            observe(conn, table)
    preflight(engine, list(cat), load_settings().task)
    for table in cat:
        parity.count_rows(source, table)
        aggregates.compute(source, table, aggregates.metrics(table))
        schema.source_drift(source, table)
        if precision.hundred_ns_columns(table):
            precision.sub_microsecond(source, table)
    for rule in business_rules.RULES:
        business_rules.evaluate(rule, source, cat)
    other = Side(SOURCE, duckdb_engine(f"duckdb:///{small_source}"))
    for name in ("Simulacao", "Cliente"):
        hashdiff.reconcile(source, other, cat[name], by_value=True, leaf_rows=100)
    sent = [
        s
        for s in sent
        if s.strip().upper().startswith(("SELECT", "WITH")) and "memory_limit" not in s and "duckdb_settings" not in s
    ]
    known = {_shape(r.duckdb) for r in rendered if r.duckdb}
    missing = sorted({_shape(s) for s in sent} - known)
    assert len(sent) > 100
    assert missing == [], "\n\n".join(missing)


def test_snapshot_isolation_only_when_the_database_allows_it(monkeypatch):
    from consorcio_assets.source import connection

    made, real = {}, sa.create_engine

    def create_engine(url, connect_args, **kwargs):  # no driver, no server: the arguments are what is tested
        made.update(url=url, connect_args=connect_args)
        return real("sqlite://")

    monkeypatch.setattr(connection.sa, "create_engine", create_engine)
    for allowed, level in ((True, "SNAPSHOT"), (False, None)):
        monkeypatch.setattr(connection, "snapshot_allowed", lambda engine, allowed=allowed: allowed)
        engine = connection.mssql_engine("mssql+pymssql://dms:secret@db/ConsorcioSimulacao")
        assert engine.get_execution_options().get("isolation_level") == level
    assert made["connect_args"] == {"read_only": True, "login_timeout": 30, "encryption": "require"}

    def unreachable(engine):
        raise sa.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))

    monkeypatch.setattr(connection, "snapshot_allowed", unreachable)  # the pre-flight's connect will name it
    assert connection.mssql_engine("mssql+pymssql://u:p@db/x").get_execution_options().get("isolation_level") is None


def test_the_pre_flight_names_a_keyless_table_before_any_file_is_written(small_source, tmp_path):
    from consorcio_assets.dms.preflight import PreflightError, preflight
    from consorcio_assets.dms.settings_files import load_settings

    path = _copy_with(
        small_source,
        tmp_path,
        'CREATE TABLE keep AS SELECT * FROM dbo."IndiceCorrecao"',
        'DROP TABLE dbo."IndiceCorrecao"',
        'CREATE TABLE dbo."IndiceCorrecao" AS SELECT * FROM keep',
    )
    engine = sa.create_engine(f"duckdb:///{path}", connect_args={"read_only": True}, poolclass=sa.NullPool)
    with pytest.raises(PreflightError) as err:
        preflight(engine, list(catalog()), load_settings().task)
    assert "dbo.IndiceCorrecao: table has no primary key" in str(err.value)


@pytest.mark.parametrize("table_name", ["Segmento", "UnidadeFederativa"])
def test_code_page_hashing_would_report_false_differences_without_the_by_value_path(edge_source, table_name):
    """SQL Server's hashing emulated as documented (HASHBYTES over the VARCHAR code page): with accents and emoji in
    the text, segment checksums equal the UTF-8 twin's only when those rows are left to the leaves."""
    table = catalog()[table_name]

    def agrees(by_value: bool) -> bool:
        sides = {d: inventory.source_side(d) for d in ("mssql", "duckdb")}
        sql = {}
        for d, side in sides.items():
            p = hashdiff.projection(side, table, by_value=by_value)
            hi = 1000 if p.ordered else hashdiff.HASH_SPACE - 1
            sql[d] = q.compile_sql(hashdiff.segments_query(p, 0, hi, -(-(hi + 1) // 32)), inventory.dialect_of(d))
        con = duckdb.connect(str(edge_source), read_only=True)
        install(con)
        try:
            return _rows(con, to_duckdb(sql["mssql"], SCHEMA)) == _rows(con, sql["duckdb"])
        finally:
            con.close()

    assert agrees(by_value=True)
    assert not agrees(by_value=False)
