"""Outcome indicators of contract section 4 as pure Polars transforms (no Dagster, no I/O).

An indicator is one `Indicator` entry in `REGISTRY` plus one *units* function. The
units function turns the linked inputs of a year into one row per counted unit,
already placed in its single county:

- proportions: one row per denominator person, `hit` = the person is in the numerator,
  with `sex` and `birth_year` of the record that put the person in the denominator;
- rates: one row per numerator unit (a person or, for foster care, a spell); the
  denominator is the reference population of the age groups the entry names.

Everything else (the county grid, zero rows, the ALL row, group breakdowns, the
provisional flag, values, intervals and suppression) is generic, so adding an
indicator is adding one entry and its units function.

Choices where the contract is silent:

- Units in a county not listed in `counties` are left out everywhere, so that ALL
  stays exactly the sum of the published county rows.
- Rate denominators use the population of exactly year y; a county without a
  population row for y has denominator 0 (value null, numerator shown as 0).
- employment_q2_after_exit is provisional when the wages of y OR y+1 are not loaded
  (Q1/Q2 exits look at quarters of y itself); tanf_return_12m when the spells of y+1
  are not loaded; the other indicators are never provisional.
- housing_stability_12m has no person record with sex or birth year, so its groups
  always use the fallback (the person's most frequent value across their spells).
- Group values: F, M, X, U and the five age bands always, plus any other value found
  for that indicator-year (e.g. UNKNOWN), each with a row for every county plus ALL.
- Age is y - birth_year; an age below 0 (born after y) falls in 0-17.
- Rows are sorted by indicator_id, year, (group_by, group_value,) county_fips with
  ALL last. The unsuppressed panel holds county rows only (ALL is not a unit).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from outcomes import disclosure, schema, stats

Kind = Literal["proportion", "rate"]
Frame = pl.DataFrame | pl.LazyFrame
ALL = schema.ALL_COUNTIES
UNKNOWN = "UNKNOWN"
GROUPS: dict[str, tuple[str, ...]] = {"sex": schema.SEXES, "age_band": schema.AGE_BANDS}
REACH_PROGRAMS = ("SNAP", "TANF", "MEDICAID")
RETURN_WINDOW_DAYS = (1, 365)

UNIT_SCHEMA = {
    "person_key": pl.String(),
    "county_fips": pl.String(),
    "hit": pl.Boolean(),
    "sex": pl.String(),
    "birth_year": pl.Int64(),
}
CELL_SCHEMA = {
    "indicator_id": pl.String(),
    "year": pl.Int64(),
    "county_fips": pl.String(),
    "numerator": pl.Int64(),
    "denominator": pl.Int64(),
    "provisional": pl.Boolean(),
}
GROUP_CELL_SCHEMA = {**CELL_SCHEMA, "group_by": pl.String(), "group_value": pl.String()}


@dataclass(frozen=True)
class LoadedYears:
    """Which years are loaded per source: what makes an indicator-year provisional."""

    spells: frozenset[int] = frozenset()
    services: frozenset[int] = frozenset()
    wages: frozenset[int] = frozenset()
    client_surveys: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Inputs:
    """The linked inputs of every indicator, lazily, as units functions consume them."""

    spells: pl.LazyFrame
    wages: pl.LazyFrame
    surveys: pl.LazyFrame
    population: pl.LazyFrame
    counties: pl.LazyFrame  # one column county_fips, unique
    loaded: LoadedYears

    @classmethod
    def of(
        cls,
        spells: Frame,
        wages: Frame,
        surveys: Frame,
        population: Frame,
        counties: Iterable[str] | Frame,
        loaded: LoadedYears,
    ) -> Inputs:
        """Accept eager or lazy frames and any list of counties: callers differ."""
        return cls(
            spells.lazy(),
            wages.lazy(),
            surveys.lazy(),
            population.lazy(),
            _county_frame(counties),
            loaded,
        )


Units = Callable[[Inputs, int], pl.LazyFrame]


# The linked input each Inputs field is read from: what an indicator's `sources` name.
INPUT_TABLES: dict[str, str] = {
    "spells": schema.SERVICE_SPELLS.name,
    "wages": schema.QUARTERLY_WAGES.name,
    "surveys": schema.CLIENT_OUTCOMES.name,
    "population": "population",
}
def input_files(year: int) -> dict[str, dict[str, range]]:
    """Per input the indicators of `year` read: the landing sources and years it is made
    from. Spells up to y+1 (returns), wages of y and y+1 (quarters after an exit),
    surveys of y, whose clients take their county from services up to y."""
    spells = range(year + 2)
    return {
        "spells": {"spells": spells, "services": spells},
        "wages": {"wages": range(year, year + 2)},
        "surveys": {"client_surveys": range(year, year + 1), "services": range(year + 1)},
        "population": {},
    }


INTERVALS: dict[str, str] = {
    "proportion": "Wilson score interval, 95%",
    "rate": "exact Poisson interval on the numerator (Garwood), 95%, times the multiplier",
}
_OFFSET = {0: "y", 1: "y+1"}


@dataclass(frozen=True)
class Indicator:
    """One published indicator (contract section 4), declared once: the code computes it
    from `units`, and docs/indicators.md, the report and the UI read the rest."""

    indicator_id: str
    title: str
    kind: Kind
    description: str  # one line, in users' words
    universe: str  # who or what the indicator is about
    numerator: str
    denominator: str
    county_rule: str  # the one county a unit counts in
    sources: tuple[str, ...]  # Inputs fields the units read (INPUT_TABLES)
    units: Units  # (inputs, year) -> rows of UNIT_SCHEMA, see the module docstring
    multiplier: float = 1.0
    by_group: bool = False  # breakdowns by sex and age band: proportions only
    population_ages: tuple[str, ...] = ()  # rates: age groups of the denominator
    provisional_if_missing: tuple[tuple[str, int], ...] = ()  # (LoadedYears field, y offset)

    def __post_init__(self) -> None:
        """Reject specs the generic code cannot honour, at import time."""
        if self.kind == "rate" and (self.by_group or not self.population_ages):
            raise ValueError(f"{self.indicator_id}: a rate needs population_ages, no groups")
        if self.kind == "proportion" and self.population_ages:
            raise ValueError(f"{self.indicator_id}: a proportion has no population")
        unknown = set(self.sources) - set(INPUT_TABLES)
        if unknown or (self.kind == "rate") != ("population" in self.sources):
            raise ValueError(f"{self.indicator_id}: sources {self.sources} (rates read population)")

    def provisional(self, loaded: LoadedYears, year: int) -> bool:
        """True while data the definition needs for `year` is not loaded yet."""
        return any(year + k not in getattr(loaded, src) for src, k in self.provisional_if_missing)

    @property
    def interval(self) -> str:
        return INTERVALS[self.kind]

    @property
    def provisional_rule(self) -> str:
        """The provisional rule in words, from `provisional_if_missing`."""
        if not self.provisional_if_missing:
            return "never provisional"
        by_source: dict[str, list[str]] = {}
        for src, k in self.provisional_if_missing:
            by_source.setdefault(src, []).append(_OFFSET.get(k, f"y+{k}"))
        needed = " and ".join(f"the {src} of {' and '.join(ys)}" for src, ys in by_source.items())
        return f"provisional until {needed} are loaded"

    @property
    def source_tables(self) -> tuple[str, ...]:
        return tuple(INPUT_TABLES[s] for s in self.sources)


# ---------------------------------------------------------------- shared terms


def _county_frame(counties: Iterable[str] | Frame) -> pl.LazyFrame:
    """Every county of reference/counties.csv, once, as a one-column frame."""
    if isinstance(counties, pl.DataFrame | pl.LazyFrame):
        frame = counties.lazy().select(pl.col("county_fips").cast(pl.String()))
    else:
        frame = pl.LazyFrame({"county_fips": list(counties)}, schema={"county_fips": pl.String()})
    return frame.filter(pl.col("county_fips") != ALL).unique()


def active_in(year: int) -> pl.Expr:
    """Starts on or before 31 Dec y and has no end or ends on or after 1 Jan y."""
    return (pl.col("start_date") <= dt.date(year, 12, 31)) & (
        pl.col("end_date").is_null() | (pl.col("end_date") >= dt.date(year, 1, 1))
    )


def _spells(inp: Inputs, sector: str, *programs: str) -> pl.LazyFrame:
    """Spells of one sector and programs: public spells or nonprofit enrollments."""
    return inp.spells.filter(pl.col("sector") == sector, pl.col("program").is_in(programs))


def latest_per_person(frame: pl.LazyFrame, date: str, tie: str = "record_id") -> pl.LazyFrame:
    """One row per person: the latest `date`, ties to the smallest `tie` (county rule)."""
    order = pl.all().sort_by([date, tie], descending=[True, False], nulls_last=True)
    return frame.group_by("person_key").agg(order.first())


def _flag(persons: pl.LazyFrame, hits: pl.LazyFrame) -> pl.LazyFrame:
    """`hit` = the person appears in `hits` (a frame of person_key, maybe repeated)."""
    hits = hits.select("person_key").unique().with_columns(hit=pl.lit(True))
    joined = persons.join(hits, on="person_key", how="left")
    return joined.with_columns(pl.col("hit").fill_null(False))


def as_units(
    frame: pl.LazyFrame, hit: pl.Expr | bool = True, demographics: bool = True
) -> pl.LazyFrame:
    """Project onto UNIT_SCHEMA; frames without sex/birth_year get nulls (fallback later)."""
    hit = hit if isinstance(hit, pl.Expr) else pl.lit(hit)
    cols = [pl.col("person_key"), pl.col("county_fips"), hit.alias("hit")]
    if demographics:
        cols += [pl.col("sex"), pl.col("birth_year")]
    else:
        cols += [pl.lit(None).alias("sex"), pl.lit(None).alias("birth_year")]
    return frame.select(cols).cast(UNIT_SCHEMA)


# ---------------------------------------------------------------- units per indicator


def cross_sector_reach(inp: Inputs, year: int) -> pl.LazyFrame:
    """Persons on SNAP, TANF or MEDICAID in y; hit = also in a nonprofit program in y."""
    public = _spells(inp, "PUBLIC", *REACH_PROGRAMS).filter(active_in(year))
    nonprofit = inp.spells.filter(pl.col("sector") == "NONPROFIT", active_in(year))
    persons = _flag(latest_per_person(public, "start_date"), nonprofit)
    return as_units(persons, pl.col("hit"))


def foster_care_entries(inp: Inputs, year: int) -> pl.LazyFrame:
    """Foster care spells starting in y: spells, not persons (a child may enter twice)."""
    entries = _spells(inp, "PUBLIC", "FOSTER_CARE")
    return as_units(entries.filter(pl.col("start_date").dt.year() == year))


def snap_participants(inp: Inputs, year: int) -> pl.LazyFrame:
    """Persons with a SNAP spell active in y, in the county of their latest start."""
    snap = _spells(inp, "PUBLIC", "SNAP").filter(active_in(year))
    return as_units(latest_per_person(snap, "start_date"))


def _quarter_after(date: str, quarters: int) -> tuple[pl.Expr, pl.Expr]:
    """(year, quarter) `quarters` calendar quarters after the quarter of `date`."""
    index = pl.col(date).dt.year().cast(pl.Int64) * 4 + pl.col(date).dt.quarter() - 1 + quarters
    return (index // 4).alias("target_year"), (index % 4 + 1).alias("target_quarter")


def employment_after_exit(inp: Inputs, year: int) -> pl.LazyFrame:
    """Persons leaving workforce programs in y; hit = paid in the 2nd quarter after exit."""
    exits = _spells(inp, "NONPROFIT", "WORKFORCE").filter(pl.col("end_date").dt.year() == year)
    persons = latest_per_person(exits, "end_date").with_columns(*_quarter_after("end_date", 2))
    paid = (
        inp.wages.group_by("person_key", "year", "quarter")
        .agg(pl.col("wages").sum())
        .filter(pl.col("wages") > 0)
        .select("person_key", target_year="year", target_quarter="quarter", hit=pl.lit(True))
    )
    keys = ["person_key", "target_year", "target_quarter"]
    joined = persons.join(
        paid.cast({"target_year": pl.Int64, "target_quarter": pl.Int64}), on=keys, how="left"
    )
    return as_units(joined, pl.col("hit").fill_null(False))


def tanf_returns(inp: Inputs, year: int) -> pl.LazyFrame:
    """Persons whose TANF ended in y; hit = a new TANF spell 1-365 days after that end."""
    tanf = _spells(inp, "PUBLIC", "TANF")
    ends = latest_per_person(tanf.filter(pl.col("end_date").dt.year() == year), "end_date")
    gap = (pl.col("start_date") - pl.col("end_date")).dt.total_days()
    returns = (
        ends.select("person_key", "end_date")
        .join(tanf.select("person_key", "start_date"), on="person_key")
        .filter(gap.is_between(*RETURN_WINDOW_DAYS))
    )
    return as_units(_flag(ends, returns), pl.col("hit"))


def housing_stability(inp: Inputs, year: int) -> pl.LazyFrame:
    """Persons answering housing at 12-month follow-up in y; hit = stably housed."""
    answered = inp.surveys.filter(
        pl.col("wave") == "FOLLOWUP_12M",
        pl.col("survey_date").dt.year() == year,
        pl.col("housing_stable").is_not_null(),
    )
    latest = latest_per_person(answered, "survey_date", tie="response_id")
    return as_units(latest, pl.col("housing_stable"), demographics=False)


_LATEST_START = "the record with the latest start in y, ties to the smallest record_id"
_LATEST_EXIT = "the record with the latest exit in y, ties to the smallest record_id"

REGISTRY: dict[str, Indicator] = {
    i.indicator_id: i
    for i in (
        Indicator(
            "cross_sector_reach",
            "Cross-sector reach",
            "proportion",
            "Share of people on SNAP, TANF or Medicaid who were also served by a nonprofit.",
            universe="public benefit recipients",
            numerator="denominator persons who also have a nonprofit enrollment active in y",
            denominator="persons with a SNAP, TANF or MEDICAID spell active in y",
            county_rule=f"county of the public spell: {_LATEST_START}",
            sources=("spells",),
            units=cross_sector_reach,
            by_group=True,
        ),
        Indicator(
            "foster_care_entry_rate",
            "Foster care entries per 1,000 children",
            "rate",
            "Children entering foster care per 1,000 children.",
            universe="children aged 0-17 in the county's population",
            numerator="FOSTER_CARE spells starting in y (spells, not persons)",
            denominator="population aged 0-17 in y",
            county_rule="county of the spell",
            sources=("spells", "population"),
            units=foster_care_entries,
            multiplier=1000.0,
            population_ages=("0-17",),
        ),
        Indicator(
            "snap_participation_per_1000",
            "SNAP participants per 1,000 residents",
            "rate",
            "People receiving SNAP per 1,000 residents.",
            universe="residents of all ages in the county's population",
            numerator="persons with a SNAP spell active in y",
            denominator="population, all ages, in y",
            county_rule=f"county of the SNAP spell: {_LATEST_START}",
            sources=("spells", "population"),
            units=snap_participants,
            multiplier=1000.0,
            population_ages=schema.AGE_GROUPS,
        ),
        Indicator(
            "employment_q2_after_exit",
            "Employment in the second quarter after a workforce exit",
            "proportion",
            "Share of people leaving a workforce program who had earnings two quarters later.",
            universe="people leaving nonprofit workforce programs",
            numerator="denominator persons with wages > 0 in the second calendar quarter after "
            "the quarter of that exit",
            denominator="persons with a WORKFORCE enrollment exit in y (their latest exit in y)",
            county_rule=f"county of the enrollment: {_LATEST_EXIT}",
            sources=("spells", "wages"),
            units=employment_after_exit,
            by_group=True,
            provisional_if_missing=(("wages", 0), ("wages", 1)),
        ),
        Indicator(
            "tanf_return_12m",
            "Return to TANF within 12 months",
            "proportion",
            "Share of people leaving TANF who were back on TANF within a year.",
            universe="people leaving TANF",
            numerator="denominator persons with a new TANF spell starting 1 to 365 days after "
            "that end",
            denominator="persons with a TANF spell ending in y (their latest end in y)",
            county_rule=f"county of the TANF spell: {_LATEST_EXIT}",
            sources=("spells",),
            units=tanf_returns,
            by_group=True,
            provisional_if_missing=(("spells", 1),),
        ),
        Indicator(
            "housing_stability_12m",
            "Stable housing at the 12-month follow-up",
            "proportion",
            "Share of clients who said they were stably housed at their 12-month follow-up.",
            universe="nonprofit clients answering the 12-month follow-up survey",
            numerator="denominator persons whose response says housing_stable = true",
            denominator="persons with a FOLLOWUP_12M response in y with housing_stable given "
            "(their latest such response)",
            county_rule="the client's county: that of their latest enrollment with that partner "
            "starting on or before the survey date, else their earliest with that partner",
            sources=("surveys",),
            units=housing_stability,
            by_group=True,
        ),
    )
}


# ---------------------------------------------------------------- cells


def _population(inp: Inputs, year: int, ages: tuple[str, ...]) -> pl.LazyFrame:
    """Reference population of year y and the given age groups, per county."""
    pop = inp.population.filter(pl.col("year") == year, pl.col("age_group").is_in(ages))
    return pop.group_by("county_fips").agg(pl.col("population").sum().alias("denominator"))


def _tally(grid: pl.LazyFrame, units: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    """Numerator and denominator per grid cell; cells without units get zeros."""
    counts = units.group_by("county_fips", *keys).agg(
        numerator=pl.col("hit").sum().cast(pl.Int64), denominator=pl.len().cast(pl.Int64)
    )
    joined = grid.join(counts, on=["county_fips", *keys], how="left")
    return joined.with_columns(pl.col("numerator", "denominator").fill_null(0))


def _with_all(cells: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    """Append the ALL row(s): the sum of the county rows, so ALL = sum by construction."""
    total = cells.group_by(keys).agg(pl.col("numerator", "denominator").sum())
    total = total.with_columns(county_fips=pl.lit(ALL))
    return pl.concat([cells, total], how="diagonal")


def _finish(ind: Indicator, cells: pl.LazyFrame, inp: Inputs, year: int, schema_):
    """Label an indicator's cells, cast them to the cell schema."""
    return (
        cells.with_columns(
            indicator_id=pl.lit(ind.indicator_id),
            year=pl.lit(year),
            provisional=pl.lit(ind.provisional(inp.loaded, year)),
        )
        .select(list(schema_))
        .cast(schema_)
    )


