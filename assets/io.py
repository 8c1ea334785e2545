"""The warehouse IO manager: assets return frames, and their inputs arrive as lazy frames
of exactly the partitions their lineage declares.

Dagster maps each input through the dependency's partition mapping (this year, every
earlier year, this and the next, all years); the manager scans those partitions and
nothing else, so the lineage the UI draws is what was read (tests/test_lineage.py
checks it at the operating-system level). Outputs go to the contract's layout,
`<zone>/<table>/year=YYYY/data.parquet`, inside the release the step holds
(assets.common.step_release): a step's tables appear together or not at all.
"""

import dagster as dg
import polars as pl

from assets.common import open_release, signpost
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

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        table = _table(context.asset_key)
        release = open_release(context.run_id, context.op_def.name)
        if release is None:
            raise RuntimeError(
                f"{table.name}: yield its output inside step_release, so the step's tables "
                "are released together"
            )
        year = int(context.asset_partition_key) if table.by_year else None
        path = self.warehouse.write(table, obj, year, release)
        context.add_output_metadata(table_metadata(table, obj.height, path))

    def load_input(self, context: dg.InputContext) -> pl.LazyFrame:
        table = _table(context.asset_key)
        step = context.step_context
        signpost(self.warehouse.root, step.op_def.name,
                 step.partition_key if step.has_partition_key else None)  # fmt: skip
        if not table.by_year:
            return self.warehouse.scan(table)
        return self.warehouse.scan(table, [int(k) for k in context.asset_partition_keys])


def read_inputs(
    asset: dg.AssetsDefinition, partition: str | None, wh: Warehouse
) -> dict[str, pl.LazyFrame]:
    """An asset's inputs for one partition as the IO manager gives them, for tools that
    run a transform outside Dagster (tests, benchmarks): the same mappings, the same
    partitions."""
    frames = {}
    for name, key in asset.keys_by_input_name.items():
        table = _table(key)
        if not table.by_year or partition is None:  # unpartitioned: every year
            frames[name] = wh.scan(table)
            continue
        mapping = asset.get_partition_mapping(key)  # (AllPartitionMapping() is falsy)
        if mapping is None:
            mapping = dg.IdentityPartitionMapping()
        mapped = mapping.get_upstream_mapped_partitions_result_for_partitions(
            yearly.subset_with_partition_keys([partition]), yearly, yearly
        )
        years = [int(k) for k in mapped.partitions_subset.get_partition_keys()]
        frames[name] = wh.scan(table, years)
    return frames


def _table(key: dg.AssetKey) -> Table:
    return TABLES[key.to_user_string()]
