"""One year of every indicator recomputed in DuckDB SQL, beside what the pipeline wrote.

Why this exists: `outcomes.indicators` is one Polars reading of contract section 4 (and
of the project's readings in section 6). This module is a second, independent reading:
each definition is written out again in plain SQL over the Parquet tables of the earlier
stages (restricted `linked_spells`, `linked_client_surveys`, `staged_services`,
`staged_client_surveys`; analytic `quarterly_wages`, `population`, `counties`,
`load_ledger`), with the intervals from scipy directly (never `outcomes.stats`). It then
checks, for the middle loaded year:

- restricted `indicator_panel` (every county, before suppression): counts and value;
- published `outcome_indicators` and `outcome_indicators_by_group` rows that are not
  suppressed, ALL included: counts equal, value and 95% interval within 1e-12;
- the breakdowns before suppression (`outcomes.indicators.group_cells`, the pipeline's
  own function, on the inputs the asset reads), since suppression hides most of them;
- the row grids and the provisional flag.

Two warehouses are checked. `sample` is the session fixture as Dagster wrote it. The
generated data never puts a TANF return 0, 1, 365 or 366 days after an end, nor two
records of a person on the same date, so `edges` copies its inputs, adds hand-made
persons on every boundary of the rules (see `edge_spells`), runs the indicator stage
of that year over the copy as the asset does, and is checked the same way, plus each
hand-made person's county, hit and groups against what the contract says.

Readings the SQL follows (contract section 4 unless marked 6):

- active in y: starts on or before 31 Dec y, and no end or an end on or after 1 Jan y;
- one county per person: the denominator record with the latest start (exit, end or
  survey date where the indicator is about those), ties to the smallest record_id
  (survey ties to the smallest response_id, 6);
- housing_stability_12m: the county of the client's latest enrollment with the surveying
  partner starting on or before the survey date, else their earliest (recomputed here
  from the staged rows, not taken from `linked_client_surveys.county_fips`);
- rates: the population of exactly year y; a county without one has 0/0 and ALL counts
  its numerator out (6); ALL is the sum of the counties; 0 denominator, value null;
- groups (6): sex and birth year of the denominator record, else the person's most
  frequent value over their spells (ties to the smallest), else UNKNOWN; age band by
  y - birth year, below 0 in 0-17;
- the years read are those the `indicators` asset declares for year y (its partition
  mappings, read by `assets.io.read_inputs`):
  spells starting up to y + 1, wages of y and y + 1, surveys of y.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from scipy.stats import chi2, gamma, norm

from assets.indicators import indicator_inputs
from outcomes.indicators import group_cells, indicator_tables
from outcomes.integrate import linked_surveys
from outcomes.schema import CLIENT_SURVEYS as SURVEY_SOURCE
from outcomes.schema import (
    INDICATOR_PANEL,
    LINKED_SPELLS,
    LINKED_SURVEYS,
    OUTCOME_INDICATORS,
    OUTCOME_INDICATORS_BY_GROUP,
    QUARTERLY_WAGES,
    SERVICES,
    Table,
    reference_table,
    staged_table,
)
from outcomes.warehouse import Warehouse, conform
from tests.conftest import Materialized

TOLERANCE = 1e-12
Z = float(norm.ppf(0.975))  # the 95% two-sided normal quantile of the Wilson interval
ALPHA = 0.05
PER_1000 = 1000.0
ALL = "ALL"
SEXES = ("F", "M", "X", "U")
AGE_BANDS = ("0-17", "18-24", "25-44", "45-64", "65+")
GROUP_BYS = ("sex", "age_band")

# (zone, table, the Hive years of it that the indicators of year {y} read; None: no years)
INPUTS: tuple[tuple[str, str, str | None], ...] = (
    ("restricted", "linked_spells", "year <= {y} + 1"),
    ("restricted", "linked_client_surveys", "year = {y}"),
    ("restricted", "staged_services", "year <= {y}"),
    ("restricted", "staged_client_surveys", "year = {y}"),
    ("analytic", "quarterly_wages", "year in ({y}, {y} + 1)"),
    ("analytic", "load_ledger", "true"),
    ("analytic", "population", None),
    ("analytic", "counties", None),
)
OUTPUTS: tuple[tuple[str, str, str | None], ...] = (
    ("restricted", "indicator_panel", "year = {y}"),
    ("published", "outcome_indicators", "year = {y}"),
    ("published", "outcome_indicators_by_group", "year = {y}"),
)

MACROS = """
create macro active_in(s, e, y) as
    s <= make_date(y, 12, 31) and (e is null or e >= make_date(y, 1, 1));
create macro age_band(age) as case
    when age is null then 'UNKNOWN' when age < 18 then '0-17' when age < 25 then '18-24'
    when age < 45 then '25-44' when age < 65 then '45-64' else '65+' end;
