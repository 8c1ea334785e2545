"""Small shared helpers: seeded generators, day arithmetic, the SSN rule, typos."""

from __future__ import annotations

import zlib

import numpy as np
import polars as pl

EPOCH = np.datetime64("1970-01-01", "D")
PLACEHOLDER_SSNS = ("123456789", *(str(d) * 9 for d in range(10)))
VALID_AREAS = np.array([a for a in range(1, 900) if a != 666], dtype=np.int64)
GROUPS, SERIALS = 99, 9999
ALPHABET = np.array(list("abcdefghijklmnopqrstuvwxyz"))


PERSON_ID_WIDTH = 7


def person_id(pidx: pl.Expr) -> pl.Expr:
    """The true person id of a 0-based person index: P0000001, P0000002, ..."""
    return "P" + (pidx.cast(pl.Int64) + 1).cast(pl.String).str.zfill(PERSON_ID_WIDTH)


def rng_for(seed: int, part: str) -> np.random.Generator:
    """A generator per part, so changing one part never shifts another's draws."""
    return np.random.default_rng([seed, zlib.crc32(part.encode())])


def day(year: int, month: int = 1, dom: int = 1) -> int:
    """Days since 1970-01-01, the integer form every date takes inside the generator."""
    return int((np.datetime64(f"{year:04d}-{month:02d}-{dom:02d}", "D") - EPOCH).astype(int))


def year_of(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def iso(expr: pl.Expr) -> pl.Expr:
    """Integer days to an ISO date string (null stays null)."""
    return expr.cast(pl.Int32).cast(pl.Date).dt.to_string("%Y-%m-%d")


def digits(numbers: np.ndarray, width: int) -> pl.Series:
    """Zero-padded decimal strings, vectorised."""
    return pl.Series(numbers.astype(np.int64)).cast(pl.String).str.zfill(width)


def keep_where(values: pl.Series | np.ndarray, keep: np.ndarray) -> pl.Series:
    """values where keep is true, else null."""
    series = values if isinstance(values, pl.Series) else pl.Series(values)
    return series.zip_with(pl.Series(keep), pl.Series([None], dtype=series.dtype))


PLACEHOLDER_NUMBERS = np.array([int(p) for p in PLACEHOLDER_SSNS], dtype=np.int64)


def true_ssn_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct SSNs (as integers) the SSA could have issued, none a known placeholder."""
    space = len(VALID_AREAS) * GROUPS * SERIALS
    k = rng.choice(space, size=n + len(PLACEHOLDER_SSNS), replace=False)
    area = VALID_AREAS[k // (GROUPS * SERIALS)]
    rest = k % (GROUPS * SERIALS)
    number = area * 1_000_000 + (rest // SERIALS + 1) * 10_000 + rest % SERIALS + 1
    return number[~np.isin(number, PLACEHOLDER_NUMBERS)][:n]


def true_ssns(rng: np.random.Generator, n: int) -> pl.Series:
    """n distinct SSNs the SSA could have issued, none of them a known placeholder."""
    return digits(true_ssn_numbers(rng, n), 9)


def ssn_problem(col: str) -> pl.Expr:
    """The contract's SSN rule as a planted code: partial, placeholder, never_issued or null."""
    d = pl.col(col).str.replace_all(r"[-\s]", "")
    area, group, serial = d.str.slice(0, 3), d.str.slice(3, 2), d.str.slice(5, 4)
    return (
        pl.when(pl.col(col).is_null())
        .then(pl.lit(None, pl.String))
        .when(~d.str.contains(r"^\d{9}$"))
        .then(pl.lit("ssn:partial"))
        .when(d.is_in(PLACEHOLDER_SSNS))
        .then(pl.lit("ssn:placeholder"))
        .when(area.is_in(["000", "666"]) | area.str.starts_with("9") | (group == "00")
              | (serial == "0000"))
        .then(pl.lit("ssn:never_issued"))
        .otherwise(pl.lit(None, pl.String))
    )


def typo(rng: np.random.Generator, values: pl.Series) -> pl.Series:
    """One keyboard slip per value: delete, replace, double or transpose a character."""
    n = len(values)
    if n == 0:
        return values
    length = values.str.len_chars().fill_null(0).to_numpy()
    # positions 1 .. len-2: the first letter is rarely wrong, and a transposition needs a next
    pos = 1 + (rng.random(n) * np.maximum(length - 2, 1)).astype(np.int64)
    frame = pl.DataFrame({
        "s": values, "k": pos, "op": rng.integers(0, 4, n), "c": ALPHABET[rng.integers(0, 26, n)],
    })
    s, k = pl.col("s"), pl.col("k")
    head, here, nxt = s.str.slice(0, k), s.str.slice(k, 1), s.str.slice(k + 1, 1)
    out = frame.select(
        pl.when(pl.col("op") == 0).then(pl.concat_str([head, s.str.slice(k + 1)]))
        .when(pl.col("op") == 1).then(pl.concat_str([head, pl.col("c"), s.str.slice(k + 1)]))
        .when(pl.col("op") == 2).then(pl.concat_str([head, here, here, s.str.slice(k + 1)]))
        .otherwise(pl.concat_str([head, nxt, here, s.str.slice(k + 2)]))
        .alias("s")
    )["s"]
    return pl.Series(values.name, out).zip_with(pl.Series(length >= 3), values)
