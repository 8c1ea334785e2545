"""Indicators: published aggregates, after disclosure control, and the partnership views."""

import dagster as dg
import polars as pl

from assets.common import partition_year, table_asset, table_spec
from outcomes.indicators import LoadedYears, indicator_tables
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


def indicator_inputs(wh: Warehouse, year: int) -> tuple:
    """What the indicators of `year` read: spells, wages, surveys, population, counties,
    loaded years (the order of `indicators.Inputs.of`)."""
    return (
        wh.scan(LINKED_SPELLS, range(0, year + 2)),
        wh.scan(QUARTERLY_WAGES, [year, year + 1]),
        wh.scan(LINKED_SURVEYS, [year]),
        wh.scan(reference_table("population")),
        wh.read(reference_table("counties")).get_column("county_fips").to_list(),
        loaded_years(wh),
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
        table_spec(INDICATOR_PANEL, "indicators", _INDICATOR_INPUTS),
        table_spec(OUTCOME_INDICATORS, "indicators", [INDICATOR_PANEL.name]),
        table_spec(OUTCOME_INDICATORS_BY_GROUP, "indicators", [INDICATOR_PANEL.name]),
    ],
    partitions_def=yearly,
)
def indicators(context: dg.AssetExecutionContext, outcomes: OutcomesConfig):
    """Every registered indicator for one year; published rows pass small-cell suppression."""
    year = partition_year(context)
    wh, min_cell = outcomes.warehouse, outcomes.min_cell
    tables = indicator_tables(year, *indicator_inputs(wh, year), min_cell)
    panel = tables.indicator_panel
    yield written(INDICATOR_PANEL, panel.height, wh.write(INDICATOR_PANEL, panel, year))
    for table, published in (
        (OUTCOME_INDICATORS, tables.outcome_indicators),
        (OUTCOME_INDICATORS_BY_GROUP, tables.outcome_indicators_by_group),
    ):
        suppressed = published.filter(pl.col("suppression").is_not_null()).height
        yield written(
            table,
            published.height,
            wh.write(table, published, year),
            suppressed_cells=suppressed,
            min_cell=min_cell,
        )


@table_asset(PARTNERSHIP_MATURITY, "partnerships", ["staged_partnership_surveys", "partnerships"])
def partnership_maturity(
    context: dg.AssetExecutionContext, outcomes: OutcomesConfig
) -> dg.MaterializeResult:
    year = partition_year(context)
    wh = outcomes.warehouse
    df = maturity_of(wh.scan(staged_table(PARTNERSHIP_SURVEYS), [year]), year)
    return written(PARTNERSHIP_MATURITY, df.height, wh.write(PARTNERSHIP_MATURITY, df, year))


@table_asset(
    PARTNERSHIP_IMPACT,
    "partnerships",
    [dg.AssetDep(INDICATOR_PANEL.name, partition_mapping=dg.AllPartitionMapping()), "partnerships"],
    PARTNERSHIP_IMPACT.description
    + " Not estimated yet: the table is written empty with its schema (see README status).",
)
def partnership_impact(outcomes: OutcomesConfig) -> dg.MaterializeResult:
    wh = outcomes.warehouse
    df = empty(PARTNERSHIP_IMPACT)
    return written(PARTNERSHIP_IMPACT, df.height, wh.write(PARTNERSHIP_IMPACT, df))
