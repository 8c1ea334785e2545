"""Indicators: published aggregates, after disclosure control, and the partnership views."""

import datetime as dt

import dagster as dg
import polars as pl

from assets.common import (
    ONE_RUN,
    Years,
    each_year,
    inputs,
    output,
    step_release,
    table_asset,
    table_spec,
)
from assets.io import read_inputs
from assets.partitions import earlier_years, this_and_next_year, yearly, years_up_to
from assets.resources import OutcomesConfig
from outcomes import views
from outcomes.docs import data_dictionary, definition_markdown
from outcomes.impact import MIN_COUNTIES, OVERALL, impact_by_stage_table, impact_table
from outcomes.indicators import REGISTRY, LoadedYears, indicator_tables
from outcomes.maturity import partnership_maturity as maturity_of
from outcomes.provenance import code_version, indicator_provenance
from outcomes.schema import (
    DATA_DICTIONARY,
    IMPACT_BEFORE_SUPPRESSION,
    INDICATOR_PANEL,
    INDICATOR_PROVENANCE,
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
    staged_table,
)
from outcomes.warehouse import Warehouse, conform


def loaded_years(ledger: pl.LazyFrame) -> LoadedYears:
    """The years with at least one file loaded, per source, from the load ledger."""
    loaded = ledger.select("source", "year").unique().collect()

    def of(source: str) -> frozenset[int]:
        return frozenset(loaded.filter(pl.col("source") == source).get_column("year").to_list())

    return LoadedYears(
        spells=of("spells"), services=of("services"), wages=of("wages"),
        client_surveys=of("client_surveys"),
    )  # fmt: skip


def _definitions_inputs(
    spells: pl.LazyFrame, wages: pl.LazyFrame, surveys: pl.LazyFrame,
    population: pl.LazyFrame, counties: pl.LazyFrame, ledger: pl.DataFrame,
) -> tuple:  # fmt: skip
    """The asset's inputs in the order of `indicators.Inputs.of`."""
    fips = counties.select("county_fips").collect().to_series().to_list()
    return spells, wages, surveys, population, fips, loaded_years(ledger.lazy())


def indicator_inputs(wh: Warehouse, year: int) -> tuple:
    """What the indicators of `year` read, as the asset gets it (for tests and benchmarks
    that compute outside Dagster)."""
    i = read_inputs(indicators, str(year), wh)
    return _definitions_inputs(i["linked_spells"], i["quarterly_wages"],
                               i["linked_client_surveys"], i["population"], i["counties"],
                               i["load_ledger"].collect())  # fmt: skip


def every_year(table: Table) -> dg.AssetDep:
    return dg.AssetDep(table.name, partition_mapping=dg.AllPartitionMapping())


# the years each input covers are the definitions' (outcomes.indicators.input_files)
_INDICATOR_INPUTS = [
    dg.AssetDep(LINKED_SPELLS.name, partition_mapping=years_up_to(1)),
    dg.AssetDep(QUARTERLY_WAGES.name, partition_mapping=this_and_next_year()),
    LINKED_SURVEYS.name,
    "population",
    "counties",
    every_year(LOAD_LEDGER),
]
# the trend charts in the UI show the years published before this one, and this one
_PUBLISHED_BEFORE = dg.AssetDep(OUTCOME_INDICATORS.name, partition_mapping=earlier_years())


DEFINITIONS = "\n\n".join(definition_markdown(i) for i in REGISTRY.values())
IMPACT_METHOD = (
    "Per indicator: ATT(g,t) of staggered adoption against never-treated counties, the "
    "overall effect (simple, weighted by group size), event-time effects and a pre-trend "
    "test, as in docs/CONTRACT.md section 4. An estimate resting on fewer than "
    f"{MIN_COUNTIES} treated or control counties is not published."
)