"""

# ---------------------------------------------------------------- one SQL per indicator
# Each selects the indicator's units for year $y: person_key, county_fips, hit, sex,
# birth_year. Proportions: one row per denominator person, hit = in the numerator.
# Rates: one row per numerator unit (the denominator is the population).

CROSS_SECTOR_REACH = """
with denominator_spells as (
    select * from linked_spells
    where sector = 'PUBLIC' and program in ('SNAP', 'TANF', 'MEDICAID')
      and active_in(start_date, end_date, $y)
),
persons as (
    select * from denominator_spells
    qualify row_number() over (partition by person_key order by start_date desc, record_id) = 1
),
served as (
    select distinct person_key from linked_spells
    where sector = 'NONPROFIT' and active_in(start_date, end_date, $y)
)
select p.person_key, p.county_fips, s.person_key is not null as hit, p.sex, p.birth_year
from persons p left join served s on s.person_key = p.person_key
"""

FOSTER_CARE_ENTRY_RATE = """
select person_key, county_fips, true as hit, sex, birth_year
from linked_spells
where sector = 'PUBLIC' and program = 'FOSTER_CARE' and year(start_date) = $y
"""

SNAP_PARTICIPATION = """
select person_key, county_fips, true as hit, sex, birth_year
from linked_spells
where sector = 'PUBLIC' and program = 'SNAP' and active_in(start_date, end_date, $y)
qualify row_number() over (partition by person_key order by start_date desc, record_id) = 1
"""

EMPLOYMENT_Q2_AFTER_EXIT = """
with exits as (
    select *, year(end_date) * 4 + quarter(end_date) - 1 + 2 as target_quarter
    from linked_spells
    where sector = 'NONPROFIT' and program = 'WORKFORCE' and year(end_date) = $y
    qualify row_number() over (partition by person_key order by end_date desc, record_id) = 1
),
paid as (
    select distinct person_key, year * 4 + quarter - 1 as quarter_index
    from quarterly_wages where wages > 0
)
select e.person_key, e.county_fips, p.person_key is not null as hit, e.sex, e.birth_year
from exits e
left join paid p on p.person_key = e.person_key and p.quarter_index = e.target_quarter
"""

TANF_RETURN_12M = """
with tanf as (
    select * from linked_spells where sector = 'PUBLIC' and program = 'TANF'
),
ends as (
    select * from tanf where year(end_date) = $y
    qualify row_number() over (partition by person_key order by end_date desc, record_id) = 1
)
select e.person_key, e.county_fips,
       exists (
           select 1 from tanf t
           where t.person_key = e.person_key
             and date_diff('day', e.end_date, t.start_date) between 1 and 365
       ) as hit,
       e.sex, e.birth_year
from ends e
"""

HOUSING_STABILITY_12M = """
with answered as (
    select * from linked_client_surveys
    where wave = 'FOLLOWUP_12M' and year(survey_date) = $y and housing_stable is not null
    qualify row_number() over (partition by person_key order by survey_date desc, response_id) = 1
),
enrollments as (  -- the client's enrollments with the partner that surveyed them
    select a.person_key, s.county_fips, s.enroll_date, s.record_id,
           s.enroll_date <= a.survey_date as before_survey
    from answered a
    join staged_client_surveys c on c.org_id = a.org_id and c.response_id = a.response_id
    join staged_services s on s.org_id = c.org_id and s.client_id = c.client_id
),
county as (  -- the latest on or before the survey date, else the earliest
    select * from enrollments
    qualify row_number() over (
        partition by person_key
        order by before_survey desc,
                 case when before_survey then enroll_date end desc,
                 enroll_date, record_id
    ) = 1
)
select a.person_key, c.county_fips, a.housing_stable as hit,
       null::varchar as sex, null::bigint as birth_year
from answered a left join county c on c.person_key = a.person_key
"""


@dataclass(frozen=True)
class Definition:
    units_sql: str
    kind: str  # proportion or rate
    population_ages: tuple[str, ...] = ()  # rates only


DEFINITIONS: dict[str, Definition] = {
    "cross_sector_reach": Definition(CROSS_SECTOR_REACH, "proportion"),
    "foster_care_entry_rate": Definition(FOSTER_CARE_ENTRY_RATE, "rate", ("0-17",)),
    "snap_participation_per_1000": Definition(SNAP_PARTICIPATION, "rate", ("0-17", "18-64", "65+")),
    "employment_q2_after_exit": Definition(EMPLOYMENT_Q2_AFTER_EXIT, "proportion"),
    "tanf_return_12m": Definition(TANF_RETURN_12M, "proportion"),
    "housing_stability_12m": Definition(HOUSING_STABILITY_12M, "proportion"),
}
PROPORTIONS = [i for i, d in DEFINITIONS.items() if d.kind == "proportion"]

# ---------------------------------------------------------------- cells from units
# {units} and {groups} name one indicator's temp tables of units and group units.

PROPORTION_CELLS = """
select c.county_fips, count(*) filter (where u.hit) as numerator,
       count(u.county_fips) as denominator
from counties c left join {units} u on u.county_fips = c.county_fips
group by c.county_fips
"""

RATE_CELLS = """
with pop as (
    select county_fips, sum(population) as population from population
    where year = $y and age_group in (select unnest($ages::varchar[]))
    group by county_fips
),
counts as (select county_fips, count(*) as n from {units} group by county_fips)
select c.county_fips,
       case when coalesce(p.population, 0) = 0 then 0 else coalesce(n.n, 0) end as numerator,
       coalesce(p.population, 0) as denominator
