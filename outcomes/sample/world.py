"""The true world: counties, persons, population and staggered partnerships.

Everything here is ground truth; the landing zone only ever sees it through
the noisy, partial views of each organisation's records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from outcomes.sample.config import (
    AGENCIES_IN_PARTNERSHIPS,
    COUNTY_NAMES,
    PARTNERS,
    STATE_ABBR,
    STATE_FIPS,
    ZIP_BASE,
    ZIP_STRIDE,
    SampleConfig,
)
from outcomes.sample.names import FEMALE, LAST, MALE, PARTICLE_LAST, ZIPF_SHIFT
from outcomes.sample.util import (
    PLACEHOLDER_NUMBERS,
    SERIALS,
    day,
    digits,
    keep_where,
    person_id,
    true_ssn_numbers,
)
from outcomes.schema import AGE_GROUPS

DAYS_PER_YEAR = 365.25
AGE_BOUNDS = ((0, 18), (18, 65), (65, None))  # the population age groups, in years
EMPLOYABILITY_CLIP = (0.05, 0.97)
X_FEMALE_NAME = 0.5  # persons of sex X get a first name from either pool
MARRIAGE_AGES = (18, 60)  # age in the marriage year of women who may take a new surname
HOUSEHOLD_ID_WIDTH = 7


@dataclass(frozen=True)
class World:
    years: tuple[int, ...]
    counties: pl.DataFrame  # county_fips, county_name, state_abbr
    persons: pl.DataFrame  # truth: one row per true person
    population: pl.DataFrame
    partnerships: pl.DataFrame
    treated: dict[str, int]  # county_fips -> first partnership start_year
    county_offset: np.ndarray  # county's own level of cross-sector reach
    active: tuple[int, ...] = ()  # the years simulated and written (a subset of years)

    def __post_init__(self) -> None:
        if not self.active:
            object.__setattr__(self, "active", self.years)

    @property
    def last_day(self) -> int:
        """The day of the latest delivery: events running past it are still open."""
        return day(self.active[-1], 12, 31)

    @property
    def county_fips(self) -> list[str]:
        return self.counties["county_fips"].to_list()


def _zipf_index(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    weights = 1.0 / (np.arange(size) + ZIPF_SHIFT)
    return rng.choice(size, n, p=weights / weights.sum())


def _pool(pool: tuple[str, ...], index: np.ndarray) -> pl.Series:
    """Names of a pool by index, as a Polars column (no Python string per person)."""
    return pl.Series(pool).gather(index)


def _surnames(rng: np.random.Generator, n: int, cfg: SampleConfig) -> pl.Series:
    """Surnames: mostly one word; a share hyphenated, double (two words) or with a particle."""
    first = _zipf_index(rng, len(LAST), n)
    second = _zipf_index(rng, len(LAST), n)
    second = np.where(second == first, (second + 1) % len(LAST), second)  # no Garcia-Garcia
    kind = rng.choice(len(cfg.compound_kinds), n, p=np.asarray(cfg.compound_kinds))
    particle = rng.integers(0, len(PARTICLE_LAST), n)
    compound = rng.random(n) < cfg.compound_last_name
    frame = pl.DataFrame({
        "a": _pool(LAST, first), "b": _pool(LAST, second), "p": _pool(PARTICLE_LAST, particle),
        "k": kind, "c": compound,
    })
    k = pl.col("k")
    return frame.select(
        pl.when(~pl.col("c")).then(pl.col("a"))
        .when(k == 0).then(pl.concat_str(["a", "b"], separator="-"))
        .when(k == 1).then(pl.concat_str(["a", "b"], separator=" "))
        .otherwise(pl.col("p"))
    ).to_series()


def make_counties(rng: np.random.Generator, cfg: SampleConfig) -> tuple[pl.DataFrame, np.ndarray]:
    """Counties of the fictional state and their shares of the served population."""
    n = len(COUNTY_NAMES)
    weights = np.maximum(rng.lognormal(0.0, cfg.county_weight_sigma, n), 1e-9)
    weights = np.maximum(weights / weights.sum(), cfg.county_weight_floor)
    counties = pl.DataFrame({
        "county_fips": [f"{STATE_FIPS}{2 * i + 1:03d}" for i in range(n)],  # odd, as FIPS are
        "county_name": list(COUNTY_NAMES),
        "state_abbr": [STATE_ABBR] * n,
    })
    return counties, weights / weights.sum()


def _households(rng: np.random.Generator, n: int, cfg: SampleConfig
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Household of each person (consecutive persons), the first member of each, sizes."""
    shares = np.asarray(cfg.household_sizes)
    size = 1 + rng.choice(shares.size, n, p=shares / shares.sum())  # never more than n
    end = np.cumsum(size)
    k = int(np.searchsorted(end, n)) + 1
    size, first = size[:k], end[:k] - size[:k]
    size[-1] = n - first[-1]
    return np.repeat(np.arange(k), size), first, size