@dg.multi_asset(
    specs=[
        table_spec(INDICATOR_PANEL, "indicators", _INDICATOR_INPUTS),
        table_spec(
            OUTCOME_INDICATORS, "indicators", [INDICATOR_PANEL.name, _PUBLISHED_BEFORE],
            f"{OUTCOME_INDICATORS.description}\n\n{DEFINITIONS}",
        ),
        table_spec(OUTCOME_INDICATORS_BY_GROUP, "indicators", [INDICATOR_PANEL.name]),
        table_spec(INDICATOR_PROVENANCE, "indicators", [INDICATOR_PANEL.name,
                                                        every_year(LOAD_LEDGER)]),
    ],
    partitions_def=yearly,
    ins=inputs(*_INDICATOR_INPUTS) | {"published_before": dg.AssetIn(OUTCOME_INDICATORS.name)},
    backfill_policy=ONE_RUN,
)  # fmt: skip
def indicators(
    context: dg.AssetExecutionContext, outcomes: OutcomesConfig, linked_spells: Years,
    quarterly_wages: Years, linked_client_surveys: Years, population: Years, counties: Years,
    load_ledger: Years, published_before: Years,
):  # fmt: skip
    """Every registered indicator for each year of the run; published rows pass disclosure
    control, and the provenance of each records the files, code and run behind it."""
    min_cell, version = outcomes.min_cell, code_version()
    panel, published, by_group, prov = {}, {}, {}, {}
    years = each_year(context, outcomes.warehouse, linked_spells, quarterly_wages,
                      linked_client_surveys, population, counties, load_ledger)  # fmt: skip
    for year, (spells, wages, surveys, pop, fips, ledger_scan) in years:
        ledger = ledger_scan.collect()
        tables = indicator_tables(year, *_definitions_inputs(
            spells, wages, surveys, pop, fips, ledger), min_cell)  # fmt: skip
        panel[year], published[year] = tables.indicator_panel, tables.outcome_indicators
        by_group[year] = tables.outcome_indicators_by_group
        prov[year] = indicator_provenance(ledger, year, context.run.run_id, version,
                                          dt.datetime.now(dt.UTC))  # fmt: skip
    first = min(published)  # the charts: what was published before this run's years, and them
    shown = pl.concat(
        [
            published_before[first].collect(),
            *(conform(df, OUTCOME_INDICATORS) for df in published.values()),
        ]
    )
    out = [
        (INDICATOR_PANEL, panel, {}),
        (OUTCOME_INDICATORS, published, _suppressed(published, min_cell) | _trend_charts(shown)),
        (OUTCOME_INDICATORS_BY_GROUP, by_group, _suppressed(by_group, min_cell)),
        (INDICATOR_PROVENANCE, prov,
         {"input_files": _per_year({y: df.select("file").n_unique() for y, df in prov.items()}),
          "code_version": version}),
    ]  # fmt: skip
    with step_release(context, outcomes.warehouse, [t for t, _, _ in out]):
        yield from (output(t, df, **extra) for t, df, extra in out)


def _per_year(values: dict[int, int]) -> int | dict[str, int]:
    """A figure of a step's years: the number itself when it covers one year (as every
    partition's materialization carries it, a run over several gives each year's)."""
    if len(values) == 1:
        return next(iter(values.values()))
    return {str(y): v for y, v in sorted(values.items())}


def _suppressed(by_year: dict[int, pl.DataFrame], min_cell: int) -> dict[str, object]:
    counts = {y: df.filter(pl.col("suppression").is_not_null()).height
              for y, df in by_year.items()}  # fmt: skip
    return {"suppressed_cells": _per_year(counts), "min_cell": min_cell}