from counties c
left join pop p on p.county_fips = c.county_fips
left join counts n on n.county_fips = c.county_fips
"""

# each person's most frequent sex and birth year over all their spells, ties to the smallest
FALLBACK = """
create temp table fallback as
with modal_sex as (
    select person_key, sex from linked_spells where sex is not null
    group by person_key, sex
    qualify row_number() over (partition by person_key order by count(*) desc, sex) = 1
),
modal_birth_year as (
    select person_key, birth_year from linked_spells where birth_year is not null
    group by person_key, birth_year
    qualify row_number() over (partition by person_key order by count(*) desc, birth_year) = 1
)
select person_key, s.sex as modal_sex, b.birth_year as modal_birth_year
from modal_sex s full join modal_birth_year b using (person_key)
"""

GROUP_UNITS = """
with demographics as (
    select u.person_key, u.county_fips, u.hit,
           coalesce(u.sex, f.modal_sex, 'UNKNOWN') as sex,
           age_band($y - coalesce(u.birth_year, f.modal_birth_year)) as age_band
    from {units} u left join fallback f on f.person_key = u.person_key
)
select person_key, county_fips, hit, 'sex' as group_by, sex as group_value
from demographics
union all
select person_key, county_fips, hit, 'age_band' as group_by, age_band as group_value
from demographics
"""

GROUP_CELLS = """
with values_ as (
    select distinct group_by, group_value from {groups}
    union select * from (values {fixed}) v(group_by, group_value)
)
select v.group_by, v.group_value, c.county_fips,
       count(*) filter (where g.hit) as numerator, count(g.county_fips) as denominator
from values_ v cross join counties c
left join {groups} g
       on g.group_by = v.group_by and g.group_value = v.group_value
      and g.county_fips = c.county_fips
group by all
"""

PROVISIONAL = """
select
    ($y not in (select year from load_ledger where source = 'wages')
     or $y + 1 not in (select year from load_ledger where source = 'wages'))
        as employment_q2_after_exit,
    $y + 1 not in (select year from load_ledger where source = 'spells') as tanf_return_12m
"""

# ---------------------------------------------------------------- values and intervals

Key = tuple[str, str | None, str | None, str]  # indicator_id, group_by, group_value, county


@dataclass(frozen=True)
class Cell:
    numerator: int
    denominator: int
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


def wilson(x: int, n: int) -> tuple[float, float]:
    """Wilson score 95% interval, written as (x + z²/2 ± z √(x(n-x)/n + z²/4)) / (n + z²)."""
    z2 = Z * Z
    centre = (x + z2 / 2) / (n + z2)
    half = Z * math.sqrt(x * (n - x) / n + z2 / 4) / (n + z2)
    return max(0.0, centre - half), min(1.0, centre + half)


def garwood(x: int) -> tuple[float, float]:
    """Exact (Garwood) 95% Poisson interval for a count, from chi-square quantiles."""
    low = float(chi2.ppf(ALPHA / 2, 2 * x)) / 2 if x > 0 else 0.0
    return low, float(chi2.ppf(1 - ALPHA / 2, 2 * x + 2)) / 2


def cell(kind: str, numerator: int, denominator: int) -> Cell:
    if denominator == 0:
        return Cell(0, 0)
    if kind == "proportion":
        low, high = wilson(numerator, denominator)
        return Cell(numerator, denominator, numerator / denominator, low, high)
    scale = PER_1000 / denominator
    low, high = garwood(numerator)
    return Cell(numerator, denominator, numerator * scale, low * scale, high * scale)


def with_all(kind: str, rows: Iterable[tuple[str, int, int]]) -> dict[str, Cell]:
    """County cells plus ALL, the sum of the counties (after the zero-denominator rule)."""
    counts = {county: (n, d) for county, n, d in rows}
    counts[ALL] = (sum(n for n, _ in counts.values()), sum(d for _, d in counts.values()))
    return {county: cell(kind, n, d) for county, (n, d) in counts.items()}


# ---------------------------------------------------------------- the recomputation


@dataclass
class Recomputed:
    scenario: str
    year: int
    counties: list[str]
    county_cells: dict[Key, Cell]
    group_cells: dict[Key, Cell]
    provisional: dict[str, bool]
    con: duckdb.DuckDBPyConnection  # the inputs, the outputs, and units_/groups_<indicator>

    def rows(self, table: str, columns: str) -> list[tuple]:
        return self.con.execute(f"select {columns} from {table}").fetchall()


def connect(root: Path, year: int) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with one view per table, restricted to the years year y reads."""
    con = duckdb.connect()
    for zone, table, years in (*INPUTS, *OUTPUTS):
        folder = root / zone / table
        if years is None:
            source = f"read_parquet('{folder}/data.parquet')"
            con.execute(f"create view {table} as select * from {source}")
            continue
        source = f"read_parquet('{folder}/year=*/*.parquet', hive_partitioning = true)"
        con.execute(f"create view {table} as select * from {source} where {years.format(y=year)}")
    con.execute(MACROS)
    return con