def _twins(rng: np.random.Generator, first: np.ndarray, size: np.ndarray, n: int,
           cfg: SampleConfig) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a, b) of twins: the last two members of a share of households of two or more."""
    pairs = np.flatnonzero(size >= 2)
    share = min(1.0, cfg.twin_share * n / (2 * pairs.size)) if pairs.size else 0.0
    chosen = pairs[rng.random(pairs.size) < share]
    a = first[chosen] + size[chosen] - 2
    return a, a + 1


def _twin_ssns(rng: np.random.Generator, ssn: np.ndarray, a: np.ndarray, b: np.ndarray,
               cfg: SampleConfig) -> np.ndarray:
    """A share of twins get SSNs one serial apart; never a number someone else holds."""
    pick = rng.random(a.size) < cfg.twin_adjacent_ssn
    a, b = a[pick], b[pick]
    step = np.where(ssn[a] % 10_000 == SERIALS, -1, 1)
    wanted = ssn[a] + step
    free = ~np.isin(wanted, ssn) & ~np.isin(wanted, PLACEHOLDER_NUMBERS)
    out = ssn.copy()
    out[b[free]] = wanted[free]
    clash = pl.Series(out[b[free]]).is_duplicated().to_numpy()  # two pairs chose one number
    out[b[free][clash]] = ssn[b[free][clash]]
    return out


def make_persons(
    rng: np.random.Generator, n: int, years: tuple[int, ...], weights: np.ndarray,
    cfg: SampleConfig,
) -> pl.DataFrame:
    """The served population in households: names, sex, birth date, SSN, address, need.

    Members of a household are consecutive persons sharing county, zip, mostly the
    surname and part of their need; some are twins (same surname, birth date and
    household, different first names and SSNs); some women marry in the range and
    take a new surname (`married_name` from `marriage_year` on; `last_name` is the
    surname they were born with).
    """
    first_year = years[0]
    household, head, hh_size = _households(rng, n, cfg)
    k = head.size
    member_of_first = np.arange(n) == head[household]
    sex = rng.choice(np.array(["F", "M", "X"]), n, p=cfg.sex_shares)
    group = rng.choice(len(AGE_BOUNDS), n, p=cfg.age_shares)
    low = np.array([b[0] for b in AGE_BOUNDS])[group]
    high = np.array([b[1] or cfg.max_age + 1 for b in AGE_BOUNDS])[group]
    age_days = ((low + rng.random(n) * (high - low)) * DAYS_PER_YEAR).astype(np.int64)
    twin_a, twin_b = _twins(rng, head, hh_size, n, cfg)
    age_days[twin_b] = age_days[twin_a]
    same_sex = rng.random(twin_a.size) < cfg.twin_same_sex
    sex[twin_b] = np.where(same_sex, sex[twin_a], np.where(sex[twin_a] == "F", "M", "F"))
    female = (sex == "F") | ((sex == "X") & (rng.random(n) < X_FEMALE_NAME))
    name_index = np.where(female, _zipf_index(rng, len(FEMALE), n),
                          _zipf_index(rng, len(MALE), n))
    clash = (female[twin_a] == female[twin_b]) & (name_index[twin_a] == name_index[twin_b])
    pool_size = np.where(female[twin_b], len(FEMALE), len(MALE))
    name_index[twin_b] = np.where(clash, (name_index[twin_b] + 1) % pool_size,
                                  name_index[twin_b])
    first = _pool(FEMALE, np.minimum(name_index, len(FEMALE) - 1)).zip_with(
        pl.Series(female), _pool(MALE, np.minimum(name_index, len(MALE) - 1)))
    shared = member_of_first | (rng.random(n) < cfg.household_shared_surname)
    last = _surnames(rng, k, cfg).gather(household).zip_with(
        pl.Series(shared), _surnames(rng, n, cfg))
    last = last.scatter(twin_b, last.gather(twin_a))
    birth = day(first_year - 1, 12, 31) - age_days  # nobody is born inside the range

    # marriage: a new surname from a year of the range on (never a twin: twins share theirs)
    is_twin = np.zeros(n, dtype=bool)
    is_twin[twin_a] = is_twin[twin_b] = True
    marriage_year = rng.integers(years[min(1, len(years) - 1)], years[-1], n, endpoint=True)
    age_then = (np.array([day(int(y), 7, 1) for y in years])[marriage_year - years[0]]
                - birth) / DAYS_PER_YEAR
    marries = ((sex == "F") & ~is_twin & (age_then >= MARRIAGE_AGES[0])
               & (age_then < MARRIAGE_AGES[1]) & (rng.random(n) < cfg.married_name_change))
    maiden_index = _zipf_index(rng, len(LAST), n)
    same = (_pool(LAST, maiden_index) == last).to_numpy()
    maiden = _pool(LAST, np.where(same, (maiden_index + 1) % len(LAST), maiden_index))
    hyphenate = pl.Series(rng.random(n) < cfg.married_hyphenated)
    married_name = pl.DataFrame({"m": maiden, "l": last}).select(
        pl.concat_str(["m", "l"], separator="-")).to_series().zip_with(hyphenate, last)
    last = maiden.zip_with(pl.Series(marries), last)

    county_h = rng.choice(len(weights), k, p=weights)
    zips_per_county = rng.integers(*cfg.zips_per_county, len(weights), endpoint=True)
    zip_h = ZIP_BASE + county_h * ZIP_STRIDE + (rng.random(k) * zips_per_county[county_h]
                                               ).astype(int)
    county, zip_code = county_h[household], zip_h[household]
    share = cfg.household_shared_need
    need = share * rng.beta(*cfg.need_beta, k)[household] + (1 - share) * rng.beta(
        *cfg.need_beta, n)
    intercept, slope, sd = cfg.employability
    employability = np.clip(intercept - slope * need + rng.normal(0.0, sd, n), *EMPLOYABILITY_CLIP)
    ssn = _twin_ssns(rng, true_ssn_numbers(rng, n), twin_a, twin_b, cfg)
    twin_of = np.full(n, -1, dtype=np.int64)
    twin_of[twin_a], twin_of[twin_b] = twin_b, twin_a
    return pl.DataFrame({
        "pidx": np.arange(n, dtype=np.int32),
        "person_id": pl.select(person_id(pl.int_range(n))).to_series(),
        "first_name": first,
        "last_name": last,
        "married_name": keep_where(married_name, marries),
        "marriage_year": keep_where(marriage_year.astype(np.int32), marries),
        "sex": sex,
        "birth": birth.astype(np.int32),
        "ssn": digits(ssn, 9),
        "county_idx": county.astype(np.int32),
        "county_fips": (STATE_FIPS + digits(2 * county + 1, 3)),
        "zip": digits(zip_code, 5),
        "household_id": "H" + digits(household + 1, HOUSEHOLD_ID_WIDTH),
        "twin_of": keep_where(twin_of, twin_of >= 0),
        "need": need,
        "employability": employability,
    }).with_columns(
        pl.col("birth").cast(pl.Date).alias("birth_date"),
        person_id(pl.col("twin_of")).alias("twin_of"),
    )


def age_group_index(birth: np.ndarray, on_day: int) -> np.ndarray:
    """0, 1 or 2 for 0-17, 18-64, 65+ on a day (age in days / 365.25 is close enough)."""
    age = (on_day - birth) / DAYS_PER_YEAR
    return (age >= AGE_BOUNDS[1][0]).astype(int) + (age >= AGE_BOUNDS[2][0]).astype(int)


def make_population(
    rng: np.random.Generator, persons: pl.DataFrame, weights: np.ndarray,
    counties: pl.DataFrame, years: tuple[int, ...], cfg: SampleConfig,
) -> pl.DataFrame:
    """Residents by county, year and age group: several times the served persons, growing slowly."""
    n_counties = len(weights)
    factor = rng.uniform(*cfg.population_factor, n_counties)
    growth = rng.normal(*cfg.population_growth, n_counties)
    birth = persons["birth"].to_numpy()
    county = persons["county_idx"].to_numpy()
    rows = []
    for i, year in enumerate(years):
        group = age_group_index(birth, day(year, 12, 31))
        served = np.zeros((n_counties, len(AGE_GROUPS)), dtype=np.int64)
        np.add.at(served, (county, group), 1)
        share = np.asarray(cfg.age_shares)[None, :]
        expected = (factor * weights * len(persons) * (1 + growth) ** i)[:, None] * share
        population = np.maximum(np.rint(expected), 2 * served).astype(np.int64)
        rows.append(pl.DataFrame({
            "county_fips": np.repeat(counties["county_fips"].to_numpy(), len(AGE_GROUPS)),
            "year": np.full(population.size, year, dtype=np.int64),
            "age_group": np.tile(np.asarray(AGE_GROUPS), n_counties),
            "population": population.ravel(),
        }))
    return pl.concat(rows)


def make_partnerships(
    rng: np.random.Generator, counties: pl.DataFrame, years: tuple[int, ...], cfg: SampleConfig
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Staggered adoption: cohorts start in years 2, 3, 4; some end; many counties never treated."""
    fips = np.asarray(counties["county_fips"].to_list())
    order = rng.permutation(len(fips))
    last = years[-1]
    partner_ids = [p.org_id for p in PARTNERS]
    rows: list[dict] = []
    treated: dict[str, int] = {}
    cursor = 0
    for cohort, size in enumerate(cfg.cohort_sizes, start=1):
        start = years[cohort]
        for county in fips[order[cursor:cursor + size]]:
            treated[str(county)] = start
            partners = rng.permutation(len(partner_ids))
            starts = [start]
            if rng.random() < cfg.second_partnership_share:
                starts.append(int(rng.integers(start, last, endpoint=True)))
            for k, s in enumerate(starts):
                ends = rng.random() < cfg.partnership_end_share and s + 1 < last
                rows.append({
                    "agency_id": AGENCIES_IN_PARTNERSHIPS[
                        int(rng.random() < cfg.child_welfare_partnership_share)],
                    "partner_id": partner_ids[partners[k]],
                    "county_fips": str(county),
                    "start_year": s,
                    # ends before the last year, so the range shows it has ended
                    "end_year": int(rng.integers(s + 1, last)) if ends else None,
                })
        cursor += size
    frame = pl.DataFrame(rows, schema={
        "agency_id": pl.String, "partner_id": pl.String, "county_fips": pl.String,
        "start_year": pl.Int64, "end_year": pl.Int64,
    }).sort("start_year", "county_fips", "partner_id")
    # at least two partnerships end, so "ended" is always exercised
    ended = frame["end_year"].is_not_null().sum()
    if ended < 2:
        can_end = (frame["end_year"].is_null() & (frame["start_year"] + 1 < last)).to_numpy()
        pick = np.flatnonzero(can_end)[: 2 - ended].tolist()
        frame = frame.with_row_index("_i").with_columns(
            pl.when(pl.col("_i").is_in(pick)).then(pl.col("start_year") + 1)
            .otherwise(pl.col("end_year")).alias("end_year")
        ).drop("_i")
    ids = [f"P{i:03d}" for i in range(1, frame.height + 1)]
    frame = frame.with_columns(pl.Series("partnership_id", ids)).select(
        "partnership_id", "agency_id", "partner_id", "county_fips", "start_year", "end_year")
    return frame, treated


def make_world(
    seed_rng: dict[str, np.random.Generator], scale: int, years: tuple[int, ...],
    cfg: SampleConfig, active: tuple[int, ...] | None = None,
) -> World:
    """The world of a range of years; only `active` ones (default all) get events and files."""
    active = active or years
    counties, weights = make_counties(seed_rng["counties"], cfg)
    persons = make_persons(seed_rng["persons"], scale, years, weights, cfg)
    population = make_population(seed_rng["population"], persons, weights, counties, years, cfg)
    population = population.filter(pl.col("year").is_in(active))
    partnerships, treated = make_partnerships(seed_rng["partnerships"], counties, years, cfg)
    offset = seed_rng["counties"].normal(0.0, cfg.reach_county_sd, counties.height)
    return World(years, counties, persons, population, partnerships, treated, offset, active)