def _county_cells(ind: Indicator, inp: Inputs, year: int, units: pl.LazyFrame) -> pl.LazyFrame:
    """One row per county plus ALL for one indicator and year."""
    cells = _tally(inp.counties, units, [])
    if ind.kind == "rate":
        population = _population(inp, year, ind.population_ages)
        cells = cells.drop("denominator").join(population, on="county_fips", how="left")
        cells = cells.with_columns(pl.col("denominator").fill_null(0))
    return _finish(ind, _with_all(cells, []), inp, year, CELL_SCHEMA)


def sort_cells(frame: pl.DataFrame) -> pl.DataFrame:
    """Deterministic order: indicator, year, (group,) county with ALL last."""
    keys = ["indicator_id", "year", *[k for k in ("group_by", "group_value") if k in frame]]
    return frame.sort([*keys, pl.col("county_fips") == ALL, "county_fips"])


def person_cells(
    year: int,
    spells: Frame,
    wages: Frame,
    surveys: Frame,
    population: Frame,
    counties: Iterable[str] | Frame,
    loaded: LoadedYears,
) -> pl.DataFrame:
    """Unsuppressed cells of every registered indicator for one year (CELL_SCHEMA)."""
    inp = Inputs.of(spells, wages, surveys, population, counties, loaded)
    return _all_county_cells(inp, year, _units_by_indicator(inp, year))


