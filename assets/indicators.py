"""Indicators: published aggregates, after disclosure control, and the partnership views."""

import dagster as dg
import polars as pl

from assets.common import partition_year, table_asset, table_spec
from outcomes.impact import OVERALL, impact_by_stage_table, impact_table
from outcomes.indicators import LoadedYears, indicator_tables
from outcomes.maturity import partnership_maturity as maturity_of
from outcomes.schema import (
    IMPACT_BEFORE_SUPPRESSION,
    INDICATOR_PANEL,
    LINKED_SPELLS,
    LINKED_SURVEYS,
    LOAD_LEDGER,
    OUTCOME_INDICATORS,
    OUTCOME_INDICATORS_BY_GROUP,
    PARTNERSHIP_IMPACT,
    PARTNERSHIP_IMPACT_BY_STAGE,
    PARTNERSHIP_MATURITY,
    PARTNERSHIP_SURVEYS,
    QUARTERLY_WAGES,
    Table,
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


def every_year(table: Table) -> dg.AssetDep:
    return dg.AssetDep(table.name, partition_mapping=dg.AllPartitionMapping())


_INDICATOR_INPUTS = [
    dg.AssetDep(LINKED_SPELLS.name, partition_mapping=years_up_to(1)),
    dg.AssetDep(QUARTERLY_WAGES.name, partition_mapping=this_and_next_year()),
    LINKED_SURVEYS.name,
    "population",
    "counties",
    every_year(LOAD_LEDGER),
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


_IMPACT = ["partnerships", "counties"]  # and the cells of every year: published, or not
_IMPACT_OF = (
    (PARTNERSHIP_IMPACT, OUTCOME_INDICATORS),
    (IMPACT_BEFORE_SUPPRESSION, INDICATOR_PANEL),
)


@dg.multi_asset(
    specs=[
        *(
            table_spec(table, "partnerships", [every_year(cells), *_IMPACT])
            for table, cells in _IMPACT_OF
        ),
        table_spec(
            PARTNERSHIP_IMPACT_BY_STAGE,
            "partnerships",
            [every_year(OUTCOME_INDICATORS), every_year(PARTNERSHIP_MATURITY), *_IMPACT],
        ),
    ]
)
def partnership_impact(outcomes: OutcomesConfig):
    """Callaway-Sant'Anna estimates per indicator over every loaded year: from the
    published cells, (restricted) from the panel before suppression, and by the
    Value Curve stage the partnerships had reached (descriptive)."""
    wh = outcomes.warehouse
    partnerships = wh.read(reference_table("partnerships"))
    counties = wh.read(reference_table("counties")).get_column("county_fips").to_list()
    for table, cells in _IMPACT_OF:
        df = impact_table(wh.read(cells), partnerships, counties)
        yield _impact_written(wh, table, df)
    by_stage = impact_by_stage_table(
        wh.read(OUTCOME_INDICATORS), partnerships, counties, wh.read(PARTNERSHIP_MATURITY)
    )
    yield _impact_written(wh, PARTNERSHIP_IMPACT_BY_STAGE, by_stage)


def _impact_written(wh: Warehouse, table: Table, df: pl.DataFrame) -> dg.MaterializeResult:
    estimated = df.filter(pl.col("suppression").is_null())
    shown = {}  # the UI shows published overall estimates; restricted ones stay in their zone
    if table is PARTNERSHIP_IMPACT:
        overall = estimated.filter(pl.col("estimand") == OVERALL).select("indicator_id", "estimate")
        shown = {f"overall_{i}": round(v, 4) for i, v in overall.iter_rows()}
    return written(
        table, df.height, wh.write(table, df), estimates=estimated.height,
        not_published=df.height - estimated.height, **shown,
    )  # fmt: skip
