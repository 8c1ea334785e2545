"""End to end on generated data, checked against its ground truth and DuckDB.

The second opinions here are written independently of outcomes.indicators: plain
SQL over the restricted linked tables and the reference population.
"""

from __future__ import annotations

import json

import duckdb
import polars as pl
import pytest

from outcomes.impact import OVERALL, treatment_years
from outcomes.indicators import release_audit
from outcomes.schema import (
    IMPACT_BEFORE_SUPPRESSION,
    INDICATOR_PANEL,
    LOAD_LEDGER,
    OUTCOME_INDICATORS,
    OUTCOME_INDICATORS_BY_GROUP,
    PARTNERSHIP_IMPACT,
    PARTNERSHIP_IMPACT_BY_STAGE,
    QUARANTINE,
    RECORD_LINKS,
    reference_table,
)
from tests.conftest import Materialized


def sql(m: Materialized) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    wh = m.warehouse.root
    for zone, table in [
        ("restricted", "linked_spells"), ("analytic", "population"), ("analytic", "counties"),
        ("published", "outcome_indicators"),
    ]:  # fmt: skip
        part = any((wh / zone / table).glob("year=*"))
        glob = f"{wh}/{zone}/{table}/" + ("*/*.parquet" if part else "*.parquet")
        con.execute(
            f"create view {table} as select * from read_parquet('{glob}', "
            f"hive_partitioning = {str(part).lower()})"
        )
    return con


# persons with a SNAP spell active in y, each in the county of their latest-starting
# such spell (ties: smallest record_id), over the population of all ages
SNAP_SQL = """
with years as (select distinct year as y from outcome_indicators),
active as (
  select y, person_key, county_fips,
         row_number() over (partition by y, person_key order by start_date desc, record_id) as rk
  from linked_spells, years
  where program = 'SNAP' and start_date <= make_date(y, 12, 31)
    and (end_date is null or end_date >= make_date(y, 1, 1))
),
person as (select y, person_key, county_fips from active where rk = 1),
pop as (select year as y, county_fips, sum(population) as population from population group by all)
select p.y as year, c.county_fips, count(person.person_key) as numerator,
       p.population as denominator
from counties c join pop p using (county_fips)
left join person on person.y = p.y and person.county_fips = c.county_fips
where p.y in (select y from years)
group by all
"""

FOSTER_SQL = """
with years as (select distinct year as y from outcome_indicators),
pop as (select year as y, county_fips, sum(population) as population from population
        where age_group = '0-17' group by all)
select p.y as year, p.county_fips, count(s.record_id) as numerator, p.population as denominator
from pop p
left join linked_spells s on s.program = 'FOSTER_CARE' and year(s.start_date) = p.y
                          and s.county_fips = p.county_fips
where p.y in (select y from years) and p.county_fips in (select county_fips from counties)
group by all
"""


def published(m: Materialized, indicator: str) -> pl.DataFrame:
    return m.warehouse.read(OUTCOME_INDICATORS).filter(pl.col("indicator_id") == indicator)


def with_state_total(by_county: pl.DataFrame) -> pl.DataFrame:
    total = by_county.group_by("year").agg(
        pl.lit("ALL").alias("county_fips"), pl.col("numerator", "denominator").sum()
    )
    return pl.concat([by_county, total.select(by_county.columns)], how="vertical_relaxed")


def expected_suppression(expected: pl.DataFrame, proportion: bool) -> pl.DataFrame:
    """Primary suppression recomputed from the contract's rule (limit 11)."""
    small = pl.col("numerator").is_between(1, 10)
    if proportion:
        small = small | pl.col("denominator").is_between(1, 10)
    return expected.with_columns(small.alias("primary"))


