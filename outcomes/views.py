"""What evaluators see of each indicator, from published tables only: the trend and the
event study as charts, and the definition. The Dagster UI and the HTML report both
draw them from here."""

from __future__ import annotations

import polars as pl

from outcomes.charts import Chart, event_study_chart, trend_chart
from outcomes.impact import EVENT_TIME
from outcomes.indicators import ALL, REGISTRY

DIGITS = {"proportion": 3, "rate": 2}  # how values read in a chart's table


def trend(indicator_id: str, published: pl.DataFrame) -> Chart:
    """The state (ALL) and county values of one indicator over the years published.

    `published`: outcome_indicators rows (a suppressed cell has a null value: a gap).
    """
    ind = REGISTRY[indicator_id]
    values = published.filter(pl.col("indicator_id") == indicator_id).select(
        "year", "county_fips", "value"
    )
    return trend_chart(f"trend-{indicator_id}", ind.title, values, ALL, DIGITS[ind.kind])


def event_study(indicator_id: str, impact: pl.DataFrame) -> Chart:
    """The published event-time effects of one indicator (partnership_impact rows)."""
    ind = REGISTRY[indicator_id]
    effects = impact.filter(
        pl.col("indicator_id") == indicator_id, pl.col("estimand") == EVENT_TIME
    ).select("event_time", "estimate", "ci_low", "ci_high", "suppression")
    title = f"{ind.title}: effect by years since the first partnership"
    return event_study_chart(f"event-{indicator_id}", title, effects, DIGITS[ind.kind] + 1)
