"""Partnership maturity (contract section 4): the six accelerants, a 0-100 index, a stage.

Per partnership and year: n_responses, each accelerant's mean over the responses that
answered it (nulls ignored), maturity_index = 100 x (mean of the accelerant means - 1) / 4
(unrounded), and the Human Services Value Curve stage.

Choices where the contract is silent:

- n_responses counts every response of the partnership and year, answered or blank.
- An accelerant nobody answered has a null mean; the index is the mean over the
  accelerant means that exist, so one unasked item does not wipe out the others.
  With no answer at all the index and the stage are null.
- The stage compares the index rounded to 9 decimals, so float noise never moves a
  partnership across 40, 60 or 80 (means 4.2, 1.8, 3.2, 1.8, 2.6, 2.0 average exactly
  2.6, index 40, yet in floating point give 39.99999999999999).
- Rows are sorted by partnership_id.

A partnership-year with fewer than MIN_RESPONSES responses publishes n_responses
only (`suppression = primary`): a partnership's few respondents are known to each
other, and one respondent's ratings must not be readable from the means.
"""

from __future__ import annotations

import polars as pl

from outcomes import schema

STAGES = ((40.0, "regulative"), (60.0, "collaborative"), (80.0, "integrative"))
TOP_STAGE = "generative"
STAGE_ORDER = (*(name for _, name in STAGES), TOP_STAGE)  # least to most mature
STAGE_PRECISION = 9  # decimals kept when comparing the index with stage boundaries
MIN_RESPONSES = 5  # contract section 4: fewer publish n_responses only


def maturity_index(means: list[str]) -> pl.Expr:
    """100 x (mean of the available accelerant means - 1) / 4: 1 -> 0, 5 -> 100."""
    return 100 * (pl.mean_horizontal(means, ignore_nulls=True) - 1) / 4


def value_curve_stage(index: pl.Expr) -> pl.Expr:
    """Regulative below 40, collaborative below 60, integrative below 80, else generative."""
    rounded = index.round(STAGE_PRECISION)
    stage = pl.when(rounded.is_null()).then(pl.lit(None, pl.String()))
    for upper, name in STAGES:
        stage = stage.when(rounded < upper).then(pl.lit(name))
    return stage.otherwise(pl.lit(TOP_STAGE))


def partnership_maturity(
    responses: pl.LazyFrame | pl.DataFrame, year: int, min_responses: int = MIN_RESPONSES
) -> pl.DataFrame:
    """PARTNERSHIP_MATURITY for one year from staged partnership survey responses."""
    items = list(schema.ACCELERANTS)
    table = schema.PARTNERSHIP_MATURITY.schema
    few = pl.col("n_responses") < min_responses
    means = (
        responses.lazy()
        .filter(pl.col("year") == year)
        .group_by("partnership_id")
        .agg(pl.len().alias("n_responses"), *[pl.col(a).cast(pl.Float64).mean() for a in items])
        .with_columns(year=pl.lit(year), maturity_index=maturity_index(items))
        .with_columns(value_curve_stage=value_curve_stage(pl.col("maturity_index")))
        .with_columns(
            pl.when(~few).then(pl.col(*items, "maturity_index", "value_curve_stage")),
            suppression=pl.when(few).then(pl.lit("primary")),
        )
    )
    return means.select(list(table)).cast(table).sort("partnership_id").collect()
