"""The impact estimator against R `did`'s documented results, a hand-checked panel
(DuckDB SQL), and the contract's publication rules."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from outcomes.impact import (
    EVENT_TIME,
    GROUP,
    NEVER,
    OUTCOME,
    OVERALL,
    PERIOD,
    PRETREND,
    STAGE,
    UNIT,
    UNKNOWN_STAGE,
    Panel,
    county_panel,
    county_stages,
    impact_by_stage,
    impact_table,
    staggered_did,
    treatment_years,
)
from outcomes.schema import PARTNERSHIP_IMPACT

MPDTA = Path(__file__).parent / "data" / "mpdta.csv"


@pytest.fixture(scope="module")
def mpdta() -> pl.DataFrame:
    raw = pl.read_csv(MPDTA)
    columns = {"countyreal": UNIT, "year": PERIOD, "first.treat": GROUP, "lemp": OUTCOME}
    panel = Panel(raw.select(pl.col(a).alias(b) for a, b in columns.items()))
    return staggered_did(panel)


def test_mpdta_simple_att_and_its_standard_error(mpdta: pl.DataFrame):
    """R: aggte(att_gt(..., control_group = "nevertreated"), type = "simple")."""
    (overall,) = mpdta.filter(pl.col("estimand") == OVERALL).iter_rows(named=True)
    assert round(overall["estimate"], 4) == -0.0400
    assert overall["std_error"] == pytest.approx(0.0120, rel=0.05)
    assert overall["ci_low"] < overall["estimate"] < overall["ci_high"] < 0
    assert (overall["n_treated_counties"], overall["n_control_counties"]) == (191, 309)


def test_mpdta_event_times(mpdta: pl.DataFrame):
    """R: aggte(..., type = "dynamic"), event times 0 to 3."""
    dynamic = mpdta.filter(pl.col("estimand") == EVENT_TIME).sort("event_time")
    effects = dict(zip(dynamic["event_time"], dynamic["estimate"], strict=True))
    assert [round(effects[e], 4) for e in range(4)] == [-0.0199, -0.0510, -0.1373, -0.1008]
    # groups 2004 (20 counties), 2006 (40), 2007 (131) over 2003-2007
    behind = dict(zip(dynamic["event_time"], dynamic["n_treated_counties"], strict=True))
    assert behind == {-3: 131, -2: 171, -1: 171, 0: 191, 1: 60, 2: 20, 3: 20}


def test_mpdta_pretrend_test(mpdta: pl.DataFrame):
    """R did's summary: P-value for pre-test of parallel trends assumption: 0.16812."""
    (pre,) = mpdta.filter(pl.col("estimand") == PRETREND).iter_rows(named=True)
    assert pre["p_value"] == pytest.approx(0.16812, abs=5e-4)
    assert pre["estimate"] > 0 and pre["std_error"] is None


def hand_panel() -> pl.DataFrame:
    """4 counties treated from 2015, 6 never; 2014-2016; outcomes chosen by hand."""
    rows = []
    for unit in range(1, 11):
        treated = unit <= 4
        for period, base in ((2014, 0.20), (2015, 0.22), (2016, 0.25)):
            bump = 0.10 if treated and period >= 2015 else 0.0
            rows.append((unit, period, 2015 if treated else NEVER,
                         base + unit / 100 + bump + (period - 2014) * unit / 1000))  # fmt: skip
    return pl.DataFrame(rows, schema=[UNIT, PERIOD, GROUP, OUTCOME], orient="row")


def test_a_single_group_against_duckdb():
    """With one group, ATT(g,t) is a difference of mean changes from g - 1: SQL checks it."""
    panel = hand_panel()
    got = staggered_did(Panel(panel))
    sql = f"""
        with d as (
          select p.{UNIT}, p.{PERIOD}, p.{GROUP} > 0 as treated, p.{OUTCOME} - b.{OUTCOME} as change
          from panel p join panel b on b.{UNIT} = p.{UNIT} and b.{PERIOD} = 2014
          where p.{PERIOD} > 2014)
        select {PERIOD},
               avg(change) filter (where treated) - avg(change) filter (where not treated)
        from d group by {PERIOD} order by {PERIOD}"""
    con = duckdb.connect()
    con.register("panel", panel.to_arrow())
    att = dict(con.sql(sql).fetchall())
    dynamic = dict(got.filter(pl.col("estimand") == EVENT_TIME).select("event_time", "estimate")
                   .iter_rows())  # fmt: skip
    assert dynamic[0] == pytest.approx(att[2015], abs=1e-12)
    assert dynamic[1] == pytest.approx(att[2016], abs=1e-12)
    overall = got.filter(pl.col("estimand") == OVERALL)["estimate"][0]
    assert overall == pytest.approx((att[2015] + att[2016]) / 2, abs=1e-12)
    assert att[2015] == pytest.approx(0.10 + 2.5 / 1000 - 7.5 / 1000, abs=1e-12)  # by hand


