"""The pseudonymised `analytics` schema (LGPD), rebuilt after the customer and simulation tables land."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from consorcio_assets.catalog import catalog
from consorcio_assets.common.stages import AURORA, OWNERS, asset_key, target_column_schema
from consorcio_assets.target.analytics import ANALYTICS_SCHEMA, KEY_ENV, analytics_sql, refresh, resolve_key
from consorcio_assets.target.postgres import connect
from consorcio_assets.target.resource import TargetDb

ANALYTICS_KEYS = [dg.AssetKey([ANALYTICS_SCHEMA, "cliente"]), dg.AssetKey([ANALYTICS_SCHEMA, "simulacao"])]
#: columns the analytics views compute (the others are the Aurora table's, described there): type, description
DERIVED = {
    "cpf_cnpj_token": (
        "char(64)",
        "Keyed HMAC-SHA256 (hex) of the CPF/CNPJ without padding: joins a customer's rows "
        "without revealing the document (key: CONSORCIO_PII_HMAC_KEY).",
    ),
    "faixa_etaria": ("text", "Age band from data_nascimento: 18-24, 25-34, 35-44, 45-59, 60+ or 'nao informado'."),
    "cep_prefixo": ("text", "The CEP's first 5 digits (region, not the address)."),
    "faixa_renda": (
        "text",
        "Income band from renda_mensal: 'ate 3 mil', '3 a 10 mil', '10 a 30 mil', '30 mil ou mais' or 'nao informada'.",
    ),
}


def analytics_column_schema(view: str) -> dg.TableSchema:
    """The columns of an analytics view, read from its DDL: the Aurora table's column (type and description) or a
    derived one (DERIVED)."""
    import sqlglot
    from sqlglot import exp

    ddl = next(q for q in analytics_sql() if f"VIEW {ANALYTICS_SCHEMA}.{view} AS" in q)
    select = sqlglot.parse_one(ddl, read="postgres").find(exp.Select)
    base = {c.name: c for c in target_column_schema(catalog()[VIEW_SOURCES[view]]).columns}
    columns = []
    for name in (e.alias_or_name for e in select.expressions):
        if name in DERIVED:
            columns.append(dg.TableColumn(name, DERIVED[name][0], description=DERIVED[name][1]))
        else:
            column = base[name]
            columns.append(
                dg.TableColumn(name, column.type, description=column.description, constraints=column.constraints)
            )
    return dg.TableSchema(columns=columns)


VIEW_SOURCES = {"cliente": "Cliente", "simulacao": "Simulacao"}


class PiiKey(dg.ConfigurableResource):
    """The pseudonymisation key as a resource (see `lgpd.resolve_key`)."""

    key: str | None = Field(default=None, description=f"the key ({KEY_ENV}, a secret)")
    key_file: str | None = Field(
        default=None, description="local mode: where the random key is kept when the key is not configured"
    )

    def value(self) -> bytes:
        return resolve_key(self.key, Path(self.key_file) if self.key_file else None)


def _analytics_spec(key: dg.AssetKey, table: str, description: str) -> dg.AssetSpec:
    """An `analytics.<table>` view, rebuilt from `aurora/<table>`."""
    return dg.AssetSpec(
        key,
        deps=[asset_key(AURORA, table)],
        group_name=ANALYTICS_SCHEMA,
        kinds={"postgres"},
        owners=OWNERS,
        metadata={
            "dagster/table_name": f"{ANALYTICS_SCHEMA}.{table}",
            "dagster/column_schema": analytics_column_schema(table),
        },
        description=description,
    )


@dg.multi_asset(
    name="analytics_views",
    specs=[
        _analytics_spec(
            ANALYTICS_KEYS[0],
            "cliente",
            "Customers without direct PII: CPF/CNPJ as a keyed HMAC token, age band, CEP prefix, income band.",
        ),
        _analytics_spec(
            ANALYTICS_KEYS[1], "simulacao", "Simulations without the free-text Observacao (it may hold PII)."
        ),
    ],
)
def analytics_views(context: dg.AssetExecutionContext, target_db: TargetDb, pii_key: PiiKey):
    with connect(target_db.libpq_url()) as conn:
        customers = refresh(conn, pii_key.value())
    context.log.info(f"analytics schema rebuilt: {customers} customer tokens")
    yield dg.MaterializeResult(asset_key=ANALYTICS_KEYS[0], metadata={"dagster/row_count": customers})
    yield dg.MaterializeResult(asset_key=ANALYTICS_KEYS[1])


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[analytics_views])