def _units_by_indicator(inp: Inputs, year: int, by_group: bool = False) -> dict[str, pl.LazyFrame]:
    """Each indicator's units, computed once: county and group cells both read them."""
    return {
        ind.indicator_id: ind.units(inp, year).collect().lazy()
        for ind in REGISTRY.values()
        if ind.by_group or not by_group
    }


def _all_county_cells(inp: Inputs, year: int, units: dict[str, pl.LazyFrame]) -> pl.DataFrame:
    parts = [_county_cells(REGISTRY[i], inp, year, u) for i, u in units.items()]
    return sort_cells(pl.concat(parts).collect())


# ---------------------------------------------------------------- group cells


def _modal(spells: pl.LazyFrame, column: str) -> pl.LazyFrame:
    """Each person's most frequent non-null value of `column`, ties to the smallest."""
    counts = spells.filter(pl.col(column).is_not_null()).group_by("person_key", column).len()
    order = pl.col(column).sort_by(["len", column], descending=[True, False])
    return counts.group_by("person_key").agg(order.first().alias(f"modal_{column}"))


def demographic_fallback(spells: pl.LazyFrame) -> pl.DataFrame:
    """person_key, modal_sex, modal_birth_year over all of a person's spells.

    Computed once per call (every grouped indicator reuses it): it scans all spells.
    """
    sex, birth = _modal(spells, "sex"), _modal(spells, "birth_year")
    return sex.join(birth, on="person_key", how="full", coalesce=True).collect()


