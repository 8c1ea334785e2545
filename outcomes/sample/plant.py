"""Bad rows: every rule of contract sections 1 and 2, planted rarely and recorded exactly.

A file's rows arrive here as canonical strings (what a CSV would hold) with
truth columns `_pidx`, `_planted` and `_noise`. Planting picks clean rows,
breaks exactly one rule in each, adds identical and conflicting duplicates,
and never lets the quarantined share of a file pass `max_bad_share`. Kinds
are cycled with a running cursor per source, so small samples still cover
every kind across their files; unparseable kinds go first to files that can
hold them (not typed Parquet).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import polars as pl

from outcomes.sample.config import ZIP_BASE, SampleConfig
from outcomes.sample.identity import PLACEHOLDER_CHOICES, _ssn_never_issued, _ssn_partial
from outcomes.sample.util import day, digits, iso

DUPLICATE_IDENTICAL = "duplicate_identical"
DUPLICATE_RECORD_ID = "duplicate_record_id"
TRUTH_COLUMNS = ("_pidx", "_planted", "_noise", "_key")

KINDS: dict[str, tuple[str, ...]] = {
    "spells": (
        "start_date:wrong_year", "birth_date:future", "county_fips:unknown", "sex:invalid",
        "end_date:before_start", "record_id:missing", "program:invalid",
        "monthly_benefit:negative", "birth_date:unparseable", "zip:invalid",
        "start_date:missing", "person_id:missing", "birth_date:before_1900",
        "monthly_benefit:unparseable", "first_name:missing", "county_fips:missing",
        "end_date:unparseable", "sex:missing", "start_date:unparseable", "last_name:missing",
        "program:missing", "birth_date:missing",
    ),
    "wages": (
        "ssn:placeholder", "wages:negative", "quarter:out_of_range", "year:wrong_year",
        "ssn:never_issued", "record_id:missing", "ssn:partial", "employer_id:missing",
        "wages:unparseable", "ssn:missing", "quarter:unparseable", "wages:missing",
        "year:unparseable", "quarter:missing", "year:missing",
    ),
    "services": (
        "enroll_date:wrong_year", "county_fips:unknown", "exit_date:before_start",
        "household_size:out_of_range", "program:invalid", "birth_date:future",
        "record_id:missing", "exit_reason:invalid", "sex:invalid", "zip:invalid",
        "client_id:missing", "enroll_date:unparseable", "birth_date:before_1900",
        "first_name:missing", "household_size:unparseable", "county_fips:missing",
        "exit_date:unparseable", "enroll_date:missing", "birth_date:unparseable",
        "last_name:missing", "program:missing",
    ),
    "client_surveys": (
        "client_id:unknown", "wellbeing:out_of_range", "wave:invalid", "survey_date:wrong_year",
        "response_id:missing", "housing_stable:unparseable", "survey_date:unparseable",
        "client_id:missing", "wellbeing:unparseable", "wave:missing", "survey_date:missing",
    ),
    "partnership_surveys": (
        "roles_clarity:out_of_range", "partnership_id:unknown", "respondent_role:invalid",
        "response_id:missing", "trust_transparency:unparseable", "partnership_id:missing",
        "shared_vision:out_of_range", "respondent_role:missing",
    ),
}

DATE_COLUMNS = {"birth_date", "start_date", "end_date", "enroll_date", "exit_date",
                "survey_date"}
FLOAT_COLUMNS = {"monthly_benefit", "wages"}
BOOL_COLUMNS = {"housing_stable", "food_secure", "employed"}
START_OF = {"end_date": "start_date", "exit_date": "enroll_date"}
UNPARSEABLE_DATE = ("{y}-02-30", "{y}-02-31", "{y}-04-31", "{y}-13-01", "{y}-00-15",
                    "{y}-11-31")
UNPARSEABLE_NUMBER = ("12O.50", "4..5", "#VALUE!", "1.2.3")
UNPARSEABLE_INT = ("two", "3..", "x4", "#VALUE!")
UNPARSEABLE_BOOL = ("maybe", "unsure", "sometimes")
INVALID_CODES = {
    "sex": ("Q", "Z", "FEM", "MALE?"),
    "program": ("SNAPP", "WIC", "CHILD_CARE", "UNKNOWN"),
    "exit_reason": ("GRADUATED", "MOVED", "DECEASED?"),
    "wave": ("FOLLOWUP_3M", "EXIT", "INTAKE2"),
    "respondent_role": ("FUNDER", "CLIENT", "BOARD"),
}
SERVICES_PROGRAM_INVALID = ("RENT", "EMPLOYMENT", "MENTAL_HEALTH", "CHILD_CARE")
OUT_OF_RANGE = {
    "quarter": ("0", "5", "6"),
    "household_size": ("0", "21", "25", "-1"),
    "wellbeing": ("11", "12", "-1", "15"),
}
RATING_OUT_OF_RANGE = ("0", "6", "7")
UNKNOWN_COUNTIES = ("99999", "99998", "55025", "17031")
UNKNOWN_PARTNERSHIPS = ("P999", "P-12", "PS07")
UNKNOWN_CLIENT_BASE = 9_000_000  # above any client number the generator hands out
FUTURE_YEARS, OLD_YEARS = (2090, 2120), (1850, 1899)
WRONG_YEAR_SHIFT = 1
BEFORE_START_DAYS = (1, 90)
NEGATIVE_AMOUNT = (5.0, 500.0)
# the column a conflicting duplicate changes, so both rows stay valid but differ
CONFLICT_COLUMN = {
    "spells": "monthly_benefit", "wages": "wages", "services": "household_size",
    "client_surveys": "wellbeing", "partnership_surveys": "roles_clarity",
}
CONFLICT_DEFAULT = {"monthly_benefit": "150.0", "household_size": "2", "wellbeing": "5",
                    "roles_clarity": "3"}


@dataclass(frozen=True)
class FileContext:
    source: str
    year: int
    id_prefix: str = ""  # the organisation's client id prefix (client_id:unknown)
    unparseable: bool = True  # False for typed Parquet, which cannot hold such values


def quarantined(source: str, planted: pl.Expr) -> pl.Expr:
    """Whether a planted code sends the row to quarantine (contract section 2)."""
    kept_ssn = planted.str.starts_with("ssn:") & pl.lit(source in ("spells", "services"))
    return (planted.is_not_null() & (planted != DUPLICATE_IDENTICAL) & ~kept_ssn).fill_null(False)


def _random_dates(rng: np.random.Generator, years: tuple[int, int], m: int) -> pl.Series:
    days = rng.integers(day(years[0]), day(years[1], 12, 31) + 1, m)
    return pl.select(iso(pl.lit(pl.Series(days)))).to_series()


def _new_values(code: str, sub: pl.DataFrame, rng: np.random.Generator,
                ctx: FileContext) -> pl.Series:
    """The broken values for one kind of bad row, one per row of sub."""
    column, problem = code.split(":")
    m = sub.height

    def pick(options: tuple[str, ...]) -> pl.Series:
        return pl.Series(np.asarray(options)[rng.integers(0, len(options), m)])

    y = ctx.year
    if problem == "missing":
        return pl.Series([None] * m, dtype=pl.String)
    if problem == "unparseable":
        if column in DATE_COLUMNS:
            return pick(tuple(t.format(y=y) for t in UNPARSEABLE_DATE))
        if column in FLOAT_COLUMNS:
            return pick(UNPARSEABLE_NUMBER)
        if column in BOOL_COLUMNS:
            return pick(UNPARSEABLE_BOOL)
        return pick(UNPARSEABLE_INT)
    if problem == "future":
        return _random_dates(rng, FUTURE_YEARS, m)
    if problem == "before_1900":
        return _random_dates(rng, OLD_YEARS, m)
    if problem == "invalid" and column == "zip":
        zips = digits(ZIP_BASE + rng.integers(0, 1000, m), 5)
        kind = rng.integers(0, 3, m)
        return pl.DataFrame({"z": zips, "k": kind}).select(
            pl.when(pl.col("k") == 0).then(pl.col("z").str.slice(0, 4))
            .when(pl.col("k") == 1).then(pl.col("z") + "1")
            .otherwise(pl.col("z").str.slice(0, 2) + "O" + pl.col("z").str.slice(3, 2))
        ).to_series()
    if problem == "invalid":
        if column == "program" and ctx.source == "services":
            return pick(SERVICES_PROGRAM_INVALID)
        return pick(INVALID_CODES[column])
    if problem == "unknown":
        if column == "county_fips":
            return pick(UNKNOWN_COUNTIES)
        if column == "partnership_id":
            return pick(UNKNOWN_PARTNERSHIPS)
        return ctx.id_prefix + digits(UNKNOWN_CLIENT_BASE + rng.integers(0, 999_999, m), 7)
    if problem == "wrong_year":
        if column == "year":
            return pl.Series([str(y - WRONG_YEAR_SHIFT)] * m)
        # earlier, so an end or exit date stays after the start
        return _random_dates(rng, (y - WRONG_YEAR_SHIFT, y - WRONG_YEAR_SHIFT), m)
    if problem == "before_start":
        start = sub[START_OF[column]].str.to_date("%Y-%m-%d").cast(pl.Int32).to_numpy()
        days = start - rng.integers(*BEFORE_START_DAYS, m, endpoint=True)
        return pl.select(iso(pl.lit(pl.Series(days)))).to_series()
    if problem == "negative":
        amount = np.round(rng.uniform(*NEGATIVE_AMOUNT, m), 2)
        return pl.Series(-amount).cast(pl.String)
    if problem == "out_of_range":
        return pick(OUT_OF_RANGE.get(column, RATING_OUT_OF_RANGE))
    if problem == "partial":
        return _ssn_partial(rng, sub["ssn"])
    if problem == "placeholder":
        return pick(PLACEHOLDER_CHOICES)
    if problem == "never_issued":
        return _ssn_never_issued(rng, sub["ssn"])
    raise ValueError(f"no maker for planted code {code}")


def _conflict(sub: pl.DataFrame, source: str) -> pl.DataFrame:
    """Copies of sub that keep the record_id but change one valid value."""
    column = CONFLICT_COLUMN[source]
    c = pl.col(column)
    if column in FLOAT_COLUMNS:
        changed = (c.cast(pl.Float64) + 25.0).round(2).cast(pl.String)
    elif column == "household_size":
        changed = (c.cast(pl.Int64) % 20 + 1).cast(pl.String)
    elif column == "wellbeing":
        changed = ((c.cast(pl.Int64) + 1) % 11).cast(pl.String)
    else:  # a 1-5 rating
        changed = (c.cast(pl.Int64) % 5 + 1).cast(pl.String)
    default = CONFLICT_DEFAULT.get(column, "1")
    return sub.with_columns(changed.fill_null(pl.lit(default)).alias(column))


class Planter:
    """Plants bad rows file by file; keeps a running cursor per source over its kinds."""

    def __init__(self, cfg: SampleConfig) -> None:
        self.cfg = cfg
        self.cursor: dict[str, int] = defaultdict(int)
        # unparseable kinds owed: the first files that can hold them (not typed Parquet) plant
        # them first, and a kind a typed Parquet file skipped waits for the next such file
        self.pending: dict[str, list[str]] = {
            source: [k for k in kinds if k.endswith(":unparseable")]
            for source, kinds in KINDS.items()}
        self.early: dict[str, set[str]] = defaultdict(set)

    def budget(self, n: int, source: str) -> tuple[int, int, int]:
        """(rule breaks, conflicting duplicate pairs, identical duplicates) for n clean rows."""
        cfg = self.cfg
        cap = int(n * cfg.max_bad_share)
        rate = cfg.rule_rate_by_source.get(source, cfg.rule_rate)
        rules = min(cap, max(1, round(n * rate))) if cap else 0
        conflicts = min((cap - rules) // 2, max(1, round(n * cfg.duplicate_record_id_rate)))
        identical = (max(1, round(n * cfg.duplicate_identical_rate))
                     if n >= cfg.min_rows_for_duplicate else 0)
        return rules, conflicts, identical

    def _next_kinds(self, ctx: FileContext, count: int) -> list[str]:
        """The next kinds in the source's cycle, skipping those the file's format cannot hold."""
        kinds = KINDS[ctx.source]
        pending, early = self.pending[ctx.source], self.early[ctx.source]
        codes: list[str] = []
        if ctx.unparseable:
            codes, pending[:] = pending[:count], pending[count:]
            early.update(codes)
        while len(codes) < count:
            code = kinds[self.cursor[ctx.source] % len(kinds)]
            self.cursor[ctx.source] += 1
            if code in early:  # planted ahead of its turn: its turn is spent
                early.discard(code)
            elif ctx.unparseable or not code.endswith(":unparseable"):
                codes.append(code)
            elif code not in pending:
                pending.append(code)
        return codes

    def plant(self, frame: pl.DataFrame, ctx: FileContext,
              rng: np.random.Generator) -> tuple[pl.DataFrame, np.ndarray]:
        """frame plus planted rows, with `_planted` set and `_dup` grouping identical copies.

        Returns the rows and which of them to keep: a row that was changed into a bad
        row is appended changed and its original not kept, so a large file is not
        copied here (the shuffle copies it once).
        """
        frame = frame.with_columns(pl.lit(None, pl.Int64).alias("_dup"))
        clean = np.flatnonzero(frame["_planted"].is_null().to_numpy())
        rules, conflicts, identical = self.budget(frame.height, ctx.source)
        total = min(rules + conflicts + identical, clean.size)
        rules = min(rules, total)
        conflicts = min(conflicts, (total - rules))
        identical = total - rules - conflicts
        chosen = rng.choice(clean, total, replace=False) if total else clean[:0]
        parts = [frame]

        codes = np.asarray(self._next_kinds(ctx, rules), dtype=object).astype(str)
        bad = frame[chosen[:rules]].with_columns(pl.Series("_planted", codes, dtype=pl.String))
        for code in dict.fromkeys(codes.tolist()):
            rows = np.flatnonzero(codes == code)
            column = code.split(":")[0]
            values = bad[column].clone()
            values.scatter(rows, _new_values(code, bad[rows], rng, ctx))
            bad = bad.with_columns(values)
        parts.append(bad)

        pairs = frame[chosen[rules:rules + conflicts]].with_columns(
            pl.lit(DUPLICATE_RECORD_ID).alias("_planted"))
        parts += [pairs, _conflict(pairs, ctx.source)]

        copies = frame[chosen[rules + conflicts:]].with_columns(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("_dup"))
        parts += [copies, copies]
        keep = np.ones(sum(part.height for part in parts), dtype=bool)
        keep[chosen] = False
        return pl.concat(parts, rechunk=False), keep


def shuffle_order(frame: pl.DataFrame, rng: np.random.Generator,
                  keep: np.ndarray | None = None) -> tuple[np.ndarray, pl.Series]:
    """The kept rows in a random order, and the planted code of each row in that order.

    Of two identical rows, the later is the collapsed duplicate.
    """
    rows = np.arange(frame.height) if keep is None else np.flatnonzero(keep)
    order = rng.permutation(rows)
    picked = frame.select("_dup", "_planted")[order]
    later = pl.col("_dup").is_not_null() & ~pl.col("_dup").is_first_distinct()
    planted = picked.select(
        pl.when(later).then(pl.lit(DUPLICATE_IDENTICAL)).otherwise(pl.col("_planted"))
        .alias("_planted")
    ).to_series()
    return order, planted


def shuffle(frame: pl.DataFrame, rng: np.random.Generator,
            keep: np.ndarray | None = None) -> pl.DataFrame:
    """The kept rows in a random order, `_planted` final, `_dup` dropped."""
    order, planted = shuffle_order(frame, rng, keep)
    return frame[order].with_columns(planted).drop("_dup")
