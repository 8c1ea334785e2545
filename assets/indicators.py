"""Indicators: published aggregates, after disclosure control, and the partnership views."""

import dagster as dg
import polars as pl

from assets.common import CODE_VERSION, OWNERS, partition_year
from outcomes.indicators import LoadedYears, finalize, group_cells, indicator_panel, person_cells
from outcomes.maturity import partnership_maturity as maturity_of
from outcomes.schema import (
    INDICATOR_PANEL,
    LINKED_SPELLS,
    LINKED_SURVEYS,
    LOAD_LEDGER,
    OUTCOME_INDICATORS,
    OUTCOME_INDICATORS_BY_GROUP,
    PARTNERSHIP_IMPACT,
    PARTNERSHIP_MATURITY,
    PARTNERSHIP_SURVEYS,
    QUARTERLY_WAGES,
    Table,
    empty,
    reference_table,
    staged_table,
)
from outcomes.warehouse import Warehouse
from pipelines.partitions import this_and_next_year, yearly, years_up_to
from pipelines.resources import OutcomesConfig, written


def loaded_years(wh: Warehouse) -> LoadedYears:
    """The years with at least one file loaded, per source, from the load ledger."""
    ledger = wh.read(LOAD_LEDGER).select("source", "year").unique()

    def of(source: str) -> frozenset[int]:
        return frozenset(ledger.filter(pl.col("source") == source).get_column("year").to_list())

    return LoadedYears(
        spells=of("spells"), services=of("services"), wages=of("wages"),
        client_surveys=of("client_surveys"),
    )  # fmt: skip


def _spec(table: Table, deps: list, group: str = "indicators") -> dg.AssetSpec:
    return dg.AssetSpec(
        key=table.name,
        description=table.description,
        deps=deps,
        group_name=group,
        owners=OWNERS,
        kinds={"polars", "parquet"},
        code_version=CODE_VERSION,
    )


_INDICATOR_INPUTS = [
    dg.AssetDep(LINKED_SPELLS.name, partition_mapping=years_up_to(1)),
    dg.AssetDep(QUARTERLY_WAGES.name, partition_mapping=this_and_next_year()),
    LINKED_SURVEYS.name,
    "population",
    "counties",
    dg.AssetDep(LOAD_LEDGER.name, partition_mapping=dg.AllPartitionMapping()),
]


@dg.multi_asset(
    specs=[
        _spec(INDICATOR_PANEL, _INDICATOR_INPUTS),
        _spec(OUTCOME_INDICATORS, [INDICATOR_PANEL.name]),
        _spec(OUTCOME_INDICATORS_BY_GROUP, [INDICATOR_PANEL.name]),
    ],
    partitions_def=yearly,
)
def indicators(context: dg.AssetExecutionContext, outcomes: OutcomesConfig):
    """Every registered indicator for one year; published rows pass small-cell suppression."""
    year = partition_year(context)
    wh, min_cell = outcomes.warehouse, outcomes.min_cell
    inputs = (
        wh.scan(LINKED_SPELLS, range(0, year + 2)),
        wh.scan(QUARTERLY_WAGES, [year, year + 1]),
        wh.scan(LINKED_SURVEYS, [year]),
        wh.scan(reference_table("population")),
        wh.read(reference_table("counties")).get_column("county_fips").to_list(),
        loaded_years(wh),
    )
    cells = person_cells(year, *inputs)
    panel = indicator_panel(cells)
    yield written(INDICATOR_PANEL, panel.height, wh.write(INDICATOR_PANEL, panel, year))
    for table, unsuppressed in (
        (OUTCOME_INDICATORS, cells),
        (OUTCOME_INDICATORS_BY_GROUP, group_cells(year, *inputs)),
    ):
        published = finalize(unsuppressed, min_cell)
        suppressed = published.filter(pl.col("suppression").is_not_null()).height
        yield written(
            table, published.height, wh.write(table, published, year),
            suppressed_cells=suppressed, min_cell=min_cell,
        )  # fmt: skip


@dg.asset(
    key=PARTNERSHIP_MATURITY.name,
    deps=["staged_partnership_surveys", "partnerships"],
    partitions_def=yearly,
    group_name="partnerships",
    description=PARTNERSHIP_MATURITY.description,
    owners=OWNERS,
    kinds={"polars", "parquet"},
    code_version=CODE_VERSION,
)
def partnership_maturity(
    context: dg.AssetExecutionContext, outcomes: OutcomesConfig
) -> dg.MaterializeResult:
    year = partition_year(context)
    wh = outcomes.warehouse
    df = maturity_of(wh.scan(staged_table(PARTNERSHIP_SURVEYS), [year]), year)
    return written(PARTNERSHIP_MATURITY, df.height, wh.write(PARTNERSHIP_MATURITY, df, year))


@dg.asset(
    key=PARTNERSHIP_IMPACT.name,
    deps=[
        dg.AssetDep(INDICATOR_PANEL.name, partition_mapping=dg.AllPartitionMapping()),
        "partnerships",
    ],
    group_name="partnerships",
    description=PARTNERSHIP_IMPACT.description
    + " Not estimated yet: the table is written empty with its schema (see README status).",
    owners=OWNERS,
    kinds={"polars", "parquet"},
    code_version=CODE_VERSION,
)
def partnership_impact(outcomes: OutcomesConfig) -> dg.MaterializeResult:
    wh = outcomes.warehouse
    df = empty(PARTNERSHIP_IMPACT)
    return written(PARTNERSHIP_IMPACT, df.height, wh.write(PARTNERSHIP_IMPACT, df))