def age_band(year: int) -> pl.Expr:
    """Contract age band by age on 31 Dec y = y - birth_year; UNKNOWN without a birth year."""
    age = year - pl.col("birth_year")
    bands = pl.when(age.is_null()).then(pl.lit(UNKNOWN))
    for upper, band in zip((18, 25, 45, 65), schema.AGE_BANDS, strict=False):
        bands = bands.when(age < upper).then(pl.lit(band))
    return bands.otherwise(pl.lit(schema.AGE_BANDS[-1]))


def _demographics(units: pl.LazyFrame, fallback: pl.DataFrame, year: int) -> pl.DataFrame:
    """Units with group values: own record first, then the person's modal value, else UNKNOWN.

    Collected here: the units are read twice (sex and age band), so compute them once.
    """
    units = units.join(fallback.lazy(), on="person_key", how="left")
    own_first = [pl.coalesce(c, f"modal_{c}").alias(c) for c in ("sex", "birth_year")]
    units = units.with_columns(own_first).with_columns(pl.col("sex").fill_null(UNKNOWN))
    return units.with_columns(age_band=age_band(year)).collect()


def _long_groups(units: pl.LazyFrame) -> pl.LazyFrame:
    """One row per unit and breakdown: (county_fips, hit, group_by, group_value)."""
    return pl.concat(
        [
            units.select("county_fips", "hit", group_by=pl.lit(g), group_value=pl.col(g))
            for g in GROUPS
        ]
    )


