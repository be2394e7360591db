"""Stage 1, `sqlserver/<table>`: the source tables and views, observed for row count and data version.

The data version changes whenever a table's content changes, which is what lets declarative automation
reload just that table through the later stages.
"""

import dagster as dg

from consorcio_assets.catalog import catalog
from consorcio_assets.common.stages import OWNERS, SQLSERVER, asset_key, source_column_schema, table_for_key
from consorcio_assets.source.queries import observe
from consorcio_assets.source.resource import SourceDb


def sqlserver_specs() -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            asset_key(SQLSERVER, t),
            description=t.description,
            group_name=SQLSERVER,
            kinds={"sqlserver"},
            owners=OWNERS,
            tags={"table_type": t.kind},
            metadata={
                "dagster/column_schema": source_column_schema(t),
                "dagster/table_name": f"ConsorcioSimulacao.{t.qualified_source}",
            },
        )
        for t in catalog()
    ]


@dg.multi_observable_source_asset(specs=sqlserver_specs(), can_subset=True, name="observe_sqlserver")
def observe_sqlserver(context: dg.AssetExecutionContext, source_db: SourceDb):
    """Count rows and fingerprint each selected source table or view."""
    cat = catalog()
    engine = source_db.engine()
    with engine.connect() as conn:
        for key in sorted(context.selected_asset_keys, key=lambda k: k.to_user_string()):
            table = table_for_key(cat, key)
            obs = observe(conn, table)
            context.log.info(f"{table.qualified_source}: {obs.row_count} rows, version {obs.data_version}")
            yield dg.ObserveResult(
                asset_key=key,
                data_version=dg.DataVersion(obs.data_version),
                metadata={"dagster/row_count": obs.row_count, "source_table": table.qualified_source},
            )
    engine.dispose()


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[observe_sqlserver])
