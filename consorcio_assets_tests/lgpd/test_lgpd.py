import datetime as dt
import uuid

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from consorcio_assets.target.analytics import ANALYTICS_SCHEMA, hmac_pads, refresh, token


def _cliente_table(conn):
    conn.execute("CREATE SCHEMA IF NOT EXISTS consorcio")
    conn.execute("""CREATE TABLE consorcio.cliente (cliente_id uuid PRIMARY KEY, tipo_pessoa varchar(1), cpf_cnpj varchar(14),
        nome varchar(150), email varchar(254), telefone varchar(13), data_nascimento date, renda_mensal numeric(19,4),
        cep varchar(8), uf varchar(2), consentimento_lgpd boolean, cadastrado_em timestamptz)""")
    from consorcio_assets.catalog import catalog

    cols = ", ".join(f"{c.target_name} {c.postgres_type}" for c in catalog()["Simulacao"].columns)
    conn.execute(f"CREATE TABLE consorcio.simulacao ({cols})")


def test_analytics_views_expose_tokens_and_bands_but_no_direct_pii(fresh_db):
    key = b"chave-de-teste"
    ids = [uuid.uuid4() for _ in range(3)]
    with psycopg.connect(fresh_db) as conn:
        _cliente_table(conn)
        today = dt.date.today()
        rows = [
            (
                ids[0],
                "F",
                "52998224725",
                "João da Silva",
                "joao@example.com",
                "5511987654321",
                today.replace(year=today.year - 30),
                4500,
                "01310100",
                "SP",
            ),
            (ids[1], "J", "11222333000181", "Empresa Ltda", None, None, None, None, "20040002", "RJ"),
            (
                ids[2],
                "F",
                "12345678909",
                "Maria",
                None,
                None,
                today.replace(year=today.year - 70),
                50000,
                "30130010",
                "MG",
            ),
        ]
        for r in rows:
            conn.execute("INSERT INTO consorcio.cliente VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,true,now())", r)
        assert refresh(conn, key) == 3
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = 'cliente'",
                (ANALYTICS_SCHEMA,),
            ).fetchall()
        ]
        for pii in ("cpf_cnpj", "nome", "email", "telefone", "data_nascimento", "renda_mensal", "cep"):
            assert pii not in columns
        got = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT cliente_id, cpf_cnpj_token, faixa_etaria, cep_prefixo, faixa_renda FROM analytics.cliente"
            ).fetchall()
        }
        assert got[ids[0]] == (token("52998224725", key), "25-34", "01310", "3 a 10 mil")
        assert got[ids[1]][1:] == ("nao informado", "20040", "nao informada")
        assert got[ids[2]][1:] == ("60+", "30130", "30 mil ou mais")
        sim_columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'analytics' AND table_name = 'simulacao'"
            ).fetchall()
        ]
        assert "observacao" not in sim_columns and "valor_credito" in sim_columns
        # the key is nowhere in the database's definitions
        defs = " ".join(
            r[0]
            for r in conn.execute(
                "SELECT pg_get_viewdef(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'analytics' AND c.relkind = 'v'"
            )
        )
        assert "chave" not in defs
        # a rerun is idempotent and a different key gives different tokens
        refresh(conn, key)
        assert conn.execute("SELECT count(*) FROM analytics.cliente_token").fetchone()[0] == 3
        keyed = (
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'analytics.cliente_token'::regclass"
        )
        assert [r[0] for r in conn.execute(keyed)] == ["PRIMARY KEY (cliente_id)"]  # built again after the rows
        refresh(conn, b"outra-chave")
        assert conn.execute("SELECT cpf_cnpj_token FROM analytics.cliente WHERE cliente_id = %s", (ids[0],)).fetchone()[
            0
        ] != token("52998224725", key)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=100), st.text(alphabet="0123456789ABCDEF", min_size=11, max_size=14))
def test_sql_hmac_construction_matches_python_hmac(key, value):
    import hashlib

    inner, outer = hmac_pads(key)
    by_hand = hashlib.sha256(outer + hashlib.sha256(inner + value.encode()).digest()).hexdigest()
    assert by_hand == token(value, key)
