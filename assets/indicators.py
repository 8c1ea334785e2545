"""Indicators: published aggregates, after disclosure control, and the partnership views."""

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl

from assets.common import partition_year, step_release, table_asset, table_spec
from assets.partitions import this_and_next_year, yearly, years_up_to
from assets.resources import OutcomesConfig, written
from outcomes import views
from outcomes.docs import data_dictionary, definition_markdown
from outcomes.impact import MIN_COUNTIES, OVERALL, impact_by_stage_table, impact_table
from outcomes.indicators import REGISTRY, LoadedYears, indicator_tables, input_files
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
    reference_table,
    staged_table,
)
from outcomes.warehouse import Warehouse, conform


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
    files = input_files(year)
    return (
        wh.scan(LINKED_SPELLS, files["spells"]["spells"]),
        wh.scan(QUARTERLY_WAGES, files["wages"]["wages"]),
        wh.scan(LINKED_SURVEYS, files["surveys"]["client_surveys"]),
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
            OUTCOME_INDICATORS, "indicators", [INDICATOR_PANEL.name],
            f"{OUTCOME_INDICATORS.description}\n\n{DEFINITIONS}",
        ),
        table_spec(OUTCOME_INDICATORS_BY_GROUP, "indicators", [INDICATOR_PANEL.name]),
        table_spec(INDICATOR_PROVENANCE, "indicators", [INDICATOR_PANEL.name,
                                                        every_year(LOAD_LEDGER)]),
    ],
    partitions_def=yearly,
)  # fmt: skip
def indicators(context: dg.AssetExecutionContext, outcomes: OutcomesConfig):
    """Every registered indicator for one year; published rows pass disclosure control,
    and the provenance of each records the files, code and run behind it."""
    year = partition_year(context)
    wh, min_cell = outcomes.warehouse, outcomes.min_cell
    tables = indicator_tables(year, *indicator_inputs(wh, year), min_cell)
    published = tables.outcome_indicators
    # the charts show every year published so far, this one included: metadata for the
    # UI, not an input of the table (so no dependency on other years)
    shown = wh.read(OUTCOME_INDICATORS, [y for y in wh.years(OUTCOME_INDICATORS) if y != year])
    trends = _trend_charts(pl.concat([shown, conform(published, OUTCOME_INDICATORS)]))
    prov = indicator_provenance(wh.read(LOAD_LEDGER), year, context.run.run_id, code_version(),
                                dt.datetime.now(dt.UTC))  # fmt: skip
    by_group = tables.outcome_indicators_by_group
    out = [
        (INDICATOR_PANEL, tables.indicator_panel, {}),
        (OUTCOME_INDICATORS, published, _suppressed(published, min_cell) | trends),
        (OUTCOME_INDICATORS_BY_GROUP, by_group, _suppressed(by_group, min_cell)),
        (INDICATOR_PROVENANCE, prov,
         {"input_files": prov.select("file").n_unique(), "code_version": code_version()}),
    ]  # fmt: skip
    with step_release(context, wh, [t for t, _, _ in out]) as release:
        paths = [wh.write(t, df, year, release) for t, df, _ in out]
    for (table, df, extra), path in zip(out, paths, strict=True):
        yield written(table, df.height, path, **extra)


def _suppressed(published: pl.DataFrame, min_cell: int) -> dict[str, int]:
    return {"suppressed_cells": published.filter(pl.col("suppression").is_not_null()).height,
            "min_cell": min_cell}  # fmt: skip


def _trend_charts(published: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    return {
        f"trend_{i}": dg.MetadataValue.md(views.trend(i, published).markdown()) for i in REGISTRY
    }


@table_asset(DATA_DICTIONARY, "docs")
def data_dictionary_table(
    context: dg.AssetExecutionContext, outcomes: OutcomesConfig
) -> dg.MaterializeResult:
    """Every analytic and published column with its meaning, from the table declarations
    (the same rows as docs/data_dictionary.md)."""
    df = data_dictionary()
    wh = outcomes.warehouse
    with step_release(context, wh, [DATA_DICTIONARY]) as release:
        path = wh.write(DATA_DICTIONARY, df, release=release)
    return written(DATA_DICTIONARY, df.height, path,
                   tables=df.select("table").n_unique())  # fmt: skip


@table_asset(PARTNERSHIP_MATURITY, "partnerships", ["staged_partnership_surveys", "partnerships"])
def partnership_maturity(
    context: dg.AssetExecutionContext, outcomes: OutcomesConfig
) -> dg.MaterializeResult:
    year = partition_year(context)
    wh = outcomes.warehouse
    df = maturity_of(wh.scan(staged_table(PARTNERSHIP_SURVEYS), [year]), year)
    with step_release(context, wh, [PARTNERSHIP_MATURITY]) as release:
        path = wh.write(PARTNERSHIP_MATURITY, df, year, release)
    return written(PARTNERSHIP_MATURITY, df.height, path)


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
    ]
)
def partnership_impact(context: dg.AssetExecutionContext, outcomes: OutcomesConfig):
    """Callaway-Sant'Anna estimates per indicator over every loaded year: from the
    published cells, (restricted) from the panel before suppression, and by the
    Value Curve stage the partnerships had reached (descriptive)."""
    wh = outcomes.warehouse
    partnerships = wh.read(reference_table("partnerships"))
    counties = wh.read(reference_table("counties")).get_column("county_fips").to_list()
    out = [(table, impact_table(wh.read(cells), partnerships, counties))
           for table, cells in _IMPACT_OF]  # fmt: skip
    by_stage = impact_by_stage_table(
        wh.read(OUTCOME_INDICATORS), partnerships, counties, wh.read(PARTNERSHIP_MATURITY)
    )
    out.append((PARTNERSHIP_IMPACT_BY_STAGE, by_stage))
    with step_release(context, wh, [t for t, _ in out]) as release:
        paths = [wh.write(t, df, release=release) for t, df in out]
    for (table, df), path in zip(out, paths, strict=True):
        yield _impact_written(table, df, path)


def _impact_written(table: Table, df: pl.DataFrame, path: Path) -> dg.MaterializeResult:
    estimated = df.filter(pl.col("suppression").is_null())
    shown = {}  # the UI shows published estimates and charts; restricted ones stay in their zone
    if table is PARTNERSHIP_IMPACT:
        overall = estimated.filter(pl.col("estimand") == OVERALL).select("indicator_id", "estimate")
        shown = {f"overall_{i}": round(v, 4) for i, v in overall.iter_rows()} | {
            f"event_study_{i}": dg.MetadataValue.md(views.event_study(i, df).markdown())
            for i in REGISTRY
        }
    return written(
        table, df.height, path, estimates=estimated.height,
        not_published=df.height - estimated.height, **shown,
    )  # fmt: skip