def _group_grid(inp: Inputs, long: pl.LazyFrame) -> pl.LazyFrame:
    """Every county x (fixed group values plus those in the data)."""
    fixed = pl.LazyFrame(
        [(g, v) for g, values in GROUPS.items() for v in values],
        schema={"group_by": pl.String(), "group_value": pl.String()},
        orient="row",
    )
    values = pl.concat([fixed, long.select("group_by", "group_value")]).unique()
    return inp.counties.join(values, how="cross")


def _group_cells(
    ind: Indicator, inp: Inputs, year: int, fallback: pl.DataFrame, units: pl.LazyFrame
) -> pl.LazyFrame:
    """Rows for every county plus ALL within each group value of one indicator-year."""
    long = _long_groups(_demographics(units, fallback, year).lazy())
    keys = ["group_by", "group_value"]
    cells = _tally(_group_grid(inp, long), long, keys)
    return _finish(ind, _with_all(cells, keys), inp, year, GROUP_CELL_SCHEMA)


def group_cells(
    year: int,
    spells: Frame,
    wages: Frame,
    surveys: Frame,
    population: Frame,
    counties: Iterable[str] | Frame,
    loaded: LoadedYears,
) -> pl.DataFrame:
    """Unsuppressed cells by sex and age band of every grouped indicator for one year."""
    inp = Inputs.of(spells, wages, surveys, population, counties, loaded)
    return _all_group_cells(inp, year, _units_by_indicator(inp, year, by_group=True))


