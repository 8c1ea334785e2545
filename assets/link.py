"""Record linkage: which records are the same person (restricted zone only)."""

import dagster as dg
import polars as pl

from assets.common import partition_year, table_spec
from outcomes.integrate import identities
from outcomes.link import link_year, resolve
from outcomes.schema import PERSON_KEY_MERGES, RECORD_LINKS, SOURCES, staged_table
from outcomes.warehouse import Warehouse
from pipelines.partitions import earlier_years, yearly, years_up_to
from pipelines.resources import OutcomesConfig, written

LINKED_SOURCES = ("spells", "wages", "services")


def staged_up_to(wh: Warehouse, name: str, year: int) -> pl.LazyFrame:
    return wh.scan(staged_table(SOURCES[name]), range(0, year + 1))


def resolved_links(wh: Warehouse, years: range, merge_years: range | None = None) -> pl.DataFrame:
    """record_links of `years`, keys resolved through the merges of `merge_years` (all)."""
    return resolve(wh.read(RECORD_LINKS, years), wh.read(PERSON_KEY_MERGES, merge_years))


_STAGED_UP_TO = [
    dg.AssetDep(f"staged_{n}", partition_mapping=years_up_to()) for n in LINKED_SOURCES
]


@dg.multi_asset(
    specs=[
        table_spec(
            RECORD_LINKS,
            "link",
            [*_STAGED_UP_TO, dg.AssetDep(RECORD_LINKS.name, partition_mapping=earlier_years())],
            RECORD_LINKS.description
            + " Deterministic: shared agency id, valid SSN, or exact name and birth date.",
        ),
        table_spec(
            PERSON_KEY_MERGES,
            "link",
            [
                *_STAGED_UP_TO,
                dg.AssetDep(PERSON_KEY_MERGES.name, partition_mapping=earlier_years()),
            ],
        ),
    ],
    partitions_def=yearly,
)
def linkage(context: dg.AssetExecutionContext, outcomes: OutcomesConfig):
    """Link this year's records against every earlier year; earlier keys never change."""
    year = partition_year(context)
    wh = outcomes.warehouse
    if outcomes.settings.uses_demo_key:
        context.log.warning("OUTCOMES_LINKAGE_KEY is not set: person keys use the demo key")
    records = identities(*(staged_up_to(wh, n, year) for n in LINKED_SOURCES))
    previous = resolved_links(wh, range(0, year), merge_years=range(0, year))
    links, merges = link_year(records, previous, outcomes.linkage_key, year)
    yield written(
        RECORD_LINKS, links.height, wh.write(RECORD_LINKS, links, year),
        persons=links.get_column("person_key").n_unique(),
    )  # fmt: skip
    yield written(PERSON_KEY_MERGES, merges.height, wh.write(PERSON_KEY_MERGES, merges, year))