@pytest.mark.parametrize(("indicator", "query"), [
    ("snap_participation_per_1000", SNAP_SQL),
    ("foster_care_entry_rate", FOSTER_SQL),
])  # fmt: skip
def test_rates_match_an_independent_sql_computation(sample: Materialized, indicator, query):
    by_county = sql(sample).sql(query).pl()
    assert by_county["numerator"].sum() > 0
    # before suppression: every county-year equals the SQL count
    panel = sample.warehouse.read(INDICATOR_PANEL).filter(pl.col("indicator_id") == indicator)
    both = panel.join(by_county, on=["year", "county_fips"], suffix="_sql", how="full")
    assert both.height == by_county.height == panel.height
    assert (both["numerator"] == both["numerator_sql"]).all()
    assert (both["denominator"] == both["denominator_sql"]).all()
    # after suppression: shown cells carry the same numbers, hidden cells are the small ones
    expected = expected_suppression(with_state_total(by_county), proportion=False)
    got = published(sample, indicator).join(
        expected, on=["year", "county_fips"], suffix="_sql", how="full", coalesce=True
    )
    assert got.height == expected.height
    shown = got.filter(pl.col("suppression").is_null())
    assert shown.filter(pl.col("primary")).is_empty()
    assert (shown["numerator"] == shown["numerator_sql"]).all()
    assert (shown["denominator"] == shown["denominator_sql"]).all()
    rate = 1000 * shown["numerator_sql"] / shown["denominator_sql"]
    assert (shown["value"] - rate).abs().max() < 1e-9
    primary = got.filter(pl.col("suppression") == "primary")
    assert primary.height == got["primary"].sum()


def test_suppressed_cells_cannot_be_recovered_from_the_state_total(sample: Materialized):
    cells = sample.warehouse.read(OUTCOME_INDICATORS)
    for (indicator, year), group in cells.group_by("indicator_id", "year"):
        counties = group.filter(pl.col("county_fips") != "ALL")
        total = group.filter(pl.col("county_fips") == "ALL").row(0, named=True)
        suppressed = counties.filter(pl.col("suppression").is_not_null())
        if total["suppression"] is None:
            # never exactly one hidden county under a shown total
            assert suppressed.height != 1, (indicator, year)
            if suppressed.height == 0:
                assert counties["numerator"].sum() == total["numerator"]
        hidden = group.filter(pl.col("suppression").is_not_null())
        assert (
            hidden.select(
                pl.all_horizontal(pl.col("numerator", "denominator", "value", "ci_low").is_null())
            )
            .to_series()
            .all()
        )
    assert 0 < cells["suppression"].is_not_null().sum() < cells.height


def test_the_attacker_recovers_nothing_from_the_release(sample: Materialized):
    """The audit of contract section 4 on every published indicator-year, as a data
    steward runs it: from published/ alone."""
    county = sample.warehouse.read(OUTCOME_INDICATORS)
    audit = release_audit(county, sample.warehouse.read(OUTCOME_INDICATORS_BY_GROUP), 11)
    assert audit.passed, audit.findings
    years = county.select("indicator_id", "year").unique()
    assert audit.summary.height == years.height
    assert audit.summary["suppressed"].sum() > audit.summary["primary"].sum() > 0


def test_nothing_lost_against_the_ground_truth(sample: Materialized):
    truth = pl.read_parquet(sample.root / "truth/records.parquet")
    ledger = sample.warehouse.read(LOAD_LEDGER)
    per_file = truth.group_by("file").agg(
        pl.len().alias("rows"),
        pl.col("quarantined").sum().alias("bad"),
        (pl.col("planted") == "duplicate_identical").sum().alias("dups"),
    )
    both = ledger.join(per_file, on="file", how="full", coalesce=True)
    assert both.height == per_file.height == ledger.height
    assert (both["rows_read"] == both["rows"]).all()
    assert (both["rows_quarantined"] == both["bad"]).all()
    assert (both["duplicates_collapsed"] == both["dups"]).all()
    assert (
        both["rows_read"] - both["rows_staged"] - both["rows_quarantined"]
        - both["duplicates_collapsed"] == 0
    ).all()  # fmt: skip
    quarantine = sample.warehouse.read(QUARANTINE).select("file", "line")
    planted = truth.filter(pl.col("quarantined")).select("file", pl.col("line").cast(pl.Int64))
    assert sorted(quarantine.rows()) == sorted(planted.rows())


