"""Integration: linked, pseudonymised tables, with every key resolved to its survivor.

Each table reads the record links of the records it carries (a survey's client may be a
services record of any year up to the survey's) and the merges of every year: a merge
found later re-resolves an earlier year's keys. Years are independent of each other, so
every year of a run is integrated in one step.
"""

import dagster as dg
import polars as pl

from assets.common import ONE_RUN, Years, each_year, inputs, output, step_release, table_spec
from assets.partitions import yearly, years_up_to
from assets.resources import OutcomesConfig
from outcomes.integrate import ANALYTIC_OF, linked_spells, linked_surveys, quarterly_wages
from outcomes.link import resolve
from outcomes.schema import (
    LINKED_SPELLS,
    LINKED_SURVEYS,
    PERSON_KEY_MERGES,
    QUARTERLY_WAGES,
    RECORD_LINKS,
    Table,
)

_ALL_MERGES = dg.AssetDep(PERSON_KEY_MERGES.name, partition_mapping=dg.AllPartitionMapping())
_LINKS_UP_TO = dg.AssetDep(RECORD_LINKS.name, partition_mapping=years_up_to())
_SERVICES_UP_TO = dg.AssetDep("staged_services", partition_mapping=years_up_to())
_UPSTREAM = {
    LINKED_SPELLS.name: ["staged_spells", "staged_services", RECORD_LINKS.name, _ALL_MERGES],
    QUARTERLY_WAGES.name: ["staged_wages", RECORD_LINKS.name, _ALL_MERGES],
    LINKED_SURVEYS.name: ["staged_client_surveys", _SERVICES_UP_TO, _LINKS_UP_TO, _ALL_MERGES],
}


def _integration(linked: Table):
    """The multi-asset of one linked table and, where it has one, its analytic projection."""
    analytic = ANALYTIC_OF.get(linked.name)
    specs = [table_spec(linked, "integrate", _UPSTREAM[linked.name])]
    if analytic is not None:
        specs.append(table_spec(analytic, "integrate", [linked.name]))
    return dg.multi_asset(
        name=f"integrate_{linked.name}", specs=specs, partitions_def=yearly,
        ins=inputs(*_UPSTREAM[linked.name]), backfill_policy=ONE_RUN,
    )  # fmt: skip


def _released(context: dg.AssetExecutionContext, outcomes: OutcomesConfig, linked: Table,
              by_year: dict[int, pl.DataFrame]):  # fmt: skip
    """The linked table and its analytic projection (no source ids), in one release."""
    analytic = ANALYTIC_OF.get(linked.name)
    with step_release(context, outcomes.warehouse, [linked, *([analytic] if analytic else [])]):
        yield output(linked, by_year)
        if analytic is not None:
            yield output(analytic, by_year)


def _links(record_links: pl.LazyFrame, merges: pl.LazyFrame) -> pl.DataFrame:
    return resolve(record_links.collect(), merges.collect())


@_integration(LINKED_SPELLS)
def integrate_spells(
    context: dg.AssetExecutionContext, outcomes: OutcomesConfig, staged_spells: Years,
    staged_services: Years, record_links: Years, person_key_merges: Years,
):  # fmt: skip
    """Public spells and nonprofit enrollments with resolved person keys."""
    years = each_year(context, outcomes.warehouse, staged_spells, staged_services, record_links,
                      person_key_merges)  # fmt: skip
    out = {year: linked_spells(spells.collect(), services.collect(), _links(links, merges))
           for year, (spells, services, links, merges) in years}  # fmt: skip
    yield from _released(context, outcomes, LINKED_SPELLS, out)


@_integration(QUARTERLY_WAGES)
def integrate_wages(
    context: dg.AssetExecutionContext, outcomes: OutcomesConfig, staged_wages: Years,
    record_links: Years, person_key_merges: Years,
):  # fmt: skip
    """Quarterly wage records with resolved person keys."""
    years = each_year(context, outcomes.warehouse, staged_wages, record_links, person_key_merges)
    out = {year: quarterly_wages(wages.collect(), _links(links, merges))
           for year, (wages, links, merges) in years}  # fmt: skip
    yield from _released(context, outcomes, QUARTERLY_WAGES, out)


@_integration(LINKED_SURVEYS)
def integrate_surveys(
    context: dg.AssetExecutionContext, outcomes: OutcomesConfig,
    staged_client_surveys: Years, staged_services: Years, record_links: Years,
    person_key_merges: Years,
):  # fmt: skip
    """Client survey responses with the client's person key and county."""
    years = each_year(context, outcomes.warehouse, staged_client_surveys, staged_services,
                      record_links, person_key_merges)  # fmt: skip
    out = {year: linked_surveys(surveys.collect(), services.collect(), _links(links, merges))
           for year, (surveys, services, links, merges) in years}  # fmt: skip
    yield from _released(context, outcomes, LINKED_SURVEYS, out)


integration = [integrate_spells, integrate_wages, integrate_surveys]
