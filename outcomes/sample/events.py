"""True events: public spells, nonprofit enrollments, client surveys, wages, partnership surveys.

Loops run over years, quarters, programs and rounds, never over persons: each
step draws for every person at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl

from outcomes.sample.config import DCF, DHS, NAICS, PARTNERS, SampleConfig
from outcomes.sample.util import day, digits, keep_where, year_of
from outcomes.sample.world import DAYS_PER_YEAR, World
from outcomes.schema import ACCELERANTS, EXIT_REASONS, PROGRAMS, ROLES

NEVER = np.int64(10**9)  # a day far beyond any range: "open-ended" or "not pending"
MIN_DAYS, MAX_DAYS = 30, 3650  # spell and enrollment durations
MAX_ROUNDS = 6  # TANF returns within one year
MAX_YEARLY_RATE = 0.9  # even the neediest person does not start a spell every year
ADULT, TANF_MAX_AGE, SENIOR, FOSTER_MAX_AGE, WORK_AGE = 18, 60, 65, 17, 16
MEDICAID_SENIOR_FACTOR = 0.5
PUBLIC_BENEFITS = ("SNAP", "TANF", "MEDICAID")
SPELL_ORG = {p: (DCF if p == "FOSTER_CARE" else DHS).org_id for p in PROGRAMS["spells"]}
FOLLOWUP_DROPPED_FACTOR = 0.5  # clients who dropped out answer follow-ups less often
WELLBEING_BASE, WELLBEING_GAIN, WELLBEING_SD = 4.8, 0.7, 2.0
WELLBEING_RANGE = (0, 10)
WAGE_QUARTER_SD = 0.15
SECOND_JOB_SHARE_OF_WAGE = 0.3
TEEN_EMPLOYMENT = 0.3
WAGE_FLOOR = 0.5  # quarterly earnings level ~ wage_median * (WAGE_FLOOR + employability)


def _durations(rng: np.random.Generator, median: float | np.ndarray, sigma: float,
               n: int) -> np.ndarray:
    return np.clip(rng.lognormal(np.log(median), sigma, n), MIN_DAYS, MAX_DAYS).astype(np.int64)


def _eligibility(program: str, age: np.ndarray) -> np.ndarray:
    if program == "TANF":
        return (age < TANF_MAX_AGE).astype(float)
    if program == "MEDICAID":
        return np.where(age >= SENIOR, MEDICAID_SENIOR_FACTOR, 1.0)
    if program == "FOSTER_CARE":
        return (age < FOSTER_MAX_AGE).astype(float)
    return np.ones_like(age)


def make_spells(rng: np.random.Generator, world: World, cfg: SampleConfig) -> pl.DataFrame:
    """Public spells per program: starts by need, one spell of a program at a time, TANF returns."""
    persons = world.persons
    birth = persons["birth"].to_numpy().astype(np.int64)
    need = persons["need"].to_numpy()
    rel_need = need / need.mean()
    n = len(birth)
    last_day = world.last_day
    parts: list[pl.DataFrame] = []
    for program in PROGRAMS["spells"]:
        busy = np.full(n, -NEVER)  # last day of the person's latest spell
        pending = np.full(n, NEVER)  # day a TANF return spell starts
        for year in world.active:
            d0, d1 = day(year), day(year, 12, 31)
            age = (d0 + (d1 - d0) / 2 - birth) / DAYS_PER_YEAR
            rate = np.clip(cfg.spell_rate[program] * rel_need * _eligibility(program, age),
                           0.0, MAX_YEARLY_RATE)
            start = d0 + rng.integers(0, d1 - d0 + 1, n)
            fresh = (rng.random(n) < rate) & (start > busy + cfg.min_gap_days) & (pending > d1)
            take, take_start = np.flatnonzero(fresh), start[fresh]
            for _ in range(MAX_ROUNDS):
                back = np.flatnonzero((pending >= d0) & (pending <= d1))
                idx = np.concatenate([take, back])
                if idx.size == 0:
                    break
                st = np.concatenate([take_start, pending[back]])
                pending[back] = NEVER
                end = st + _durations(rng, cfg.spell_median_days[program], cfg.duration_sigma,
                                      idx.size)
                if program == "FOSTER_CARE":  # children age out at 18
                    end = np.minimum(end, birth[idx] + int(ADULT * DAYS_PER_YEAR))
                is_open = end > last_day
                busy[idx] = np.where(is_open, NEVER, end)
                if program == "TANF":
                    returns = ~is_open & (rng.random(idx.size) < cfg.tanf_return_share)
                    gap = rng.integers(*cfg.tanf_return_gap_days, idx.size, endpoint=True)
                    pending[idx[returns]] = end[returns] + gap[returns]
                if program in cfg.benefit_range:
                    benefit = np.round(rng.uniform(*cfg.benefit_range[program], idx.size), 2)
                else:  # MEDICAID pays providers, not the person
                    benefit = np.full(idx.size, np.nan)
                benefit[rng.random(idx.size) < cfg.benefit_missing] = np.nan
                parts.append(pl.DataFrame({
                    "pidx": idx.astype(np.int32),
                    "program": np.full(idx.size, program),
                    "start": st.astype(np.int32),
                    "end": keep_where(end.astype(np.int32), ~is_open),
                    "benefit": pl.Series(benefit).fill_nan(None),
                }))
                take, take_start = np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    spells = pl.concat(parts)
    return spells.with_columns(
        pl.Series("year", year_of(spells["start"].to_numpy()).astype(np.int32)),
        pl.col("program").replace_strict(SPELL_ORG).alias("org_id"),
    ).sort("year", "start", "pidx", "program")


def _active_people(rows: pl.DataFrame, n: int, d0: int, d1: int,
                   programs: tuple[str, ...] = PUBLIC_BENEFITS) -> np.ndarray:
    """Persons with a spell or enrollment of these programs active in [d0, d1]."""
    active = rows.filter(
        pl.col("program").is_in(programs) & (pl.col("start") <= d1)
        & (pl.col("end").is_null() | (pl.col("end") >= d0))
    )["pidx"].to_numpy()
    flag = np.zeros(n, dtype=bool)
    flag[active] = True
    return flag


def reach_target(world: World, cfg: SampleConfig, year_index: int) -> np.ndarray:
    """Planted cross_sector_reach per county: level + common trend + effect once treated."""
    year = world.years[year_index]
    treated = np.array([world.treated.get(f, 10**6) <= year for f in world.county_fips])
    return (cfg.reach_base + world.county_offset + cfg.reach_trend * year_index
            + cfg.reach_effect * treated)


def _choose_programs(rng: np.random.Generator, child: np.ndarray, cfg: SampleConfig) -> np.ndarray:
    names = np.asarray(PROGRAMS["services"])
    weights = np.array([cfg.program_weights[p] for p in names])
    program = names[rng.choice(len(names), child.size, p=weights / weights.sum())]
    adult_only = weights * (names != "WORKFORCE")
    redraw = child & (program == "WORKFORCE")
    program[redraw] = names[rng.choice(len(names), redraw.sum(), p=adult_only / adult_only.sum())]
    return program


def _choose_partners(
    rng: np.random.Generator, program: np.ndarray, cfg: SampleConfig
) -> np.ndarray:
    partner = np.empty(program.size, dtype=object)
    for name in PROGRAMS["services"]:
        offer = [p.org_id for p in PARTNERS if name in p.programs]
        weights = np.array([cfg.partner_weights[o] for o in offer])
        rows = program == name
        partner[rows] = np.asarray(offer, dtype=object)[
            rng.choice(len(offer), rows.sum(), p=weights / weights.sum())]
    return partner.astype(str)


def _exact_share(rng: np.random.Generator, candidate: np.ndarray, group: np.ndarray,
                 n_groups: int, wanted: np.ndarray) -> np.ndarray:
    """Exactly round(wanted[g]) random candidates of each group g (as many as there are).

    Exact counts rather than coin flips keep the planted effect free of sampling noise.
    """
    idx = np.flatnonzero(candidate)
    available = np.bincount(group[idx], minlength=n_groups)
    take = np.clip(np.rint(wanted), 0, available).astype(np.int64)
    ordered = idx[np.lexsort((rng.random(idx.size), group[idx]))]  # by group, then at random
    g = group[ordered]
    rank = np.arange(ordered.size) - np.searchsorted(g, g, side="left")
    chosen = np.zeros(candidate.size, dtype=bool)
    chosen[ordered[rank < take[g]]] = True
    return chosen


def make_enrollments(
    rng: np.random.Generator, world: World, spells: pl.DataFrame, cfg: SampleConfig
) -> pl.DataFrame:
    """Enrollments, calibrated so that reach among benefit persons hits the planted target."""
    persons = world.persons
    n = persons.height
    county = persons["county_idx"].to_numpy()
    birth = persons["birth"].to_numpy().astype(np.int64)
    need = persons["need"].to_numpy()
    rel_need = need / need.mean()
    n_counties = world.counties.height
    last_day = world.last_day
    active_until = np.full(n, -NEVER)
    parts: list[pl.DataFrame] = []
    for i, year in enumerate(world.years):
        if year not in world.active:
            continue
        d0, d1 = day(year), day(year, 12, 31)
        on_benefit = _active_people(spells, n, d0, d1)
        already = active_until >= d0
        n_benefit = np.bincount(county[on_benefit], minlength=n_counties)
        n_already = np.bincount(county[on_benefit & already], minlength=n_counties)
        wanted = reach_target(world, cfg, i) * n_benefit - n_already  # new enrollees per county
        join = _exact_share(rng, on_benefit & ~already, county, n_counties, wanted)
        join |= ~on_benefit & ~already & (rng.random(n) < cfg.background_enroll * rel_need)
        who = np.flatnonzero(join)
        start = d0 + rng.integers(0, d1 - d0 + 1, who.size)
        child = (start - birth[who]) / DAYS_PER_YEAR < WORK_AGE
        program = _choose_programs(rng, child, cfg)
        # a share also enrols, soon after, in another program (often with another partner)
        co = rng.random(who.size) < cfg.co_enroll
        co_program = _choose_programs(rng, child[co], cfg)
        keep = co_program != program[co]
        co_who = who[co][keep]
        delay = rng.integers(0, cfg.co_enroll_within_days, keep.sum())
        co_start = np.minimum(start[co][keep] + delay, d1)
        who = np.concatenate([who, co_who])
        start = np.concatenate([start, co_start])
        program = np.concatenate([program, co_program[keep]])
        partner = _choose_partners(rng, program, cfg)
        median = np.select([program == p for p in PROGRAMS["services"]],
                           [cfg.enroll_median_days[p] for p in PROGRAMS["services"]])
        end = start + _durations(rng, median, cfg.duration_sigma, who.size)
        is_open = end > last_day
        np.maximum.at(active_until, who, np.where(is_open, NEVER, end))
        reason = np.asarray(EXIT_REASONS)[rng.choice(len(EXIT_REASONS), who.size,
                                                     p=cfg.exit_reason_shares)]
        household = np.minimum(1 + rng.poisson(cfg.household_mean_extra, who.size),
                               cfg.household_max)
        parts.append(pl.DataFrame({
            "pidx": who.astype(np.int32),
            "partner": partner,
            "program": program,
            "start": start.astype(np.int32),
            "end": keep_where(end.astype(np.int32), ~is_open),
            "exit_reason": keep_where(reason, ~is_open),
            "household_size": keep_where(household.astype(np.int64),
                                         rng.random(who.size) >= cfg.household_missing),
            "year": np.full(who.size, year, dtype=np.int32),
        }))
    enrollments = pl.concat(parts).sort("year", "start", "pidx", "program")
    return enrollments.with_row_index("key")


def true_reach(world: World, spells: pl.DataFrame, enrollments: pl.DataFrame) -> pl.DataFrame:
    """cross_sector_reach of the true persons per county and year, before noise and bad rows."""
    n = world.persons.height
    county = world.persons["county_idx"].to_numpy()
    n_counties = world.counties.height
    rows = []
    for year in world.active:
        d0, d1 = day(year), day(year, 12, 31)
        benefit = _active_people(spells, n, d0, d1)
        enrolled = _active_people(enrollments, n, d0, d1, PROGRAMS["services"])
        rows.append(pl.DataFrame({
            "county_fips": world.county_fips,
            "year": np.full(n_counties, year, dtype=np.int64),
            "numerator": np.bincount(county[benefit & enrolled], minlength=n_counties),
            "denominator": np.bincount(county[benefit], minlength=n_counties),
        }))
    return pl.concat(rows).with_columns(value=pl.col("numerator") / pl.col("denominator"))


def make_client_surveys(
    rng: np.random.Generator, enrollments: pl.DataFrame, world: World, cfg: SampleConfig
) -> pl.DataFrame:
    """BASELINE near enrollment, 6- and 12-month follow-ups; outcomes improve with time."""
    last_day = world.last_day
    m = enrollments.height
    start = enrollments["start"].to_numpy().astype(np.int64)
    dropped = (enrollments["exit_reason"] == "DROPPED").fill_null(False).to_numpy()
    completed = (enrollments["exit_reason"] == "COMPLETED").fill_null(False).to_numpy()
    housing = (enrollments["program"] == "HOUSING").to_numpy()
    parts = []
    for wave_index, (wave, share, offset, jitter) in enumerate(cfg.wave_plan):
        answer = share * np.where(dropped & (wave_index > 0), FOLLOWUP_DROPPED_FACTOR, 1.0)
        take = rng.random(m) < answer
        date = start + offset + rng.integers(0, jitter + 1, m)
        take &= date <= last_day
        rows = np.flatnonzero(take)
        k = rows.size
        gain = cfg.outcome_gain_per_wave * wave_index
        values = {}
        for outcome, base in cfg.outcome_base.items():
            helped = housing[rows] if outcome == "housing_stable" else completed[rows]
            p = base + gain + cfg.outcome_program_bonus * (wave_index > 0) * helped
            values[outcome] = keep_where(rng.random(k) < p, rng.random(k) >= cfg.outcome_missing)
        wellbeing = np.clip(np.rint(rng.normal(WELLBEING_BASE + WELLBEING_GAIN * wave_index,
                                               WELLBEING_SD, k)), *WELLBEING_RANGE).astype(np.int64)
        parts.append(pl.DataFrame({
            "key": enrollments["key"].to_numpy()[rows],
            "survey_day": date[rows].astype(np.int32),
            "wave": np.full(k, wave),
            **values,
            "wellbeing": keep_where(wellbeing, rng.random(k) >= cfg.outcome_missing),
        }))
    surveys = pl.concat(parts).join(
        enrollments.select("key", "pidx", "partner"), on="key", how="left")
    return surveys.with_columns(
        pl.Series("year", year_of(surveys["survey_day"].to_numpy()).astype(np.int32))
    ).sort("year", "survey_day", "key", "wave")


def _first_workforce_exit(
    world: World, enrollments: pl.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Per person: quarter index (from the range start) of the first WORKFORCE exit; completed?"""
    n = world.persons.height
    exits = (
        enrollments.filter((pl.col("program") == "WORKFORCE") & pl.col("end").is_not_null())
        .sort("end", "key").unique("pidx", keep="first", maintain_order=True)
    )
    quarter = np.full(n, np.iinfo(np.int64).max // 2)
    completed = np.zeros(n, dtype=bool)
    if exits.height:
        end = exits["end"].to_numpy().astype("datetime64[D]")
        year = end.astype("datetime64[Y]").astype(np.int64) + 1970
        month = end.astype("datetime64[M]").astype(np.int64) % 12
        pidx = exits["pidx"].to_numpy()
        quarter[pidx] = (year - world.years[0]) * 4 + month // 3
        completed[pidx] = (exits["exit_reason"] == "COMPLETED").to_numpy()
    return quarter, completed


def iter_wages(
    rng: np.random.Generator, world: World, enrollments: pl.DataFrame, cfg: SampleConfig
) -> Iterator[tuple[int, pl.DataFrame]]:
    """Quarterly wage records per year; a workforce exit raises employment in later quarters."""
    persons = world.persons
    n = persons.height
    birth = persons["birth"].to_numpy().astype(np.int64)
    employability = persons["employability"].to_numpy()
    n_employers = max(n // cfg.employer_per_persons, 30)
    size = 1.0 / (np.arange(n_employers) + 5.0)
    size /= size.sum()
    employer = rng.choice(n_employers, n, p=size)
    employer_naics = rng.choice(len(NAICS), n_employers)
    level = (cfg.wage_median * (WAGE_FLOOR + employability)
             * rng.lognormal(0.0, cfg.wage_sigma, n))
    exit_quarter, completed = _first_workforce_exit(world, enrollments)
    boost = np.where(completed, cfg.workforce_boost_completed, cfg.workforce_boost_other)
    for i, year in enumerate(world.years):
        if year not in world.active:
            continue
        switch = rng.random(n) < cfg.employer_switch
        employer = np.where(switch, rng.choice(n_employers, n, p=size), employer)
        parts = []
        for quarter in range(1, 5):
            q_index = i * 4 + quarter - 1
            mid = day(year, 3 * quarter - 1, 15)
            age = (mid - birth) / DAYS_PER_YEAR
            factor = np.select([age < WORK_AGE, age < ADULT, age < SENIOR],
                               [0.0, TEEN_EMPLOYMENT, 1.0], cfg.senior_employment)
            p = employability * factor + np.where(
                (q_index > exit_quarter) & (age >= ADULT), boost, 0.0)
            who = np.flatnonzero(rng.random(n) < p)
            pay = level[who] * rng.lognormal(0.0, WAGE_QUARTER_SD, who.size)
            second = who[rng.random(who.size) < cfg.second_job]
            parts.append(pl.DataFrame({
                "pidx": np.concatenate([who, second]).astype(np.int32),
                "quarter": np.full(who.size + second.size, quarter, dtype=np.int64),
                "employer": np.concatenate([employer[who], rng.choice(n_employers, second.size)]),
                "wages": np.round(np.concatenate([
                    pay, level[second] * SECOND_JOB_SHARE_OF_WAGE * rng.lognormal(
                        0.0, WAGE_QUARTER_SD, second.size)]), 2),
            }))
        wages = pl.concat(parts).sort("quarter", "pidx", "employer")
        # numbers only: the file builder formats them, so a year's rows are held once as text
        wages = wages.with_columns(
            pl.Series("naics", employer_naics[wages["employer"].to_numpy()], dtype=pl.Int32))
        yield year, wages


def make_partnership_surveys(
    rng: np.random.Generator, world: World, cfg: SampleConfig
) -> dict[int, pl.DataFrame]:
    """Several AGENCY and NONPROFIT respondents per active partnership; maturity rises with time."""
    ps = world.partnerships
    base = rng.normal(*cfg.maturity_base, ps.height)
    start = ps["start_year"].to_numpy()
    end = ps["end_year"].fill_null(world.years[-1]).to_numpy()
    out: dict[int, pl.DataFrame] = {}
    for year in world.active:
        active = np.flatnonzero((start <= year) & (end >= year))
        if active.size == 0:
            continue
        count = rng.integers(*cfg.respondents, active.size, endpoint=True)
        which = np.repeat(active, count)
        k = which.size
        level = (base[which] + cfg.maturity_growth * (year - start[which])
                 + rng.normal(0.0, cfg.respondent_sd, k))
        ratings = {}
        for name in ACCELERANTS:
            r = np.clip(np.rint(level + rng.normal(0.0, cfg.rating_noise, k)), 1, 5).astype(int)
            keep = rng.random(k) >= cfg.rating_missing
            ratings[name] = keep_where(r.astype(str), keep)
        out[year] = pl.DataFrame({
            "response_id": f"PS{year}-" + digits(np.arange(1, k + 1), 4),
            "partnership_id": ps["partnership_id"].to_numpy()[which],
            "respondent_role": np.asarray(ROLES)[rng.integers(0, len(ROLES), k)],
            **ratings,
        })
    return out