def _trend_charts(published: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    return {
        f"trend_{i}": dg.MetadataValue.md(views.trend(i, published).markdown()) for i in REGISTRY
    }


@table_asset(DATA_DICTIONARY, "docs")
def data_dictionary_table(context: dg.AssetExecutionContext, outcomes: OutcomesConfig):
    """Every analytic and published column with its meaning, from the table declarations
    (the same rows as docs/data_dictionary.md)."""
    df = data_dictionary()
    with step_release(context, outcomes.warehouse, [DATA_DICTIONARY]):
        yield dg.Output(df, metadata={"tables": df.select("table").n_unique()})


@table_asset(PARTNERSHIP_MATURITY, "partnerships", backfill_policy=ONE_RUN,
             ins=inputs(staged_table(PARTNERSHIP_SURVEYS).name))  # fmt: skip
def partnership_maturity(
    context: dg.AssetExecutionContext, outcomes: OutcomesConfig, staged_partnership_surveys: Years
):
    by_year = {year: maturity_of(responses, year) for year, (responses,) in
               each_year(context, outcomes.warehouse, staged_partnership_surveys)}  # fmt: skip
    with step_release(context, outcomes.warehouse, [PARTNERSHIP_MATURITY]):
        yield dg.Output(by_year)


_IMPACT = ["partnerships", "counties"]  # and the cells of every year: published, or not
_IMPACT_OF = (
    (PARTNERSHIP_IMPACT, OUTCOME_INDICATORS),
    (IMPACT_BEFORE_SUPPRESSION, INDICATOR_PANEL),
)


@dg.multi_asset(
    specs=[
        *(
            table_spec(table, "partnerships", [every_year(cells), *_IMPACT],
                       f"{table.description}\n\n{IMPACT_METHOD}\n\n{DEFINITIONS}")
            for table, cells in _IMPACT_OF
        ),
        table_spec(
            PARTNERSHIP_IMPACT_BY_STAGE,
            "partnerships",
            [every_year(OUTCOME_INDICATORS), every_year(PARTNERSHIP_MATURITY), *_IMPACT],
        ),
    ],
    ins=inputs(OUTCOME_INDICATORS.name, INDICATOR_PANEL.name, PARTNERSHIP_MATURITY.name,
               *_IMPACT),
)  # fmt: skip
def partnership_impact(
    context: dg.AssetExecutionContext, outcomes: OutcomesConfig,
    outcome_indicators: pl.LazyFrame, indicator_panel: pl.LazyFrame,
    partnership_maturity: pl.LazyFrame, partnerships: pl.LazyFrame, counties: pl.LazyFrame,
):  # fmt: skip
    """Callaway-Sant'Anna estimates per indicator over every loaded year: from the
    published cells, (restricted) from the panel before suppression, and by the
    Value Curve stage the partnerships had reached (descriptive)."""
    pships = partnerships.collect()
    fips = counties.select("county_fips").collect().to_series().to_list()
    published = outcome_indicators.collect()
    cells = {OUTCOME_INDICATORS.name: published, INDICATOR_PANEL.name: indicator_panel.collect()}
    out = [(table, impact_table(cells[c.name], pships, fips)) for table, c in _IMPACT_OF]
    out.append((PARTNERSHIP_IMPACT_BY_STAGE, impact_by_stage_table(
        published, pships, fips, partnership_maturity.collect()
    )))  # fmt: skip
    with step_release(context, outcomes.warehouse, [t for t, _ in out]):
        yield from (output(table, df, **_impact_metadata(table, df)) for table, df in out)


def _impact_metadata(table: Table, df: pl.DataFrame) -> dict[str, object]:
    estimated = df.filter(pl.col("suppression").is_null())
    shown = {}  # the UI shows published estimates and charts; restricted ones stay in their zone
    if table is PARTNERSHIP_IMPACT:
        overall = estimated.filter(pl.col("estimand") == OVERALL).select("indicator_id", "estimate")
        shown = {f"overall_{i}": round(v, 4) for i, v in overall.iter_rows()} | {
            f"event_study_{i}": dg.MetadataValue.md(views.event_study(i, df).markdown())
            for i in REGISTRY
        }
    return {"estimates": estimated.height, "not_published": df.height - estimated.height,
            **shown}  # fmt: skip
