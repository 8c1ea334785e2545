"""The warehouse IO manager: assets return frames, and their inputs arrive as lazy frames
of exactly the partitions their lineage declares.

Dagster maps each input through the dependency's partition mapping (this year, every
earlier year, this and the next, all years); the manager scans those partitions and
nothing else, so the lineage the UI draws is what was read (tests/test_lineage.py
checks it at the operating-system level). Outputs go to the contract's layout,
`<zone>/<table>/year=YYYY/data.parquet`, inside the release the step holds
(assets.common.step_release): a step's tables appear together or not at all.

An asset that takes all years of a run in one step (`assets.common.ONE_RUN`) gets each
input as {year: lazy frame}, every year's the partitions its mapping names for that
year, and returns {year: frame}.
"""

from collections.abc import Mapping

import dagster as dg
import polars as pl

from assets.common import ONE_RUN, open_release, partition_label, signpost
from assets.partitions import yearly
from assets.resources import OutcomesConfig, table_metadata
from outcomes.schema import TABLES, Table
from outcomes.warehouse import Warehouse


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Parquet tables under the warehouse root of the one configuration resource."""

    outcomes: OutcomesConfig

    @property
    def warehouse(self) -> Warehouse:
        return self.outcomes.warehouse

    def handle_output(
        self, context: dg.OutputContext, obj: pl.DataFrame | Mapping[int, pl.DataFrame]
    ) -> None:
        table = _table(context.asset_key)
        release = open_release(context.run_id, context.op_def.name)
        if release is None:
            raise RuntimeError(
                f"{table.name}: yield its output inside step_release, so the step's tables "
                "are released together"
            )
        if not table.by_year:
            path = self.warehouse.write(table, obj, None, release)
            context.add_output_metadata(table_metadata(table, obj.height, path))
            return
        by_year = obj if isinstance(obj, Mapping) else {int(context.asset_partition_key): obj}
        wanted = {int(k) for k in context.asset_partition_keys}
        if set(by_year) != wanted:
            raise RuntimeError(f"{table.name}: output for years {sorted(by_year)}, "
                               f"the step materializes {sorted(wanted)}")  # fmt: skip
        paths = [self.warehouse.write(table, df, y, release) for y, df in sorted(by_year.items())]
        if len(paths) == 1:
            (df,) = by_year.values()
            context.add_output_metadata(table_metadata(table, df.height, paths[0]))
            return
        # one materialization per year will carry this: the count of each, not their sum
        meta = table_metadata(table, 0, paths[0].parent.parent)
        del meta["dagster/partition_row_count"]
        meta["rows_by_year"] = {str(y): df.height for y, df in sorted(by_year.items())}
        context.add_output_metadata(meta)

    def load_input(self, context: dg.InputContext) -> pl.LazyFrame | dict[int, pl.LazyFrame]:
        table = _table(context.asset_key)
        step = context.step_context
        asset = step.assets_def
        years = _step_years(step)
        signpost(self.warehouse.root, step.op_def.name, partition_label(years))
        if asset is not None and asset.backfill_policy == ONE_RUN and years:
            return {y: self.warehouse.scan(table, mapped_years(asset, context.asset_key, y))
                    for y in years}  # fmt: skip
        if not table.by_year:
            return self.warehouse.scan(table)
        return self.warehouse.scan(table, [int(k) for k in context.asset_partition_keys])


def _step_years(step: dg.StepExecutionContext) -> list[int] | None:
    if not step.has_partitions:
        return None
    return [int(k) for k in yearly.get_partition_keys_in_range(step.partition_key_range)]


def mapped_years(asset: dg.AssetsDefinition, key: dg.AssetKey, year: int) -> list[int] | None:
    """The years of input `key` that `asset`'s partition `year` reads through the
    dependency's mapping; None for an unpartitioned input (the whole table)."""
    if not _table(key).by_year:
        return None
    mapping = asset.get_partition_mapping(key)  # (AllPartitionMapping() is falsy)
    if mapping is None:
        mapping = dg.IdentityPartitionMapping()
    mapped = mapping.get_upstream_mapped_partitions_result_for_partitions(
        yearly.subset_with_partition_keys([str(year)]), yearly, yearly
    )
    return [int(k) for k in mapped.partitions_subset.get_partition_keys()]


def read_inputs(
    asset: dg.AssetsDefinition, partition: str | None, wh: Warehouse
) -> dict[str, pl.LazyFrame]:
    """An asset's inputs for one partition as the IO manager gives them, for tools that
    run a transform outside Dagster (tests, benchmarks): the same mappings, the same
    partitions."""
    return {
        name: wh.scan(_table(key), None if partition is None
                      else mapped_years(asset, key, int(partition)))
        for name, key in asset.keys_by_input_name.items()
    }  # fmt: skip


def _table(key: dg.AssetKey) -> Table:
    return TABLES[key.to_user_string()]
