"""The pseudonymised `analytics` schema (LGPD), rebuilt after the customer and simulation tables land."""

import dagster as dg

from ..lgpd import ANALYTICS_SCHEMA, pii_key, refresh
from ..settings import get_settings
from ..stages import AURORA, OWNERS, asset_key
from ..target.postgres import connect, target_url

ANALYTICS_KEYS = [dg.AssetKey([ANALYTICS_SCHEMA, "cliente"]), dg.AssetKey([ANALYTICS_SCHEMA, "simulacao"])]


@dg.multi_asset(
    name="analytics_views",
    specs=[
        dg.AssetSpec(
            ANALYTICS_KEYS[0], deps=[asset_key(AURORA, "cliente")], group_name=ANALYTICS_SCHEMA, kinds={"postgres"},
            owners=OWNERS, metadata={"dagster/table_name": "analytics.cliente"},
            description="Customers without direct PII: CPF/CNPJ as a keyed HMAC token, age band, CEP prefix, income band.",
        ),
        dg.AssetSpec(
            ANALYTICS_KEYS[1], deps=[asset_key(AURORA, "simulacao")], group_name=ANALYTICS_SCHEMA, kinds={"postgres"},
            owners=OWNERS, metadata={"dagster/table_name": "analytics.simulacao"},
            description="Simulations without the free-text Observacao (it may hold PII).",
        ),
    ],
)
def analytics_views(context: dg.AssetExecutionContext):
    settings = get_settings()
    with connect(target_url(settings)) as conn:
        customers = refresh(conn, pii_key(settings.home, settings.is_aws))
    context.log.info(f"analytics schema rebuilt: {customers} customer tokens")
    yield dg.MaterializeResult(asset_key=ANALYTICS_KEYS[0], metadata={"dagster/row_count": customers})
    yield dg.MaterializeResult(asset_key=ANALYTICS_KEYS[1])


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[analytics_views])
