"""Landing files (the graph's roots) and the reference tables read from them."""

import dagster as dg

from assets.common import OWNERS, output, step_release, table_spec
from assets.partitions import yearly
from assets.resources import OutcomesConfig
from outcomes.schema import REFERENCE, SOURCES, reference_table
from outcomes.validate import read_references

landing = {
    name: dg.AssetSpec(
        key=f"landing_{name}",
        description=f"Partner deliveries in the landing zone: {source.landing_path}"
        ".csv|parquet|xlsx "
        "(a mapping.yaml beside them translates a partner's own format).",
        group_name="landing",
        partitions_def=yearly,
        owners=OWNERS,
        kinds={"csv", "parquet", "xlsx"},
    )
    for name, source in SOURCES.items()
}
landing_reference = dg.AssetSpec(
    key="landing_reference",
    description="reference/counties.csv, population.csv and partnerships.csv in the landing zone.",
    group_name="landing",
    owners=OWNERS,
    kinds={"csv"},
)


@dg.multi_asset(
    specs=[
        table_spec(reference_table(name), "reference", [landing_reference]) for name in REFERENCE
    ]
)
def reference(context: dg.AssetExecutionContext, outcomes: OutcomesConfig):
    """Counties, population and partnerships, checked against their suites as a whole."""
    tables = [reference_table(n) for n in REFERENCE]
    with step_release(context, outcomes.warehouse, tables):
        frames = read_references(outcomes.settings.landing_dir)
        yield from (output(t, frames[t.name]) for t in tables)
