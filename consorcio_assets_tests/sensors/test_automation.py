import dagster as dg

from consorcio_assets.catalog import catalog
from consorcio_assets.common.stages import AURORA, S3_RAW, SQLSERVER, TRANSFORMED, asset_key
from consorcio_assets.definitions import defs as lazy_defs

LOADED = dg.AssetSelection.groups(S3_RAW, TRANSFORMED, AURORA)


def _observe(instance, table: str, version: str) -> None:
    instance.report_runless_asset_event(
        dg.AssetObservation(asset_key(SQLSERVER, table), tags={"dagster/data_version": version})
    )


def _materialize(instance, *keys) -> None:
    for key in keys:
        instance.report_runless_asset_event(dg.AssetMaterialization(key))


def test_a_changed_source_table_is_reloaded_through_every_stage_and_only_that_table():
    defs = lazy_defs()
    tables = [t.target_name for t in catalog()]
    with dg.instance_for_test() as instance:
        for t in tables:
            _observe(instance, t, "v1")
            _materialize(instance, *(asset_key(stage, t) for stage in (S3_RAW, TRANSFORMED, AURORA)))
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=LOADED)
        assert result.total_requested == 0  # steady state: everything loaded, nothing to do

        _observe(instance, "segmento", "v2")
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, asset_selection=LOADED, cursor=result.cursor
        )
        requested = {r.key for r in result.results if r.true_subset.size}
        chain = {asset_key(stage, "segmento") for stage in (S3_RAW, TRANSFORMED, AURORA)}
        assert requested == chain  # one run reloads the table's chain; no other table, no FK children
        _materialize(instance, *sorted(chain, key=str))
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, asset_selection=LOADED, cursor=result.cursor
        )
        assert result.total_requested == 0
