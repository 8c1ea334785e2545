"""Partnership impact: staggered difference-in-differences (Callaway and Sant'Anna 2021).

`staggered_did` works on any unit-period panel; `impact_table` builds the county-year
panel of each indicator and applies the contract's publication rules (section 4):
only published cells, a balanced panel, at least 3 treated and 3 control counties
behind every published estimate. The estimator is moderndid's `att_gt` and `aggte`
(pinned at 0.2.0, checked against R `did` on mpdta in the tests).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
from scipy.stats import norm

from outcomes.maturity import STAGE_ORDER
from outcomes.schema import PARTNERSHIP_IMPACT, PARTNERSHIP_IMPACT_BY_STAGE

MIN_COUNTIES = 3  # contract section 4: treated and control counties behind an estimate
ALPHA = 0.05
OVERALL, EVENT_TIME, PRETREND = "overall", "event_time", "pretrend_test"
METHOD = (
    "Callaway-Sant'Anna ATT(g,t), never-treated controls, varying base period, "
    "outcome regression, analytic SE (moderndid 0.2.0); {aggregation}"
)
_AGGREGATION = {
    OVERALL: "simple average weighted by group size",
    EVENT_TIME: "event-time (dynamic) aggregation",
    PRETREND: "Wald chi-square over the pre-treatment ATT(g,t); estimate is the statistic",
}
UNIT, PERIOD, GROUP, OUTCOME = "unit", "period", "first_treated", "outcome"
NEVER = 0  # first_treated of a unit never treated in the panel
# R `did` (and moderndid) refuse a never-treated group smaller than this
ESTIMATOR_MIN_CONTROLS = 5


@dataclass(frozen=True)
class Panel:
    """A balanced unit-period panel; first_treated is 0 for never-treated units."""

    frame: pl.DataFrame  # UNIT (Int64), PERIOD, GROUP, OUTCOME, and label columns

    @property
    def periods(self) -> list[int]:
        return sorted(self.frame.get_column(PERIOD).unique().to_list())

    def group_sizes(self) -> dict[int, int]:
        units = self.frame.select(UNIT, GROUP).unique()
        return dict(units.group_by(GROUP).len().iter_rows())


def _p_value(estimate: float, se: float) -> float | None:
    if se is None or not se > 0:
        return None
    return float(2 * norm.sf(abs(estimate / se)))


def _row(
    estimand: str,
    event_time: int | None,
    estimate: float | None,
    se: float | None,
    n_treated: int,
    n_control: int,
    p_value: float | None = None,
    why: str | None = None,
) -> dict:
    z = norm.ppf(1 - ALPHA / 2)
    interval = estimate is not None and se is not None and estimand != PRETREND
    return {
        "estimand": estimand,
        "event_time": event_time,
        "estimate": estimate,
        "std_error": se,
        "ci_low": estimate - z * se if interval else None,
        "ci_high": estimate + z * se if interval else None,
        "p_value": p_value
        if estimand == PRETREND
        else (_p_value(estimate, se) if estimate is not None and se is not None else None),
        "n_treated_counties": n_treated,
        "n_control_counties": n_control,
        "method": METHOD.format(aggregation=_AGGREGATION[estimand]),
        "suppression": why if estimate is None else None,
    }


def g_base(e: int):
    """The base period of ATT(g, g + e) under R did's varying base."""
    return lambda g: g - 1 if e >= 0 else g + e - 1


