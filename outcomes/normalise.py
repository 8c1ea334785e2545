"""Identity normalisation, in one place: what linkage compares, never what is published.

Every source's identity columns pass through `identity_columns` before linkage
compares them, so a name, a birth date, a sex code, a zip or an SSN means the
same thing whichever partner recorded it:

- names: accents stripped, upper case, letters only (`O'Brien` = `OBRIEN`); a
  surname also keeps its parts without particles (`De La Cruz-Lopez` has parts
  CRUZ and LOPEZ) so a partner that records one part of a compound surname can
  still agree; a first name keeps its formal forms from the shipped nickname
  table (`outcomes/data/nicknames.csv`: BOB has ROBERT, CHRIS has CHRISTOPHER,
  CHRISTINA and CHRISTINE);
- birth date: a date or null; sex: F, M or X (U is unknown, so null); zip:
  five digits or null;
- SSN: the contract's rule, read from the suites (`expectations/spells.json`):
  nine digits as issued and not a placeholder, else null, so an invalid SSN is
  never a match key.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import polars as pl

from outcomes.suites import load_suite

NICKNAMES_FILE = Path(__file__).resolve().parent / "data" / "nicknames.csv"
# surname particles: not a part of their own ("DE LA CRUZ" has the one part CRUZ)
PARTICLES = ("DE", "DEL", "DELA", "DA", "DI", "DU", "LA", "LE", "LOS", "VAN", "VON", "DER",
             "DEN", "ST", "Y", "BIN", "BEN", "AL", "EL", "MC", "MAC", "O")  # fmt: skip
KNOWN_SEXES = ("F", "M", "X")


@cache
def nickname_forms() -> pl.DataFrame:
    """name -> the formal names it may stand for (itself included): one row per pair."""
    with NICKNAMES_FILE.open(encoding="utf-8") as f:
        pairs = [(r["nickname"], r["name"]) for r in csv.DictReader(f)]
    table = pl.DataFrame(pairs, schema={"name": pl.String, "form": pl.String}, orient="row")
    formal = table.select(pl.col("form").alias("name"), "form").unique()
    return pl.concat([table, formal]).unique().sort("name", "form")


@cache
def ssn_rule() -> tuple[str, tuple[str, ...]]:
    """The SSN rule as the suites declare it: the issued-number regex and the placeholders."""
    regex, placeholders = None, ()
    for e in load_suite("spells")["expectations"]:
        if e["kwargs"].get("column") != "ssn":
            continue
        if e["type"] == "expect_column_values_to_match_regex":
            regex = e["kwargs"]["regex"]
        elif e["type"] == "expect_column_values_to_not_be_in_set":
            placeholders = tuple(e["kwargs"]["value_set"])
    if regex is None:
        raise ValueError("expectations/spells.json declares no SSN regex (rule ssn:invalid)")
    return regex, placeholders


def letters(c: pl.Expr) -> pl.Expr:
    """Upper-case words of A-Z, single-spaced: accents, punctuation and case do not count."""
    return (
        c.str.normalize("NFKD")
        .str.replace_all(r"\p{M}", "")
        .str.to_uppercase()
        .str.replace_all(r"[^A-Z]+", " ")
        .str.strip_chars()
    )


def name_key(c: pl.Expr) -> pl.Expr:
    """A name as one token of letters; empty is null."""
    out = letters(c).str.replace_all(" ", "")
    return pl.when(out != "").then(out)


def surname_parts(c: pl.Expr) -> pl.Expr:
    """The parts of a compound surname, particles left out, sorted."""
    return (
        letters(c)
        .str.split(" ")
        .list.eval(pl.element().filter((pl.element() != "") & ~pl.element().is_in(PARTICLES)))
        .list.unique()
        .list.sort()
    )


def valid_ssn(c: pl.Expr) -> pl.Expr:
    """Digits only; null unless the contract's SSN rule holds."""
    regex, placeholders = ssn_rule()
    s = c.str.replace_all(r"[-\s]", "")
    return pl.when(s.str.contains(regex) & ~s.is_in(placeholders)).then(s)


def identity_columns(records: pl.LazyFrame) -> pl.LazyFrame:
    """Normalised first_name, last_name, last_parts, birth_date, sex, zip, ssn, county_fips.

    `records` has those columns as staged (any may be null); the result replaces
    them and adds `first_forms` (the formal names a first name may stand for).
    """
    forms = nickname_forms().lazy().group_by("name").agg(pl.col("form").sort().alias("forms"))
    sex = pl.col("sex").str.strip_chars().str.to_uppercase()
    zip_ = pl.col("zip").str.strip_chars()
    out = records.with_columns(
        name_key(pl.col("first_name")).alias("first_name"),
        name_key(pl.col("last_name")).alias("last_name"),
        surname_parts(pl.col("last_name")).alias("last_parts"),
        pl.col("birth_date").cast(pl.Date),
        pl.when(sex.is_in(KNOWN_SEXES)).then(sex).alias("sex"),
        pl.when(zip_.str.contains(r"^\d{5}$")).then(zip_).alias("zip"),
        valid_ssn(pl.col("ssn")).alias("ssn"),
        pl.col("county_fips").str.strip_chars(),
    )
    return (
        out.join(forms, left_on="first_name", right_on="name", how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("first_name").is_not_null())
            .then(pl.coalesce("forms", pl.concat_list(pl.col("first_name"))))
            .alias("first_forms")
        )
        .drop("forms")
    )