def _all_group_cells(inp: Inputs, year: int, units: dict[str, pl.LazyFrame]) -> pl.DataFrame:
    grouped = {i: u for i, u in units.items() if REGISTRY[i].by_group}
    if not grouped:
        return pl.DataFrame(schema=GROUP_CELL_SCHEMA)
    fallback = demographic_fallback(inp.spells)
    parts = [_group_cells(REGISTRY[i], inp, year, fallback, u) for i, u in grouped.items()]
    return sort_cells(pl.concat(parts).collect())


# ---------------------------------------------------------------- publishing


def _registry_frame() -> pl.DataFrame:
    """kind and multiplier per indicator_id, to join onto cells."""
    return pl.DataFrame(
        {
            "indicator_id": list(REGISTRY),
            "kind": [i.kind for i in REGISTRY.values()],
            "multiplier": [i.multiplier for i in REGISTRY.values()],
        }
    )


def _estimates(cells: Frame) -> pl.DataFrame:
    """Zero-denominator rule, value and 95% interval over whole columns (before suppression)."""
    df = cells.lazy().join(_registry_frame().lazy(), on="indicator_id", how="left").collect()
    unknown = df.filter(pl.col("kind").is_null())["indicator_id"].unique().to_list()
    if unknown:
        raise ValueError(f"indicators not in REGISTRY: {sorted(unknown)}")
    d = pl.col("denominator")
    df = df.with_columns(numerator=pl.when(d == 0).then(0).otherwise("numerator"))
    keys = ["indicator_id", "year", *[k for k in ("group_by", "group_value") if k in df]]
    county_sum = pl.col("numerator").filter(pl.col("county_fips") != ALL).sum().over(keys)
    # ALL stays the sum of the published counties, also where a county's count was zeroed
    df = df.with_columns(
        numerator=pl.when((pl.col("county_fips") == ALL) & (d > 0))
        .then(county_sum)
        .otherwise("numerator")
    )
    n, den, mult = (df[c].to_numpy() for c in ("numerator", "denominator", "multiplier"))
    rate = (df["kind"] == "rate").to_numpy()
    w_low, w_high = stats.wilson_interval(n, den)
    r_low, r_high = stats.rate_interval(n, den, mult)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(den > 0, n / den * np.where(rate, mult, 1.0), np.nan)
    columns = {
        "value": value,
        "ci_low": np.where(rate, r_low, w_low),
        "ci_high": np.where(rate, r_high, w_high),
    }
    return df.with_columns(
        pl.Series(k, v, dtype=pl.Float64).fill_nan(None) for k, v in columns.items()
    )