def staggered_did(panel: Panel) -> pl.DataFrame:
    """Overall (simple), event-time and pre-trend rows over a balanced panel.

    Groups treated in the first period have no base period and are left out; a
    row's n_treated_counties counts the units of the groups behind it. A row that
    cannot be estimated says why in `suppression`; the publication rules are
    impact_table's.
    """
    periods = panel.periods
    sizes = panel.group_sizes()
    n_control = sizes.get(NEVER, 0)
    groups = {g: n for g, n in sizes.items() if g != NEVER and periods and g > periods[0]}
    frame = panel.frame.filter(pl.col(GROUP).is_in([NEVER, *groups])).select(
        UNIT, PERIOD, GROUP, OUTCOME
    )
    n_treated = sum(groups.values())

    def not_estimable(why: str) -> pl.DataFrame:
        rows = [
            _row(e, None, None, None, n_treated, n_control, why=why) for e in (OVERALL, PRETREND)
        ]
        return pl.DataFrame(rows)

    if panel.frame.is_empty():
        return not_estimable("no county has a value in every year")
    if not groups:
        return not_estimable("no treated county with a base period")
    if n_control < ESTIMATOR_MIN_CONTROLS:
        return not_estimable(
            f"fewer than {ESTIMATOR_MIN_CONTROLS} never-treated counties (the estimator's minimum)"
        )
    from moderndid import aggte, att_gt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moderndid warns where R `did` does; rows say it
        gt = att_gt(
            frame,
            yname=OUTCOME,
            tname=PERIOD,
            idname=UNIT,
            gname=GROUP,
            est_method="reg",
            control_group="nevertreated",
            base_period="varying",
            boot=False,
            cband=False,
            alp=ALPHA,
        )
        # a 2x2 comparison it cannot fit (e.g. controls without any variation) is
        # dropped with a warning: an aggregate over the rest would be silently biased
        if len(gt.att_gt) < len(groups) * (len(periods) - 1) or not all(
            map(math.isfinite, [*gt.att_gt, *gt.se_gt])
        ):
            return not_estimable("the estimator could not fit every ATT(g,t)")
        simple = aggte(gt, type="simple")
        dynamic = aggte(gt, type="dynamic")
    last = periods[-1]
    rows = [
        _row(
            OVERALL,
            None,
            float(simple.overall_att),
            float(simple.overall_se),
            sum(n for g, n in groups.items() if g <= last),
            n_control,
        )
    ]
    for e, att, se in zip(
        dynamic.event_times, dynamic.att_by_event, dynamic.se_by_event, strict=True
    ):
        base = g_base(e)  # R did's varying base: g - 1 after, the period before t before
        behind = sum(n for g, n in groups.items() if g + e in periods and base(g) in periods)
        rows.append(_row(EVENT_TIME, int(e), float(att), float(se), behind, n_control))
    with_pre = sum(n for g, n in groups.items() if g - 2 >= periods[0])
    stat = None if gt.wald_stat is None else float(gt.wald_stat)
    p = None if gt.wald_pvalue is None else float(gt.wald_pvalue)
    rows.append(
        _row(PRETREND, None, stat, None, with_pre, n_control, p, why="no pre-treatment period")
    )
    return pl.DataFrame(rows)


def treatment_years(partnerships: pl.DataFrame, counties: list[str]) -> pl.DataFrame:
    """county_fips, first_treated: the first start_year of any partnership in the
    county, for good (an end_year does not undo it); 0 for counties with none."""
    first = partnerships.group_by("county_fips").agg(pl.col("start_year").min().cast(pl.Int64))
    return (
        pl.DataFrame({"county_fips": counties}, schema={"county_fips": pl.String})
        .join(first, on="county_fips", how="left")
        .select("county_fips", pl.col("start_year").fill_null(NEVER).alias(GROUP))
    )


def county_panel(values: pl.DataFrame, treated: pl.DataFrame, years: list[int]) -> Panel:
    """The balanced county-year panel of one indicator: a county with a missing value
    (suppressed, or a zero denominator) in any year is left out. A year where no
    county has a value (the first year of a 12-month follow-up) is no period of the
    panel. Counties first treated after the last year are controls within the panel."""
    counties = values.filter(pl.col("county_fips") != "ALL")
    has_value = counties.filter(pl.col("value").is_not_null()).get_column("year").unique()
    years = sorted(y for y in years if y in set(has_value.to_list()))
    last = max(years, default=0)
    in_years = counties.filter(pl.col("year").is_in(years))
    complete = (
        in_years.filter(pl.col("value").is_not_null())
        .group_by("county_fips")
        .agg(pl.len().alias("n"))
        .filter(pl.col("n") == len(years))
        .get_column("county_fips")
    )
    frame = (
        in_years.filter(pl.col("county_fips").is_in(complete.implode()))
        .join(treated, on="county_fips")
        .sort("county_fips", "year")
        .select(
            pl.col("county_fips").rank("dense").cast(pl.Int64).alias(UNIT),
            pl.col("year").cast(pl.Int64).alias(PERIOD),
            pl.when(pl.col(GROUP) > last).then(NEVER).otherwise(pl.col(GROUP)).alias(GROUP),
            pl.col("value").cast(pl.Float64).alias(OUTCOME),
            "county_fips",
        )
    )
    return Panel(frame)