def middle_year(root: Path) -> int:
    """A loaded year in the middle of the published ones, so y - 1 and y + 1 are loaded."""
    years = sorted(int(p.name.removeprefix("year=")) for p in (
        root / "published" / "outcome_indicators"
    ).glob("year=*"))  # fmt: skip
    assert len(years) >= 3, years
    return years[len(years) // 2]


def recompute(scenario: str, root: Path, year: int) -> Recomputed:
    """Every indicator's county and group cells of `year`, in SQL, from `root`'s tables."""
    con = connect(root, year)
    params = {"y": year}
    counties = [r[0] for r in con.execute("select county_fips from counties order by 1").fetchall()]
    con.execute(FALLBACK)
    fixed = ", ".join(
        f"('{g}', '{v}')" for g, values in zip(GROUP_BYS, (SEXES, AGE_BANDS), strict=True)
        for v in values
    )  # fmt: skip
    county_cells: dict[Key, Cell] = {}
    groups: dict[Key, Cell] = {}
    for indicator, d in DEFINITIONS.items():
        units, grouped = f"units_{indicator}", f"groups_{indicator}"
        con.execute(f"create temp table {units} as {d.units_sql}", params)
        if d.kind == "rate":
            rate = {**params, "ages": list(d.population_ages)}
            rows = con.execute(RATE_CELLS.format(units=units), rate).fetchall()
        else:
            rows = con.execute(PROPORTION_CELLS.format(units=units)).fetchall()
        for county, c in with_all(d.kind, rows).items():
            county_cells[(indicator, None, None, county)] = c
        if d.kind != "proportion":
            continue
        con.execute(f"create temp table {grouped} as {GROUP_UNITS.format(units=units)}", params)
        by_value: dict[tuple[str, str], list[tuple[str, int, int]]] = {}
        cells_sql = GROUP_CELLS.format(groups=grouped, fixed=fixed)
        for g, v, county, n, den in con.execute(cells_sql).fetchall():
            by_value.setdefault((g, v), []).append((county, n, den))
        for (g, v), value_rows in by_value.items():
            for county, c in with_all(d.kind, value_rows).items():
                groups[(indicator, g, v, county)] = c
    flags = con.execute(PROVISIONAL, params).fetchone()
    assert flags is not None
    provisional = dict.fromkeys(DEFINITIONS, False)
    provisional.update(employment_q2_after_exit=flags[0], tanf_return_12m=flags[1])
    return Recomputed(scenario, year, counties, county_cells, groups, provisional, con)


# ---------------------------------------------------------------- the pipeline's side


def run_indicator_stage(root: Path, year: int, min_cell: int) -> None:
    """The indicators asset of one year over `root`, its three tables written as it does."""
    wh = Warehouse(root)
    tables = indicator_tables(year, *indicator_inputs(wh, year), min_cell)
    wh.write(INDICATOR_PANEL, tables.indicator_panel, year)
    wh.write(OUTCOME_INDICATORS, tables.outcome_indicators, year)
    wh.write(OUTCOME_INDICATORS_BY_GROUP, tables.outcome_indicators_by_group, year)


def pipeline_group_cells(root: Path, year: int) -> pl.DataFrame:
    """The breakdowns before suppression: `outcomes.indicators.group_cells` on the asset's
    inputs (no table holds them; the published ones are mostly suppressed)."""
    return group_cells(year, *indicator_inputs(Warehouse(root), year))


# ---------------------------------------------------------------- hand-made edge cases

EDGE_PUBLIC, EDGE_PARTNER = "edge_agency", "edge_partner"
AGES = (-1, 0, 17, 18, 24, 25, 44, 45, 64, 65)  # on both sides of every age-band bound
Spell = tuple[str, str, str, dt.date, dt.date | None, str, str | None, int | None, str]


def edge_spells(y: int, c: list[str]) -> list[Spell]:
    """(person, sector, program, start, end, county, sex, birth year, record id) of persons
    on the boundaries of the rules, in counties c[0] to c[3]; c[3] has no population in y."""

    def d(month: int, day: int, years: int = 0) -> dt.date:
        return dt.date(y + years, month, day)

    days = dt.timedelta
    pub, npo = "PUBLIC", "NONPROFIT"
    return [
        # county rule: same start in two counties -> the smaller record_id; latest start
        ("edge-tie", pub, "SNAP", d(2, 1), None, c[0], "F", 1980, "EDGE-001"),
        ("edge-tie", pub, "SNAP", d(2, 1), None, c[1], "F", 1980, "EDGE-002"),
        ("edge-tie", npo, "HOUSING", d(3, 1), None, c[1], "F", 1980, "EDGE-003"),
        ("edge-latest", pub, "SNAP", d(1, 10, -1), None, c[0], "M", 1975, "EDGE-004"),
        ("edge-latest", pub, "SNAP", d(5, 1), None, c[1], "M", 1975, "EDGE-005"),
        # active in y: an end on 1 Jan y and a start on 31 Dec y are in; 31 Dec y-1 is out
        ("edge-jan1", pub, "SNAP", d(6, 1, -1), d(1, 1), c[2], "F", 1970, "EDGE-006"),
        ("edge-dec31", pub, "SNAP", d(12, 31), None, c[2], "M", 1971, "EDGE-007"),
        ("edge-gone", pub, "SNAP", d(3, 1, -1), d(12, 31, -1), c[2], "F", 1972, "EDGE-008"),
        # TANF: new spells 0, 1, 365 and 366 days after the end (only 1 and 365 count)
        ("edge-t0", pub, "TANF", d(1, 5), d(3, 10), c[0], "F", 1985, "EDGE-010"),
        ("edge-t0", pub, "TANF", d(3, 10), None, c[0], "F", 1985, "EDGE-011"),
        ("edge-t1", pub, "TANF", d(1, 5), d(4, 1), c[0], "M", 1986, "EDGE-012"),
        ("edge-t1", pub, "TANF", d(4, 2), None, c[0], "M", 1986, "EDGE-013"),
        ("edge-t365", pub, "TANF", d(1, 5), d(5, 1), c[0], "F", 1987, "EDGE-014"),
        ("edge-t365", pub, "TANF", d(5, 1) + days(365), None, c[0], "F", 1987, "EDGE-015"),
        ("edge-t366", pub, "TANF", d(1, 5), d(6, 1), c[0], "M", 1988, "EDGE-016"),
        ("edge-t366", pub, "TANF", d(6, 1) + days(366), None, c[0], "M", 1988, "EDGE-017"),
        # TANF: same end in two counties; the latest end (no return) beats an earlier one
        ("edge-ttie", pub, "TANF", d(2, 1), d(7, 1), c[0], "F", 1989, "EDGE-018"),
        ("edge-ttie", pub, "TANF", d(3, 1), d(7, 1), c[1], "F", 1989, "EDGE-019"),
        ("edge-tlate", pub, "TANF", d(1, 1), d(2, 1), c[0], "M", 1984, "EDGE-020"),
        ("edge-tlate", pub, "TANF", d(3, 1), d(9, 30), c[1], "M", 1984, "EDGE-021"),
        # workforce exits (wages in `edge_wages`): a tie, the latest, 31 Dec, zero wages
        ("edge-wtie", npo, "WORKFORCE", d(1, 10), d(8, 15), c[0], "F", 1990, "EDGE-030"),
        ("edge-wtie", npo, "WORKFORCE", d(2, 10), d(8, 15), c[1], "F", 1990, "EDGE-031"),
        ("edge-wlate", npo, "WORKFORCE", d(1, 3), d(3, 31), c[0], "M", 1991, "EDGE-032"),
        ("edge-wlate", npo, "WORKFORCE", d(4, 1), d(10, 5), c[1], "M", 1991, "EDGE-033"),
        ("edge-wdec31", npo, "WORKFORCE", d(6, 1), d(12, 31), c[2], "F", 1992, "EDGE-034"),
        ("edge-wzero", npo, "WORKFORCE", d(1, 2), d(2, 15), c[2], "M", 1993, "EDGE-035"),
        # foster care counts spells, not children; c[3] has no population row in y
        ("edge-fc", pub, "FOSTER_CARE", d(2, 1), d(5, 1), c[0], "F", y - 5, "EDGE-040"),
        ("edge-fc", pub, "FOSTER_CARE", d(9, 1), None, c[0], "F", y - 5, "EDGE-041"),
        ("edge-fc4", pub, "FOSTER_CARE", d(4, 1), None, c[3], "M", y - 7, "EDGE-042"),
        ("edge-snap4", pub, "SNAP", d(4, 1), None, c[3], "M", 1960, "EDGE-043"),
        # the surveyed clients' enrollments (`edge_surveys`)
        ("edge-h1", npo, "HOUSING", d(1, 15, -1), d(2, 1, -1), c[0], "F", 1979, "EDGE-050"),
        ("edge-h1", npo, "HOUSING", d(3, 1), d(4, 1), c[1], "F", 1979, "EDGE-051"),
        ("edge-h1", npo, "HOUSING", d(8, 1), d(9, 1), c[2], "F", 1979, "EDGE-052"),
        ("edge-h2", npo, "HOUSING", d(9, 1), d(10, 1), c[1], "M", 1978, "EDGE-053"),
        ("edge-h2", npo, "HOUSING", d(11, 1), d(11, 2), c[2], "M", 1978, "EDGE-054"),
        ("edge-h3", npo, "HOUSING", d(5, 1, -1), d(6, 1, -1), c[0], "X", 1977, "EDGE-055"),
        # groups: no own sex or birth year -> modal (ties to the smallest), else UNKNOWN;
        # own values beat modal ones
        ("edge-fb1", npo, "WORKFORCE", d(1, 5), d(5, 5), c[2], None, None, "EDGE-060"),
        ("edge-fb1", npo, "HOUSING", d(1, 1, -1), d(2, 1, -1), c[2], "M", y - 24, "EDGE-061"),
        ("edge-fb1", npo, "FOOD", d(1, 1, -2), d(2, 1, -2), c[2], "F", y - 25, "EDGE-062"),
        ("edge-fb2", pub, "MEDICAID", d(2, 1), None, c[2], "M", y - 21, "EDGE-063"),
        ("edge-fb2", pub, "MEDICAID", d(1, 1, -2), d(6, 1, -2), c[2], "F", y - 61, "EDGE-064"),
        ("edge-fb2", pub, "SNAP", d(1, 1, -2), d(6, 1, -2), c[2], "F", y - 61, "EDGE-065"),
        ("edge-fb3", npo, "WORKFORCE", d(1, 6), d(6, 6), c[2], None, None, "EDGE-066"),
        *(
            (f"edge-age{age}", pub, "MEDICAID", d(1, 15), None, c[2], SEXES[i % 4], y - age,
             f"EDGE-1{i:02d}")
            for i, age in enumerate(AGES)
        ),
    ]  # fmt: skip


def edge_wages(y: int) -> list[tuple[str, int, int, float]]:
    """(person, year, quarter, wages): paid or not in the 2nd quarter after each exit."""
    return [
        ("edge-wtie", y + 1, 1, 500.0),  # exit Q3 y -> Q1 y+1
        ("edge-wlate", y, 3, 800.0),  # paid after the earlier exit (Q1), not the latest (Q4)
        ("edge-wdec31", y + 1, 2, 100.0),  # exit Q4 y -> Q2 y+1
        ("edge-wzero", y, 2, 300.0),  # exit Q1 y: paid in Q2 and Q4, zero in Q3
        ("edge-wzero", y, 3, 0.0),
        ("edge-wzero", y, 4, 300.0),
    ]


def edge_surveys(y: int) -> list[tuple[str, str, dt.date, str, bool | None]]:
    """(client, response id, date, wave, housing_stable) of the partner EDGE_PARTNER."""
    return [
        ("edge-h1", "ER-1", dt.date(y, 6, 1), "FOLLOWUP_12M", True),  # county of EDGE-051
        ("edge-h2", "ER-2", dt.date(y, 6, 15), "FOLLOWUP_12M", False),  # earliest: EDGE-053
        ("edge-h3", "ER-3", dt.date(y, 7, 1), "FOLLOWUP_12M", True),  # tie: smaller id
        ("edge-h3", "ER-4", dt.date(y, 7, 1), "FOLLOWUP_12M", False),
        ("edge-h3", "ER-5", dt.date(y, 2, 1), "FOLLOWUP_12M", False),  # earlier
        ("edge-h3", "ER-6", dt.date(y, 12, 1), "FOLLOWUP_12M", None),  # housing not given
        ("edge-h3", "ER-7", dt.date(y, 12, 15), "BASELINE", False),  # another wave
    ]


# what the contract says of each hand-made person: indicator -> person -> (county, hit);
# counties as indexes into the sorted reference counties
EDGE_UNITS: dict[str, dict[str, tuple[int, bool]]] = {
    "cross_sector_reach": {
        "edge-tie": (0, True), "edge-latest": (1, False), "edge-jan1": (2, False),
        "edge-dec31": (2, False), "edge-t0": (0, False), "edge-fb2": (2, False),
        "edge-snap4": (3, False),
    },
    "snap_participation_per_1000": {
        "edge-tie": (0, True), "edge-latest": (1, True), "edge-jan1": (2, True),
        "edge-dec31": (2, True), "edge-snap4": (3, True),
    },
    "tanf_return_12m": {
        "edge-t0": (0, False), "edge-t1": (0, True), "edge-t365": (0, True),
        "edge-t366": (0, False), "edge-ttie": (0, False), "edge-tlate": (1, False),
    },
    "employment_q2_after_exit": {
        "edge-wtie": (0, True), "edge-wlate": (1, False), "edge-wdec31": (2, True),
        "edge-wzero": (2, False), "edge-fb1": (2, False), "edge-fb3": (2, False),
    },
    "housing_stability_12m": {"edge-h1": (1, True), "edge-h2": (1, False), "edge-h3": (0, True)},
}  # fmt: skip
EDGE_ABSENT = {"snap_participation_per_1000": ["edge-gone"], "cross_sector_reach": ["edge-gone"]}
EDGE_FOSTER_ENTRIES = {("edge-fc", 0): 2, ("edge-fc4", 3): 1}
EDGE_GROUPS = {  # person -> (sex, age band)
    "edge-fb1": ("F", "25-44"), "edge-fb2": ("M", "18-24"), "edge-fb3": ("UNKNOWN", "UNKNOWN"),
    **{f"edge-age{a}": (SEXES[i % 4], b) for i, (a, b) in enumerate(zip(AGES, (
        "0-17", "0-17", "0-17", "18-24", "18-24", "25-44", "25-44", "45-64", "45-64", "65+"
    ), strict=True))},
}  # fmt: skip


def padded(rows: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Rows in the table's schema, the columns they lack null (names, SSNs, ...)."""
    missing = [pl.lit(None).alias(col) for col in table.schema if col not in rows.columns]
    return conform(rows.with_columns(missing), table)


def append(wh: Warehouse, table: Table, rows: pl.DataFrame) -> None:
    """Add rows to a year-partitioned table, one partition at a time."""
    for (year,), part in padded(rows, table).partition_by("year", as_dict=True).items():
        wh.write(table, pl.concat([wh.read(table, [int(year)]), part]), int(year))


def with_edge_cases(src: Path, dst: Path, year: int, min_cell: int) -> None:
    """Copy the indicators' inputs from `src`, add the hand-made persons, run the stage."""
    for zone, table, _ in INPUTS:
        shutil.copytree(src / zone / table, dst / zone / table)
    wh = Warehouse(dst)
    c = sorted(wh.read(reference_table("counties"))["county_fips"].to_list())
    columns = ["person_key", "sector", "program", "start_date", "end_date", "county_fips",
               "sex", "birth_year", "record_id"]  # fmt: skip
    public = pl.col("sector") == "PUBLIC"
    spells = pl.DataFrame(edge_spells(year, c), columns, orient="row").with_columns(
        org_id=pl.when(public).then(pl.lit(EDGE_PUBLIC)).otherwise(pl.lit(EDGE_PARTNER)),
        source=pl.when(public).then(pl.lit("spells")).otherwise(pl.lit("services")),
        year=pl.col("start_date").dt.year(),
    )
    append(wh, LINKED_SPELLS, spells)
    wages = pl.DataFrame(edge_wages(year), ["person_key", "year", "quarter", "wages"], orient="row")
    append(wh, QUARTERLY_WAGES, wages.with_columns(employer_id=pl.lit("EDGE-EMPLOYER")))
    # the surveyed clients (client_id = person key): staged enrollments and responses, and
    # the linked responses the integration stage makes of them (their county included)
    staged_services, staged_surveys = staged_table(SERVICES), staged_table(SURVEY_SOURCE)
    services = spells.filter(pl.col("person_key").str.starts_with("edge-h")).select(
        "org_id", "record_id", "county_fips", "program", "year", client_id="person_key",
        enroll_date="start_date", exit_date="end_date", line=pl.lit(1), file=pl.lit("edge"),
    )  # fmt: skip
    append(wh, staged_services, services)
    columns = ["client_id", "response_id", "survey_date", "wave", "housing_stable"]
    surveys = pl.DataFrame(edge_surveys(year), columns, orient="row").with_columns(
        org_id=pl.lit(EDGE_PARTNER), year=pl.lit(year), line=pl.lit(1), file=pl.lit("edge")
    )
    append(wh, staged_surveys, surveys)
    links = services.select(
        "org_id", "record_id", person_key="client_id", source=pl.lit("services")
    )
    linked = linked_surveys(
        padded(surveys, staged_surveys), padded(services, staged_services), links
    )
    append(wh, LINKED_SURVEYS, linked)
    # a county without population in y: 0/0, and ALL counts its entries out
    population = reference_table("population")
    pop = wh.read(population)
    wh.write(population, pop.filter((pl.col("county_fips") != c[3]) | (pl.col("year") != year)))
    run_indicator_stage(dst, year, min_cell)


# ---------------------------------------------------------------- fixtures


@dataclass
class Checked:
    rec: Recomputed
    group_panel: pl.DataFrame  # the pipeline's breakdowns before suppression


def checked_at(scenario: str, root: Path, year: int) -> Checked:
    return Checked(recompute(scenario, root, year), pipeline_group_cells(root, year))


@pytest.fixture(scope="module")
def edges(sample: Materialized, tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """The sample's inputs plus the hand-made persons, through the indicator stage."""
    year = middle_year(sample.warehouse.root)
    root = tmp_path_factory.mktemp("edges") / "warehouse"
    with_edge_cases(sample.warehouse.root, root, year, sample.settings.min_cell)
    return checked_at("edges", root, year)


@pytest.fixture(scope="module", params=["sample", "edges"])
def checked(request: pytest.FixtureRequest, sample: Materialized) -> Checked:
    if request.param == "edges":
        return request.getfixturevalue("edges")
    return checked_at("sample", sample.warehouse.root, middle_year(sample.warehouse.root))


@pytest.fixture(scope="module")
def rec(checked: Checked) -> Recomputed:
    return checked.rec


# ---------------------------------------------------------------- comparisons


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= TOLERANCE


def differences(key: Key, want: Cell, got: Cell, fields: tuple[str, ...]) -> list[str]:
    out = []
    for f in fields:
        w, g = getattr(want, f), getattr(got, f)
        same = w == g if f in ("numerator", "denominator") else close(w, g)
        if not same:
            out.append(f"{key} {f}: SQL {w!r}, pipeline {g!r}")
    return out


def report(problems: list[str]) -> str:
    return f"{len(problems)} differences:\n" + "\n".join(problems[:40])


ESTIMATE = ("numerator", "denominator", "value", "ci_low", "ci_high")
PUBLISHED = "indicator_id, group_by, group_value, county_fips, " + ", ".join(ESTIMATE)
PUBLISHED_COUNTY = PUBLISHED.replace("group_by, group_value", "null, null")
# the least each comparison must cover, so that no test passes on nothing
MIN_PANEL_VALUES = 10  # county rows with a non-null value, per indicator
MIN_PUBLISHED_ROWS = 1  # unsuppressed county-table rows, per indicator
MIN_PUBLISHED_VALUES = 20  # unsuppressed county-table rows with a value, all indicators
MIN_GROUP_ROWS = 20  # unsuppressed group rows, per proportion indicator
MIN_GROUP_VALUES = 5  # unsuppressed group rows with a value, all indicators
MIN_GROUP_PANEL_HITS = 10  # group cells before suppression with a numerator > 0, per indicator


def test_row_grids_are_every_county_plus_all(rec: Recomputed) -> None:
    """The county table, the panel and the breakdowns hold exactly the expected rows."""
    county = {(k[0], k[3]) for k in rec.county_cells}
    published = rec.rows("outcome_indicators", "indicator_id, county_fips")
    assert sorted(published) == sorted(county)
    panel = rec.rows("indicator_panel", "indicator_id, county_fips")
    assert sorted(panel) == sorted(k for k in county if k[1] != ALL)
    grouped = rec.rows("outcome_indicators_by_group", "indicator_id, group_by, group_value, "
                       "county_fips")  # fmt: skip
    assert sorted(grouped) == sorted(rec.group_cells)
    assert len(rec.counties) >= 10 and {i for i, _ in county} == set(DEFINITIONS)


def test_panel_before_suppression(rec: Recomputed) -> None:
    """Every county row of restricted indicator_panel: counts and value."""
    problems, values = [], dict.fromkeys(DEFINITIONS, 0)
    rows = rec.rows("indicator_panel", "indicator_id, county_fips, numerator, denominator, value")
    for indicator, county, n, d, v in rows:
        key = (indicator, None, None, county)
        want = rec.county_cells[key]
        problems += differences(key, want, Cell(n, d, v), ESTIMATE[:3])
        values[indicator] += v is not None and want.value is not None
    assert not problems, report(problems)
    assert len(rows) == len(DEFINITIONS) * len(rec.counties)
    thin = {i: n for i, n in values.items() if n < MIN_PANEL_VALUES}
    assert not thin, f"too few county values compared: {thin}"
    hits = {i: sum(c.numerator for k, c in rec.county_cells.items() if k[0] == i and k[3] == ALL)
            for i in DEFINITIONS}  # fmt: skip
    assert all(hits.values()), f"an indicator with no numerator at all: {hits}"


def test_group_cells_before_suppression(checked: Checked) -> None:
    """Every breakdown cell, counties and ALL, as the pipeline counts it before suppression."""
    rec, problems = checked.rec, []
    hits = dict.fromkeys(PROPORTIONS, 0)
    columns = ["indicator_id", "group_by", "group_value", "county_fips", "numerator",
               "denominator"]  # fmt: skip
    got = {tuple(r[:4]): r[4:] for r in checked.group_panel.select(columns).iter_rows()}
    assert sorted(got) == sorted(rec.group_cells)
    for key, want in rec.group_cells.items():
        n, d = got[key]
        problems += differences(key, want, Cell(n, d), ESTIMATE[:2])
        hits[key[0]] += key[3] != ALL and want.numerator > 0
    assert not problems, report(problems)
    thin = {i: n for i, n in hits.items() if n < MIN_GROUP_PANEL_HITS}
    assert not thin, f"too few group cells with a numerator: {thin}"


def _compare_published(
    rec: Recomputed, table: str, columns: str, expected: dict[Key, Cell]
) -> dict[str, list[int]]:
    """Unsuppressed rows of `table` against `expected`; per indicator: rows, values."""
    problems: list[str] = []
    compared = {i: [0, 0] for i in DEFINITIONS}
    for indicator, g, v, county, *estimate in rec.rows(
        f"{table} where suppression is null", columns
    ):
        key = (indicator, g, v, county)
        problems += differences(key, expected[key], Cell(*estimate), ESTIMATE)
        compared[indicator][0] += 1
        compared[indicator][1] += estimate[2] is not None
    assert not problems, report(problems)
    return compared


def test_published_county_rows(rec: Recomputed) -> None:
    """Unsuppressed outcome_indicators rows, ALL included: counts, value and interval."""
    compared = _compare_published(rec, "outcome_indicators", PUBLISHED_COUNTY, rec.county_cells)
    thin = {i: c for i, c in compared.items() if c[0] < MIN_PUBLISHED_ROWS}
    assert not thin, f"too few published rows compared: {thin}"
    assert sum(c[1] for c in compared.values()) >= MIN_PUBLISHED_VALUES, compared


def test_published_group_rows(rec: Recomputed) -> None:
    """Unsuppressed outcome_indicators_by_group rows (sex, age band) of every proportion."""
    compared = _compare_published(rec, "outcome_indicators_by_group", PUBLISHED, rec.group_cells)
    thin = {i: compared[i] for i in PROPORTIONS if compared[i][0] < MIN_GROUP_ROWS}
    assert not thin, f"too few published group rows compared: {thin}"
    assert sum(c[1] for c in compared.values()) >= MIN_GROUP_VALUES, compared


def test_provisional_flags(rec: Recomputed) -> None:
    """Every row, suppressed or not, carries the indicator-year's provisional flag."""
    for table in ("outcome_indicators", "outcome_indicators_by_group"):
        flags = dict(rec.rows(table, "distinct indicator_id, provisional"))
        assert flags == {i: rec.provisional[i] for i in flags}, table


def test_hand_made_persons_as_the_contract_says(edges: Checked) -> None:
    """The SQL's own units for the edge persons: county, hit and groups as written above."""
    rec = edges.rec
    c = rec.counties
    for indicator, persons in EDGE_UNITS.items():
        got = {p: (k, hit) for p, k, hit in rec.rows(
            f"units_{indicator} where person_key like 'edge-%'", "person_key, county_fips, hit"
        )}  # fmt: skip
        want = {p: (c[i], hit) for p, (i, hit) in persons.items()}
        assert {p: got.get(p) for p in want} == want, indicator
        assert not set(EDGE_ABSENT.get(indicator, [])) & set(got), indicator
    entries = rec.rows("units_foster_care_entry_rate where person_key like 'edge-%' "
                       "group by all", "person_key, county_fips, count(*)")  # fmt: skip
    assert {(p, c.index(k)): n for p, k, n in entries} == EDGE_FOSTER_ENTRIES
    no_population = rec.county_cells[("foster_care_entry_rate", None, None, c[3])]
    assert no_population == Cell(0, 0)
    groups: dict[str, dict[str, str]] = {}
    for indicator in ("cross_sector_reach", "employment_q2_after_exit"):
        for p, g, v in rec.rows(f"groups_{indicator} where person_key like 'edge-%'",
                                "person_key, group_by, group_value"):  # fmt: skip
            groups.setdefault(p, {})[g] = v
    assert {p: (groups[p]["sex"], groups[p]["age_band"]) for p in EDGE_GROUPS} == EDGE_GROUPS


def test_interval_helpers_against_textbook_values() -> None:
    """Anchors for the two interval helpers above (independent of the pipeline)."""
    assert math.isclose(Z, 1.959963984540054, rel_tol=1e-15)
    assert wilson(0, 10) == (0.0, pytest.approx(Z * Z / (10 + Z * Z), rel=1e-12))
    assert np.allclose(wilson(5, 10), [0.236593090512564, 0.763406909487436], rtol=1e-12)
    for x in (0, 1, 10, 250):  # Garwood = gamma quantiles: low G(x), high G(x + 1)
        low = gamma.ppf(ALPHA / 2, x) if x else 0.0
        assert np.allclose(garwood(x), [low, gamma.ppf(1 - ALPHA / 2, x + 1)], rtol=1e-12)
    assert np.allclose(garwood(10), [4.795, 18.390], atol=5e-4)  # the printed tables
