"""What every asset shares: owners, kinds, code version, how a table becomes an asset,
and the release a step's outputs are written in."""

import contextlib
import os
from collections.abc import Iterator, Sequence

import dagster as dg

from assets.partitions import yearly
from outcomes.config import trace_steps
from outcomes.release import Release
from outcomes.schema import Table
from outcomes.warehouse import Warehouse

OWNERS = ["team:data-engineering"]
CODE_VERSION = "1"
TABLE_KINDS = {"polars", "parquet"}
IO_MANAGER = "io_manager"  # the warehouse IO manager (assets.io) under Dagster's default key

# the release each running step writes in, by (run id, op): the IO manager's target
_OPEN: dict[tuple[str, str], Release] = {}


def partition_year(context: dg.AssetExecutionContext) -> int:
    return int(context.partition_key)


def signpost(root: os.PathLike, step: str, partition: str | None) -> None:
    """With OUTCOMES_TRACE_STEPS=1, try to open a path that never exists, naming the step:
    an OS-level trace (strace) then tells which step opened each file after it."""
    if trace_steps():
        with contextlib.suppress(FileNotFoundError):
            os.close(os.open(os.path.join(root, ".step", step, partition or "all"), os.O_RDONLY))


@contextlib.contextmanager
def step_release(
    context: dg.AssetExecutionContext, wh: Warehouse, tables: Sequence[Table]
) -> Iterator[Release]:
    """Everything this step writes for its partition, visible at once when it ends, with
    the partitions locked meanwhile (outcomes.release). Outputs yielded inside the block
    are written into it by the IO manager. Its label, `<step> <partition>`, is what a
    waiting writer is told and what OUTCOMES_FAULT names."""
    key = context.partition_key if context.has_partition_key else None
    signpost(wh.root, context.op_def.name, key)
    year = int(key) if key else None
    targets = [(t, year if t.by_year else None) for t in tables]
    step = (context.run.run_id, context.op_def.name)
    with wh.release(f"{context.op_def.name} {key or 'all'}", targets) as release:
        _OPEN[step] = release
        try:
            yield release
        finally:
            del _OPEN[step]


def open_release(run_id: str, op: str) -> Release | None:
    return _OPEN.get((run_id, op))


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
    return dg.AssetSpec(
        key=table.name, **_table_kwargs(table, group, deps, description)
    ).with_io_manager_key(IO_MANAGER)


def table_asset(table: Table, group: str, deps: Sequence = (), description: str | None = None,
                **kwargs):  # fmt: skip
    """@table_asset(...): the asset of one warehouse table, yearly when the table is."""
    return dg.asset(
        key=table.name,
        partitions_def=yearly if table.by_year else None,
        io_manager_key=IO_MANAGER,
        **_table_kwargs(table, group, deps, description),
        **kwargs,
    )


def inputs(*deps: dg.AssetDep | str) -> dict[str, dg.AssetIn]:
    """The `ins` of a multi-asset whose specs declare these dependencies: each loaded by
    the IO manager with the partitions its mapping names, under the asset's own name."""
    keys = [d.asset_key if isinstance(d, dg.AssetDep) else dg.AssetKey(d) for d in deps]
    return {k.to_python_identifier(): dg.AssetIn(k) for k in keys}


def output(table: Table, df: object, **metadata: object) -> dg.Output:
    """One table of a step, for the IO manager to write (inside `step_release`)."""
    return dg.Output(df, output_name=table.name, metadata=metadata or None)


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
