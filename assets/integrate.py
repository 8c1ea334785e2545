"""Integration: linked, pseudonymised tables, with every key resolved to its survivor."""

import dagster as dg
import polars as pl

from assets.common import partition_year, step_release, table_spec
from assets.link import resolved_links, staged_up_to
from assets.partitions import yearly, years_up_to
from assets.resources import OutcomesConfig, written
from outcomes.integrate import ANALYTIC_OF, linked_spells, linked_surveys, quarterly_wages
from outcomes.schema import (
    LINKED_SPELLS,
    LINKED_SURVEYS,
    PERSON_KEY_MERGES,
    QUARTERLY_WAGES,
    RECORD_LINKS,
    SOURCES,
    staged_table,
)

_ALL_MERGES = dg.AssetDep(PERSON_KEY_MERGES.name, partition_mapping=dg.AllPartitionMapping())
_UPSTREAM = {
    LINKED_SPELLS.name: ["staged_spells", "staged_services", RECORD_LINKS.name],
    QUARTERLY_WAGES.name: ["staged_wages", RECORD_LINKS.name],
    LINKED_SURVEYS.name: [
        "staged_client_surveys",
        dg.AssetDep("staged_services", partition_mapping=years_up_to()),
        dg.AssetDep(RECORD_LINKS.name, partition_mapping=years_up_to()),
    ],
}


_SPECS = [
    *(
        table_spec(t, "integrate", [*_UPSTREAM[t.name], _ALL_MERGES])
        for t in (LINKED_SPELLS, QUARTERLY_WAGES, LINKED_SURVEYS)
    ),
    *(table_spec(a, "integrate", [linked]) for linked, a in ANALYTIC_OF.items()),
]


@dg.multi_asset(specs=_SPECS, partitions_def=yearly)
def integration(context: dg.AssetExecutionContext, outcomes: OutcomesConfig):
    """Staged rows + resolved person keys; analytic tables drop every source id."""
    year = partition_year(context)
    wh = outcomes.warehouse

    def staged(name: str) -> pl.DataFrame:
        return wh.read(staged_table(SOURCES[name]), [year])

    links = resolved_links(wh, range(0, year + 1))  # through every year's merges
    out = [
        (LINKED_SPELLS, linked_spells(staged("spells"), staged("services"), links)),
        (QUARTERLY_WAGES, quarterly_wages(staged("wages"), links)),
        (LINKED_SURVEYS, linked_surveys(
            staged("client_surveys"), staged_up_to(wh, "services", year).collect(), links
        )),
    ]  # fmt: skip
    out += [(ANALYTIC_OF[t.name], df) for t, df in out if t.name in ANALYTIC_OF]
    with step_release(context, wh, [t for t, _ in out]) as release:
        paths = [wh.write(t, df, year, release) for t, df in out]
    for (table, df), path in zip(out, paths, strict=True):
        yield written(table, df.height, path)
