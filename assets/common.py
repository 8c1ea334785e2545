"""What every asset shares: owners, kinds, code version, and the year of a partition."""

from collections.abc import Sequence
from contextlib import AbstractContextManager

import dagster as dg

from assets.partitions import yearly
from outcomes.release import Release
from outcomes.schema import Table
from outcomes.warehouse import Warehouse

OWNERS = ["team:data-engineering"]
CODE_VERSION = "1"
TABLE_KINDS = {"polars", "parquet"}


def partition_year(context: dg.AssetExecutionContext) -> int:
    return int(context.partition_key)


def step_release(
    context: dg.AssetExecutionContext, wh: Warehouse, tables: Sequence[Table]
) -> AbstractContextManager[Release]:
    """Everything this step writes for its partition, visible at once when it ends, with
    the partitions locked meanwhile (outcomes.release). Its label, `<step> <partition>`,
    is what a waiting writer is told and what OUTCOMES_FAULT names."""
    key = context.partition_key if context.has_partition_key else None
    year = int(key) if key else None
    targets = [(t, year if t.by_year else None) for t in tables]
    return wh.release(f"{context.op_def.name} {key or 'all'}", targets)


def _table_kwargs(table: Table, group: str, deps: Sequence, description: str | None) -> dict:
    return {
        "deps": list(deps),
        "description": description or table.description,
        "group_name": group,
        "owners": OWNERS,
        "kinds": TABLE_KINDS,
        "code_version": CODE_VERSION,
    }


def table_spec(
    table: Table, group: str, deps: Sequence = (), description: str | None = None
) -> dg.AssetSpec:
    """The asset of one warehouse table, for a multi-asset that writes several."""
    return dg.AssetSpec(key=table.name, **_table_kwargs(table, group, deps, description))


def table_asset(table: Table, group: str, deps: Sequence = (), description: str | None = None):
    """@table_asset(...): the asset of one warehouse table, yearly when the table is."""
    return dg.asset(
        key=table.name,
        partitions_def=yearly if table.by_year else None,
        **_table_kwargs(table, group, deps, description),
    )


def materialized(
    instance: dg.DagsterInstance, asset: str, partition: str | None
) -> dict[str, object]:
    """The metadata of an asset (partition)'s latest materialization, as plain values."""
    partitions = [partition] if partition is not None else None
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=partitions),
        limit=1,
    ).records
    if not records or records[0].asset_materialization is None:
        return {}
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}