def test_linkage_never_joins_two_true_persons_by_ssn(sample: Materialized):
    """Deterministic keys may split a person (typos) but must not merge strangers often."""
    truth = pl.read_parquet(sample.root / "truth/records.parquet")
    links = sample.warehouse.read(RECORD_LINKS)
    joined = links.join(
        truth.select("source", "org_id", "record_id", "true_person_id"),
        on=["source", "org_id", "record_id"],
    )
    per_key = joined.group_by("person_key").agg(pl.col("true_person_id").n_unique().alias("n"))
    merged = per_key.filter(pl.col("n") > 1).height
    assert joined.height > 0.9 * links.height
    assert merged / per_key.height < 0.01
    per_person = joined.group_by("true_person_id").agg(pl.col("person_key").n_unique().alias("k"))
    assert (per_person["k"] == 1).mean() > 0.8


def test_planted_effect_is_visible_in_cross_sector_reach(sample: Materialized):
    """A 2x2 difference in differences on the unsuppressed panel recovers the planted sign."""
    effect = json.loads((sample.root / "truth/effect.json").read_text())
    start = pl.DataFrame(
        list(effect["treated_counties"].items()), schema=["county_fips", "start"], orient="row"
    )
    panel = (
        sample.warehouse.read(INDICATOR_PANEL)
        .filter(pl.col("indicator_id") == effect["indicator_id"])
        .join(start, on="county_fips", how="left")
        .with_columns(
            pl.col("start").is_not_null().alias("treated"),
            (pl.col("year") >= pl.col("start").fill_null(2021)).alias("post"),
        )
    )
    means = panel.group_by("treated", "post").agg(
        (pl.col("numerator").sum() / pl.col("denominator").sum()).alias("reach")
    )

    def m(treated: bool, post: bool) -> float:
        return means.filter((pl.col("treated") == treated) & (pl.col("post") == post))["reach"][0]

    did = (m(True, True) - m(True, False)) - (m(False, True) - m(False, False))
    assert did == pytest.approx(effect["effect"], abs=0.06)


def test_impact_recovers_the_planted_effect_before_suppression(sample: Materialized):
    """Callaway-Sant'Anna over the panel before suppression (restricted): the overall
    effect on cross_sector_reach covers the planted one and excludes zero."""
    effect = json.loads((sample.root / "truth/effect.json").read_text())
    wh = sample.warehouse
    counties = wh.read(reference_table("counties")).get_column("county_fips").to_list()
    treated = treatment_years(wh.read(reference_table("partnerships")), counties)
    assert dict(treated.filter(pl.col("first_treated") > 0).iter_rows()) == effect[
        "treated_counties"]  # fmt: skip
    internal = wh.read(IMPACT_BEFORE_SUPPRESSION)
    (row,) = internal.filter(
        (pl.col("indicator_id") == effect["indicator_id"]) & (pl.col("estimand") == OVERALL)
    ).iter_rows(named=True)
    assert 0 < row["ci_low"] < effect["effect"] < row["ci_high"], row
    assert row["n_treated_counties"] == len(effect["treated_counties"])


@pytest.mark.parametrize("table", [PARTNERSHIP_IMPACT, PARTNERSHIP_IMPACT_BY_STAGE])
def test_published_impact_rests_on_enough_published_counties(sample: Materialized, table):
    published = sample.warehouse.read(table)
    assert published.columns == list(table.schema)
    shown = published.filter(pl.col("suppression").is_null())
    assert (shown["n_treated_counties"] >= 3).all() and (shown["n_control_counties"] >= 3).all()
    hidden = published.filter(pl.col("suppression").is_not_null())
    assert hidden.select("estimate", "std_error", "ci_low", "ci_high", "p_value").null_count().row(
        0) == (hidden.height,) * 5  # fmt: skip


def test_every_indicator_has_impact_rows_saying_what_was_estimated(sample: Materialized):
    published = sample.warehouse.read(PARTNERSHIP_IMPACT)
    indicators = set(sample.warehouse.read(OUTCOME_INDICATORS)["indicator_id"])
    assert set(published["indicator_id"]) == indicators
    # at this scale a county has a suppressed cell in some year: the rows say why
    assert published.filter(pl.col("suppression").is_not_null()).height > 0