def test_treatment_is_the_first_start_year_for_good():
    partnerships = pl.DataFrame({
        "county_fips": ["01001", "01001", "01003"], "start_year": [2017, 2015, 2016],
        "end_year": [None, 2016, 2016],
    })  # fmt: skip
    got = treatment_years(partnerships, ["01001", "01003", "01005"])
    assert dict(got.iter_rows()) == {"01001": 2015, "01003": 2016, "01005": NEVER}


def indicator_values(values: dict[str, list[float | None]], years: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        [("x", y, c, v) for c, vs in values.items() for y, v in zip(years, vs, strict=True)],
        schema=["indicator_id", "year", "county_fips", "value"], orient="row",
    )  # fmt: skip


def test_a_county_with_a_missing_cell_is_left_out_and_late_starts_are_controls():
    cells = {"A": [0.1, 0.2, 0.3], "B": [0.1, None, 0.3], "C": [0.2, 0.2, 0.2],
             "ALL": [0.4, 0.5, 0.6]}  # fmt: skip
    values = indicator_values(cells, [2014, 2015, 2016])
    treated = pl.DataFrame({"county_fips": ["A", "B", "C"], GROUP: [2015, 2015, 2030]})
    panel = county_panel(values, treated, [2014, 2015, 2016])
    assert panel.frame.height == 6  # A and C, three years each
    assert panel.group_sizes() == {2015: 1, NEVER: 1}


def test_estimates_on_too_few_counties_are_not_published():
    """2 treated counties: every row says why, with its counts; nothing estimated shows."""
    years = [2014, 2015, 2016, 2017]
    counties = [f"0100{i}" for i in range(1, 9)]
    cells = {c: [0.2 + i / 50 + (i * 7 + y) % 5 / 100 + (0.1 if i < 2 and y >= 2016 else 0)
                 for y in years] for i, c in enumerate(counties)}  # fmt: skip
    values = indicator_values(cells, years)
    partnerships = pl.DataFrame({"county_fips": counties[:2], "start_year": [2016, 2016]})
    table = impact_table(values, partnerships, counties)
    assert table.columns == list(PARTNERSHIP_IMPACT.schema)
    assert set(table["estimand"]) == {OVERALL, EVENT_TIME, PRETREND}
    assert table["suppression"].unique().to_list() == ["fewer than 3 treated counties"]
    assert table.select("estimate", "std_error", "ci_low", "ci_high", "p_value").null_count().row(
        0) == (table.height,) * 5  # fmt: skip
    assert (table["n_control_counties"] == 6).all()
    more = pl.DataFrame({"county_fips": counties[:3], "start_year": [2016] * 3})
    published = impact_table(values, more, counties)
    overall = published.filter(pl.col("estimand") == OVERALL).row(0, named=True)
    assert overall["suppression"] is None and overall["n_treated_counties"] == 3
    assert "never-treated controls" in overall["method"]


def test_a_panel_the_estimator_cannot_fit_is_not_estimated():
    """Controls without any variation: moderndid drops every ATT(g,t) it cannot fit;
    no aggregate over what is left is published."""
    years = [2014, 2015, 2016]
    counties = [f"0100{i}" for i in range(1, 10)]
    cells = {c: [0.2 + (0.1 if i < 3 and y >= 2015 else 0) for y in years]
             for i, c in enumerate(counties)}  # fmt: skip
    partnerships = pl.DataFrame({"county_fips": counties[:3], "start_year": [2015] * 3})
    table = impact_table(indicator_values(cells, years), partnerships, counties)
    assert table["suppression"].unique().to_list() == ["the estimator could not fit every ATT(g,t)"]
    assert table["estimate"].null_count() == table.height