def _suppressed(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows resting on fewer than 3 treated or 3 control counties say so, estimates null."""
    too_few = (
        pl.when(pl.col("n_treated_counties") < MIN_COUNTIES)
        .then(pl.lit(f"fewer than {MIN_COUNTIES} treated counties"))
        .when(pl.col("n_control_counties") < MIN_COUNTIES)
        .then(pl.lit(f"fewer than {MIN_COUNTIES} control counties"))
    )
    why = pl.coalesce("suppression", too_few)  # the estimator's own reason is the first
    estimates = ["estimate", "std_error", "ci_low", "ci_high", "p_value"]
    return rows.with_columns(why.alias("suppression")).with_columns(
        pl.when(pl.col("suppression").is_null()).then(pl.col(c)).alias(c) for c in estimates
    )


def _panels(
    values: pl.DataFrame, partnerships: pl.DataFrame, counties: list[str]
) -> Iterator[tuple[str, Panel]]:
    """Each indicator's county panel over the loaded years."""
    years = sorted(values.get_column("year").unique().to_list())
    treated = treatment_years(partnerships, counties)
    for (indicator,), cells in values.group_by("indicator_id", maintain_order=True):
        yield indicator, county_panel(cells, treated, years)


def impact_table(
    values: pl.DataFrame, partnerships: pl.DataFrame, counties: list[str]
) -> pl.DataFrame:
    """PARTNERSHIP_IMPACT rows for every indicator over the years in `values`
    (indicator_id, year, county_fips, value: published cells, or the panel before
    suppression for the restricted twin)."""
    out = [
        staggered_did(panel).with_columns(pl.lit(indicator).alias("indicator_id"))
        for indicator, panel in _panels(values, partnerships, counties)
    ]
    if not out:
        return pl.DataFrame(schema=PARTNERSHIP_IMPACT.schema)
    table = _suppressed(pl.concat(out, how="diagonal_relaxed"))
    return table.select(pl.col(c).cast(t) for c, t in PARTNERSHIP_IMPACT.schema.items()).sort(
        "indicator_id", "estimand", "event_time", nulls_last=False
    )


# ---------------------------------------------------------------- by maturity stage

UNKNOWN_STAGE = "unknown"
STAGE = "value_curve_stage"
BY_STAGE_METHOD = (
    "descriptive, not causal: event-time DiD of treated counties grouped by the Value Curve "
    "stage their partnerships had reached that year, against the never-treated counties' "
    "change over the same window (base g - 1); SE from two independent samples"
)


def county_stages(
    partnerships: pl.DataFrame, maturity: pl.DataFrame, years: list[int]
) -> pl.DataFrame:
    """county_fips, year, value_curve_stage: the most advanced stage of the county's
    partnerships active that year. A suppressed or missing stage is never inferred:
    the county's stage is unknown unless one of them is the top stage."""
    rank = {name: i for i, name in enumerate(STAGE_ORDER)}
    active = (
        partnerships.join(pl.DataFrame({"year": years}, schema={"year": pl.Int64}), how="cross")
        .filter(
            pl.col("start_year") <= pl.col("year"),
            pl.col("end_year").is_null() | (pl.col("end_year") >= pl.col("year")),
        )
        .join(
            maturity.select("partnership_id", "year", STAGE),
            on=["partnership_id", "year"],
            how="left",
        )
        .with_columns(
            pl.col(STAGE).replace_strict(rank, default=None, return_dtype=pl.Int64).alias("r")
        )
    )
    top = len(STAGE_ORDER) - 1
    by_county = active.group_by("county_fips", "year").agg(
        pl.when((pl.col("r") == top).any() | pl.col("r").is_not_null().all()).then(
            pl.col("r").max()
        )
    )
    name = {i: n for n, i in rank.items()}
    stage = pl.col("r").replace_strict(name, default=None, return_dtype=pl.String)
    return by_county.select("county_fips", "year", stage.fill_null(UNKNOWN_STAGE).alias(STAGE))


def impact_by_stage(panel: Panel, stages: pl.DataFrame) -> pl.DataFrame:
    """Event-time effects (e >= 0) of the treated counties grouped by the stage they had
    reached in year g + e, each against the never-treated counties over the same window.

    Each treated county i contributes its change Y(g + e) - Y(g - 1); the estimate is
    the mean of those minus the mean of the controls' changes over the same windows.
    Over all stages together it is R did's event-time ATT (groups weighted by size).
    """
    periods = panel.periods
    frame = panel.frame.filter(
        pl.col(GROUP) != NEVER, pl.col(GROUP) > periods[0] if periods else pl.lit(False)
    )
    level = panel.frame.select(UNIT, PERIOD, OUTCOME)
    base = level.rename({PERIOD: "base", OUTCOME: "y_base"})
    treated = (
        frame.filter(pl.col(PERIOD) >= pl.col(GROUP))
        .with_columns(
            (pl.col(GROUP) - 1).alias("base"), (pl.col(PERIOD) - pl.col(GROUP)).alias("event_time")
        )
        .join(base, on=[UNIT, "base"])
        .join(stages.rename({"year": PERIOD}), on=["county_fips", PERIOD], how="left")
        .select(
            UNIT,
            "base",
            PERIOD,
            "event_time",
            (pl.col(OUTCOME) - pl.col("y_base")).alias("change"),
            pl.col(STAGE).fill_null(UNKNOWN_STAGE),
        )
    )
    controls = panel.frame.filter(pl.col(GROUP) == NEVER).select(UNIT, PERIOD, OUTCOME)
    n_control = controls.get_column(UNIT).n_unique()
    windows = treated.select("base", PERIOD).unique()
    control_change = (
        windows.join(controls, on=PERIOD)
        .join(base, on=[UNIT, "base"])
        .select(
            "base",
            PERIOD,
            pl.col(UNIT).alias("control"),
            (pl.col(OUTCOME) - pl.col("y_base")).alias("control_change"),
        )
    )
    cell = [STAGE, "event_time"]
    # the controls' side: per control, its mean change over the cell's treated windows
    per_control = (
        treated.join(control_change, on=["base", PERIOD])
        .group_by(*cell, "control")
        .agg(pl.col("control_change").mean().alias("w"))
        .group_by(cell)
        .agg(pl.col("w").mean().alias("control_mean"), pl.col("w").var().alias("control_var"))
    )
    rows = (
        treated.group_by(cell)
        .agg(
            pl.col("change").mean().alias("treated_mean"),
            pl.col("change").var().alias("treated_var"),
            pl.col(UNIT).n_unique().alias("n_treated_counties"),
        )
        .join(per_control, on=cell, how="left")
        .with_columns(
            (pl.col("treated_mean") - pl.col("control_mean")).alias("estimate"),
            (
                pl.col("treated_var") / pl.col("n_treated_counties")
                + pl.col("control_var") / n_control
            )
            .sqrt()
            .alias("std_error"),
            pl.lit(n_control).alias("n_control_counties"),
        )
    )
    z = norm.ppf(1 - ALPHA / 2)
    t = (pl.col("estimate") / pl.col("std_error")).abs()
    return rows.select(
        STAGE,
        pl.col("event_time").cast(pl.Int64),
        "estimate",
        "std_error",
        (pl.col("estimate") - z * pl.col("std_error")).alias("ci_low"),
        (pl.col("estimate") + z * pl.col("std_error")).alias("ci_high"),
        pl.when(pl.col("std_error") > 0)
        .then(
            t.map_batches(lambda x: pl.Series(2 * norm.sf(x.to_numpy())), return_dtype=pl.Float64)
        )
        .alias("p_value"),
        "n_treated_counties",
        "n_control_counties",
        pl.lit(BY_STAGE_METHOD).alias("method"),
        pl.lit(None, pl.String).alias("suppression"),
    ).sort(STAGE, "event_time")


def impact_by_stage_table(
    values: pl.DataFrame,
    partnerships: pl.DataFrame,
    counties: list[str],
    maturity: pl.DataFrame,
) -> pl.DataFrame:
    """PARTNERSHIP_IMPACT_BY_STAGE for every indicator, over the same balanced panel of
    published cells as impact_table, with the same publication rule."""
    years = sorted(values.get_column("year").unique().to_list())
    stages = county_stages(partnerships, maturity, years)
    out = [
        impact_by_stage(panel, stages).with_columns(pl.lit(indicator).alias("indicator_id"))
        for indicator, panel in _panels(values, partnerships, counties)
    ]
    schema = PARTNERSHIP_IMPACT_BY_STAGE.schema
    if not out:
        return pl.DataFrame(schema=schema)
    table = _suppressed(pl.concat(out, how="vertical_relaxed"))
    return table.select(pl.col(c).cast(t) for c, t in schema.items()).sort(
        "indicator_id", STAGE, "event_time"
    )