def indicator_panel(cells: Frame) -> pl.DataFrame:
    """INDICATOR_PANEL: county values before suppression, for the impact estimator only."""
    df = _estimates(cells).filter(pl.col("county_fips") != ALL)
    table = schema.INDICATOR_PANEL.schema
    return sort_cells(df.select(list(table)).cast(table))


def _published(df: pl.DataFrame) -> pl.DataFrame:
    """A suppressed row keeps only its keys, suppression reason and provisional flag."""
    hidden = ["numerator", "denominator", "value", "ci_low", "ci_high"]
    df = df.with_columns(pl.when(pl.col("suppression").is_null()).then(pl.col(hidden)))
    table = schema.OUTCOME_INDICATORS_BY_GROUP if "group_by" in df else schema.OUTCOME_INDICATORS
    return sort_cells(df.select(list(table.schema)).cast(table.schema))


def finalize(
    cells: Frame, group_cells: Frame | None = None, min_cell: int = 11
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Published OUTCOME_INDICATORS and OUTCOME_INDICATORS_BY_GROUP of the same cells.

    Values and intervals first, then disclosure control over both tables together
    (`outcomes.disclosure`: one linked table per indicator-year).
    """
    county = _estimates(cells)
    groups = _estimates(group_cells) if group_cells is not None else _estimates(
        pl.DataFrame(schema=GROUP_CELL_SCHEMA)
    )  # fmt: skip
    county, groups = disclosure.protect(county, groups, min_cell)
    return _published(county), _published(groups)


def release_audit(county: Frame, groups: Frame, min_cell: int) -> disclosure.Audit:
    """The attacker's audit of published tables as they are on disk."""
    kinds = _registry_frame().select("indicator_id", "kind").lazy()
    return disclosure.audit(
        county.lazy().join(kinds, on="indicator_id", how="left").collect(),
        groups.lazy().join(kinds, on="indicator_id", how="left").collect(),
        min_cell,
    )


@dataclass(frozen=True)
class IndicatorTables:
    """Everything the indicators of one year publish or hand on."""

    outcome_indicators: pl.DataFrame
    outcome_indicators_by_group: pl.DataFrame
    indicator_panel: pl.DataFrame


def indicator_tables(
    year: int,
    spells: Frame,
    wages: Frame,
    surveys: Frame,
    population: Frame,
    counties: Iterable[str] | Frame,
    loaded: LoadedYears,
    min_cell: int = 11,
) -> IndicatorTables:
    """Cells, published tables and the unsuppressed panel of one year in one call."""
    inp = Inputs.of(spells, wages, surveys, population, counties, loaded)
    units = _units_by_indicator(inp, year)
    cells = _all_county_cells(inp, year, units)
    county, groups = finalize(cells, _all_group_cells(inp, year, units), min_cell)
    return IndicatorTables(county, groups, indicator_panel(cells))
