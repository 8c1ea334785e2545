"""What every asset shares: owners, kinds, code version, how a table becomes an asset,
and the release a step's outputs are written in."""

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence

import dagster as dg
import polars as pl

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


# assets that take every year of a run in one step (`outcomes run` gives them one run for
# all years; a backfill from the UI too): their inputs and outputs are {year: frame}
ONE_RUN = dg.BackfillPolicy.single_run()
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*`backfill_policy`")
Years = dict[int, pl.LazyFrame]  # a ONE_RUN asset's input: each year's partitions


def partition_year(context: dg.AssetExecutionContext) -> int:
    return int(context.partition_key)


def step_years(context: dg.AssetExecutionContext) -> list[int] | None:
    """The years a step materializes (one, or a single run's range); None: unpartitioned."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    return [int(k) for k in context.partition_keys]


def partition_label(years: Sequence[int] | None) -> str:
    """How a step's partitions are named in signposts, locks and fault points."""
    if not years:
        return "all"
    return str(years[0]) if len(years) == 1 else f"{years[0]}-{years[-1]}"


def each_year(
    context: dg.AssetExecutionContext, wh: Warehouse, *inputs: dict[int, pl.LazyFrame]
) -> Iterator[tuple[int, tuple[pl.LazyFrame, ...]]]:
    """A ONE_RUN asset's years in order, each with the inputs its lineage maps to it (the
    IO manager's {year: frame}); the step signposts each year before reading it."""
    for year in step_years(context) or []:
        signpost(wh.root, context.op_def.name, str(year))
        yield year, tuple(by_year[year] for by_year in inputs)


def signpost(root: os.PathLike, step: str, partition: str) -> None:
    """With OUTCOMES_TRACE_STEPS=1, try to open a path that never exists, naming the step:
    an OS-level trace (strace) then tells which step opened each file after it."""
    if trace_steps():
        with contextlib.suppress(FileNotFoundError):
            os.close(os.open(os.path.join(root, ".step", step, partition), os.O_RDONLY))


@contextlib.contextmanager
def step_release(
    context: dg.AssetExecutionContext, wh: Warehouse, tables: Sequence[Table]
) -> Iterator[Release]:
    """Everything this step writes for its partition, visible at once when it ends, with
    the partitions locked meanwhile (outcomes.release). Outputs yielded inside the block
    are written into it by the IO manager. Its label, `<step> <partition>`, is what a
    waiting writer is told and what OUTCOMES_FAULT names."""
    years = step_years(context)
    label = partition_label(years)
    signpost(wh.root, context.op_def.name, label)
    targets = [(t, y) for t in tables for y in ((years or [None]) if t.by_year else [None])]
    step = (context.run.run_id, context.op_def.name)
    with wh.release(f"{context.op_def.name} {label}", targets) as release:
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
