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
from outcomes.sample.names import FEMALE, LAST, MALE, ZIPF_SHIFT
from outcomes.sample.util import day, digits, person_id, true_ssns
from outcomes.schema import AGE_GROUPS

DAYS_PER_YEAR = 365.25
AGE_BOUNDS = ((0, 18), (18, 65), (65, None))  # the population age groups, in years
EMPLOYABILITY_CLIP = (0.05, 0.97)
X_FEMALE_NAME = 0.5  # persons of sex X get a first name from either pool


@dataclass(frozen=True)
class World:
    years: tuple[int, ...]
    counties: pl.DataFrame  # county_fips, county_name, state_abbr
    persons: pl.DataFrame  # truth: one row per true person
    population: pl.DataFrame
    partnerships: pl.DataFrame
    treated: dict[str, int]  # county_fips -> first partnership start_year
    county_offset: np.ndarray  # county's own level of cross-sector reach

    @property
    def county_fips(self) -> list[str]:
        return self.counties["county_fips"].to_list()


def _zipf(rng: np.random.Generator, pool: tuple[str, ...], n: int) -> np.ndarray:
    weights = 1.0 / (np.arange(len(pool)) + ZIPF_SHIFT)
    return np.asarray(pool, dtype=object)[rng.choice(len(pool), n, p=weights / weights.sum())]


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


def make_persons(
    rng: np.random.Generator, n: int, first_year: int, weights: np.ndarray, cfg: SampleConfig
) -> pl.DataFrame:
    """The served population: true names, sex, birth date, SSN, county and latent need."""
    sex = rng.choice(np.array(["F", "M", "X"]), n, p=cfg.sex_shares)
    female = (sex == "F") | ((sex == "X") & (rng.random(n) < X_FEMALE_NAME))
    first = np.where(female, _zipf(rng, FEMALE, n), _zipf(rng, MALE, n))
    last = _zipf(rng, LAST, n)
    hyphen = rng.random(n) < cfg.hyphenated_last_name
    last = np.where(hyphen, last + "-" + _zipf(rng, LAST, n), last)
    group = rng.choice(len(AGE_BOUNDS), n, p=cfg.age_shares)
    low = np.array([b[0] for b in AGE_BOUNDS])[group]
    high = np.array([b[1] or cfg.max_age + 1 for b in AGE_BOUNDS])[group]
    age_days = ((low + rng.random(n) * (high - low)) * DAYS_PER_YEAR).astype(np.int64)
    birth = day(first_year - 1, 12, 31) - age_days  # nobody is born inside the range
    county = rng.choice(len(weights), n, p=weights)
    zips_per_county = rng.integers(*cfg.zips_per_county, len(weights), endpoint=True)
    zip_index = (rng.random(n) * zips_per_county[county]).astype(int)
    zip_code = ZIP_BASE + county * ZIP_STRIDE + zip_index
    need = rng.beta(*cfg.need_beta, n)
    intercept, slope, sd = cfg.employability
    employability = np.clip(intercept - slope * need + rng.normal(0.0, sd, n), *EMPLOYABILITY_CLIP)
    return pl.DataFrame({
        "pidx": np.arange(n, dtype=np.int32),
        "person_id": pl.select(person_id(pl.int_range(n))).to_series(),
        "first_name": first.astype(str),
        "last_name": last.astype(str),
        "sex": sex,
        "birth": birth.astype(np.int32),
        "ssn": true_ssns(rng, n),
        "county_idx": county.astype(np.int32),
        "county_fips": (STATE_FIPS + digits(2 * county + 1, 3)),
        "zip": digits(zip_code, 5),
        "need": need,
        "employability": employability,
    }).with_columns(pl.col("birth").cast(pl.Date).alias("birth_date"))


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
    cfg: SampleConfig,
) -> World:
    counties, weights = make_counties(seed_rng["counties"], cfg)
    persons = make_persons(seed_rng["persons"], scale, years[0], weights, cfg)
    population = make_population(seed_rng["population"], persons, weights, counties, years, cfg)
    partnerships, treated = make_partnerships(seed_rng["partnerships"], counties, years, cfg)
    offset = seed_rng["counties"].normal(0.0, cfg.reach_county_sd, counties.height)
    return World(years, counties, persons, population, partnerships, treated, offset)