def test_county_stage_is_the_most_advanced_and_never_inferred():
    partnerships = pl.DataFrame({
        "partnership_id": ["A", "B", "C", "D", "E", "F", "G", "H"],
        "county_fips": ["01", "01", "02", "02", "03", "03", "03", "04"],
        "start_year": [2015] * 8, "end_year": [None, None, None, None, None, None, 2015, None],
    })  # fmt: skip
    maturity = pl.DataFrame({
        "partnership_id": ["A", "B", "C", "D", "E", "F", "G"], "year": [2016] * 7,
        STAGE: ["integrative", None, "generative", None, "collaborative", "regulative",
                "generative"],
    })  # fmt: skip
    got = county_stages(partnerships, maturity, [2016])
    assert dict(got.select("county_fips", STAGE).iter_rows()) == {
        "01": UNKNOWN_STAGE,  # B's stage is suppressed: it could be above integrative
        "02": "generative",  # nothing is above the top stage
        "03": "collaborative",  # G ended in 2015
        "04": UNKNOWN_STAGE,  # no maturity row
    }


def test_by_stage_adds_up_to_the_event_time_effects(mpdta: pl.DataFrame):
    """Weighted by their counties, the stages' effects are R did's event-time ATTs."""
    raw = pl.read_csv(MPDTA)
    columns = {"countyreal": UNIT, "year": PERIOD, "first.treat": GROUP, "lemp": OUTCOME}
    frame = raw.select(pl.col(a).alias(b) for a, b in columns.items()).with_columns(
        pl.col(UNIT).cast(pl.String).alias("county_fips")
    )
    stages = frame.select(
        "county_fips", pl.col(PERIOD).alias("year"),
        pl.when(pl.col(UNIT) % 3 == 0).then(pl.lit("integrative"))
        .when(pl.col(UNIT) % 3 == 1).then(pl.lit("regulative")).alias(STAGE),
    )  # fmt: skip
    by_stage = impact_by_stage(Panel(frame), stages)
    assert set(by_stage[STAGE]) == {"integrative", "regulative", UNKNOWN_STAGE}
    pooled = by_stage.group_by("event_time").agg(
        ((pl.col("estimate") * pl.col("n_treated_counties")).sum()
         / pl.col("n_treated_counties").sum()).alias("pooled"),
        pl.col("n_treated_counties").sum(),
    )  # fmt: skip
    dynamic = mpdta.filter(pl.col("estimand") == EVENT_TIME, pl.col("event_time") >= 0)
    joined = pooled.join(dynamic, on="event_time", suffix="_did")
    assert joined.height == 4
    for row in joined.iter_rows(named=True):
        assert row["pooled"] == pytest.approx(row["estimate"], abs=1e-10)
        assert row["n_treated_counties"] == row["n_treated_counties_did"]


def test_by_stage_standard_error_against_duckdb():
    """One group, one stage: the variance of two independent means, by SQL."""
    panel = hand_panel().with_columns(pl.col(UNIT).cast(pl.String).alias("county_fips"))
    stages = panel.select("county_fips", pl.col(PERIOD).alias("year"),
                          pl.lit("collaborative").alias(STAGE))  # fmt: skip
    got = impact_by_stage(Panel(panel), stages).filter(pl.col("event_time") == 1).row(0, named=True)
    con = duckdb.connect()
    con.register("panel", panel.to_arrow())
    est, se = con.sql(f"""
        with d as (select p.{GROUP} > 0 as treated, p.{OUTCOME} - b.{OUTCOME} as change
                   from panel p join panel b on b.{UNIT} = p.{UNIT} and b.{PERIOD} = 2014
                   where p.{PERIOD} = 2016)
        select avg(change) filter (where treated) - avg(change) filter (where not treated),
               sqrt(var_samp(change) filter (where treated) / 4
                    + var_samp(change) filter (where not treated) / 6) from d""").fetchall()[0]
    assert got["estimate"] == pytest.approx(est, abs=1e-12)
    assert got["std_error"] == pytest.approx(se, abs=1e-12)
    assert (got["n_treated_counties"], got["n_control_counties"]) == (4, 6)


def test_a_year_without_any_value_is_no_period_of_the_panel():
    """A 12-month follow-up has no value anywhere in the first year: the year goes,
    not every county."""
    cells = {"A": [None, 0.2, 0.3], "B": [None, 0.1, None], "C": [None, 0.2, 0.25]}
    values = indicator_values(cells, [2014, 2015, 2016])
    treated = pl.DataFrame({"county_fips": ["A", "B", "C"], GROUP: [2016, 0, 0]})
    panel = county_panel(values, treated, [2014, 2015, 2016])
    assert panel.periods == [2015, 2016]
    assert panel.frame.height == 4  # A and C; B misses 2016
    empty = county_panel(indicator_values({"A": [None, None, None]}, [2014, 2015, 2016]),
                         treated, [2014, 2015, 2016])  # fmt: skip
    assert empty.frame.is_empty()
