"""Jobs: the stages a run walks through, in dependency order.

Linking a year needs every earlier year linked; indicators for a year need the
next year integrated (provisional flags, returns within 12 months). So a full
run stages and links year by year (a run each: a year's blocking checks stop its
linkage), then integrates every year in one run, then computes every year's
indicators in one run, then the impact estimates over the whole panel.
"""

import dagster as dg

from outcomes.schema import (
    IMPACT_BEFORE_SUPPRESSION,
    PARTNERSHIP_IMPACT,
    PARTNERSHIP_IMPACT_BY_STAGE,
)

load_reference = dg.define_asset_job(
    "load_reference",
    selection=dg.AssetSelection.groups("reference"),
    description="Counties, population and partnerships from the landing zone.",
)
stage_and_link = dg.define_asset_job(
    "stage_and_link",
    selection=dg.AssetSelection.groups("validate", "link"),
    description="Read, validate and link one year's landing files.",
)
integrate = dg.define_asset_job(
    "integrate",
    selection=dg.AssetSelection.groups("integrate"),
    description="Pseudonymised analytic tables for one year.",
)
publish_indicators = dg.define_asset_job(
    "publish_indicators",
    selection=dg.AssetSelection.groups("indicators")
    | dg.AssetSelection.assets("partnership_maturity"),
    description="Indicators and partnership maturity for one year.",
)
estimate_impact = dg.define_asset_job(
    "estimate_impact",
    selection=dg.AssetSelection.assets(
        *(
            t.name
            for t in (PARTNERSHIP_IMPACT, IMPACT_BEFORE_SUPPRESSION, PARTNERSHIP_IMPACT_BY_STAGE)
        )
    )
    | dg.AssetSelection.groups("docs"),
    description="Difference-in-differences over every year's indicator panel, and the data "
    "dictionary.",
)

# how a job's runs cover the years: once (unpartitioned), a run per year, or one run per
# unbroken range of years (its assets take every year of the run in one step)
ONCE, EACH_YEAR, YEAR_RANGES = "once", "each year", "year ranges"

# (job, how it runs) in the order a full run takes them
RUN_ORDER = (
    (load_reference, ONCE),
    (stage_and_link, EACH_YEAR),
    (integrate, YEAR_RANGES),
    (publish_indicators, YEAR_RANGES),
    (estimate_impact, ONCE),
)
