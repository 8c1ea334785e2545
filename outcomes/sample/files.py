"""Canonical string frames of each landing file, with the truth columns planting needs.

Each builder returns the rows an organisation would export for one year, as
strings in contract column names, plus `_pidx` (true person), `_planted`
(an invalid recorded SSN, else null), `_noise` and `_key` (enrollment).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from outcomes.sample.config import NAICS, OrgSpec
from outcomes.sample.identity import valid_in
from outcomes.sample.util import digits, iso

RECORD_DIGITS = 7
WAGE_DIGITS = 8
SECOND_ID_USE = 0.5  # share of spells of a twice-registered person under the second id
TRUTH_NULLS = {"_pidx": pl.Int32, "_planted": pl.String, "_noise": pl.String, "_key": pl.UInt32}
EXTRA_VALUES = {
    "entered_by": ("JS", "MK", "AL", "RT", "PD", "admin"),
    "Intake Worker": ("Dana Ruiz", "M. Okafor", "Lee, Chris", "front desk", ""),
    "Notes": ("", "", "", "Referred by 211", "Walk-in, Spanish speaker",
              'Client said "call after 5"', "Follow up in 30 days; no phone"),
}


def _with_truth(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    frame = frame.lazy().collect()
    missing = [pl.lit(None, t).alias(c) for c, t in TRUTH_NULLS.items() if c not in frame.columns]
    return frame.with_columns(missing)


def _bool_text(column: str) -> pl.Expr:
    return pl.when(pl.col(column)).then(pl.lit("true")).otherwise(
        pl.when(pl.col(column).is_not_null()).then(pl.lit("false"))).alias(column)


def add_extras(frame: pl.DataFrame, spec: OrgSpec, rng: np.random.Generator) -> pl.DataFrame:
    """Exported columns the contract ignores; present before planting so twins stay identical."""
    extras = {}
    for name in spec.extra_columns:
        if name in frame.columns:
            continue
        if name == "caseworker_id":
            extras[name] = "W" + digits(rng.integers(1, 400, frame.height), 4)
        else:
            options = np.asarray(EXTRA_VALUES[name])
            extras[name] = pl.Series(options[rng.integers(0, len(options), frame.height)])
    return frame.with_columns(**extras).with_columns(
        pl.col(list(extras)).replace("", None)) if extras else frame


def _attach(rows: pl.DataFrame, registrations: pl.DataFrame, year: int) -> pl.LazyFrame:
    """Each row with the identity its organisation held for the person that year.

    Lazy, so a file builder's select fetches only the identity columns it writes.
    """
    return rows.lazy().join(valid_in(registrations.lazy(), year), on=["pidx", "slot"],
                            how="left", maintain_order="left")


def _numbered(prefix: str, width: int, first: int = 1) -> pl.Expr:
    """prefix + first, first + 1, ... zero-padded: a file's record ids in row order."""
    numbers = pl.int_range(first, pl.len() + first)
    return pl.lit(prefix) + numbers.cast(pl.String).str.zfill(width)


def _county(persons: pl.DataFrame) -> pl.Expr:
    return pl.lit(persons["county_fips"]).gather(pl.col("pidx")).alias("county_fips")


def spells_file(rows: pl.DataFrame, registrations: pl.DataFrame, persons: pl.DataFrame,
                spec: OrgSpec, year: int, rng: np.random.Generator) -> pl.DataFrame:
    """A year of an agency's spells; a person with two person ids uses either one."""
    twice = registrations.filter(pl.col("slot") == 1)["pidx"]
    second = rng.random(rows.height) < SECOND_ID_USE
    slot = rows["pidx"].is_in(twice.implode()).to_numpy() & second
    rows = rows.with_columns(pl.Series("slot", slot.astype(np.int8)))
    return _with_truth(_attach(rows, registrations, year).select(
        _numbered(f"{spec.org_id.upper()}-{year}-", RECORD_DIGITS).alias("record_id"),
        pl.col("local_id").alias("person_id"),
        "first_name", "last_name", "birth_date", "sex", "ssn", "zip",
        _county(persons),
        "program",
        iso(pl.col("start")).alias("start_date"),
        iso(pl.col("end")).alias("end_date"),
        pl.col("benefit").cast(pl.String).alias("monthly_benefit"),
        pl.col("pidx").alias("_pidx"),
        pl.col("ssn_code").alias("_planted"),
        pl.col("noise").alias("_noise"),
    ))


def services_file(rows: pl.DataFrame, registrations: pl.DataFrame, persons: pl.DataFrame,
                  spec: OrgSpec, year: int) -> pl.DataFrame:
    rows = _attach(rows.with_columns(pl.lit(0, pl.Int8).alias("slot")), registrations, year)
    return _with_truth(rows.select(
        _numbered(f"{spec.id_prefix}-{year}-", RECORD_DIGITS).alias("record_id"),
        pl.col("local_id").alias("client_id"),
        "first_name", "last_name", "birth_date", "sex", "ssn", "zip",
        _county(persons),
        "program",
        iso(pl.col("start")).alias("enroll_date"),
        iso(pl.col("end")).alias("exit_date"),
        "exit_reason",
        pl.col("household_size").cast(pl.String),
        pl.col("pidx").alias("_pidx"),
        pl.col("ssn_code").alias("_planted"),
        pl.col("noise").alias("_noise"),
        pl.col("key").alias("_key"),
    ))


def client_surveys_file(rows: pl.DataFrame, registrations: pl.DataFrame, spec: OrgSpec,
                        year: int) -> pl.DataFrame:
    rows = _attach(rows.with_columns(pl.lit(0, pl.Int8).alias("slot")), registrations, year)
    return _with_truth(rows.select(
        _numbered(f"{spec.id_prefix}-S{year}-", RECORD_DIGITS).alias("response_id"),
        pl.col("local_id").alias("client_id"),
        iso(pl.col("survey_day")).alias("survey_date"),
        "wave",
        _bool_text("housing_stable"), _bool_text("food_secure"), _bool_text("employed"),
        pl.col("wellbeing").cast(pl.String),
        pl.col("pidx").alias("_pidx"),
        pl.col("key").alias("_key"),
    ))


def wages_file(rows: pl.DataFrame, registrations: pl.DataFrame, year: int,
               first: int = 1) -> pl.DataFrame:
    """Wage rows of a year (or of a quarter: its record ids start at `first`)."""
    rows = _attach(rows.with_columns(pl.lit(0, pl.Int8).alias("slot")), registrations, year)
    return _with_truth(rows.select(
        _numbered(f"W{year}-", WAGE_DIGITS, first).alias("record_id"),
        "ssn", "first_name", "last_name",
        ("E" + pl.col("employer").cast(pl.String).str.zfill(6)).alias("employer_id"),
        pl.lit(str(year)).alias("year"),
        pl.col("quarter").cast(pl.String),
        pl.col("wages").cast(pl.String),
        pl.lit(pl.Series(NAICS)).gather(pl.col("naics")).alias("naics_code"),
        pl.col("pidx").alias("_pidx"),
        pl.col("noise").alias("_noise"),
    ))


def partnership_surveys_file(rows: pl.DataFrame) -> pl.DataFrame:
    return _with_truth(rows)
