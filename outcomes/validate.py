"""Stage 2, validate: type the text columns and apply the expectation suites row by row.

The suites in expectations/*.json (Great Expectations 1.x format) are the one
source of the rules. Each expectation compiles here to a Polars expression that
is true where a row breaks it, so quarantine and the suite can never disagree.
Values that do not parse as their column's type break the `<column>:not_a_<type>`
rule, which comes from the declared schema (outcomes.schema).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from outcomes.config import LandingCaps
from outcomes.ingest import (
    LINE,
    LandingError,
    LandingFile,
    LandingText,
    read_reference,
    read_text,
)
from outcomes.schema import REFERENCE, Source
from outcomes.suites import load_suite

ISO_DATE = "%Y-%m-%d"
TREAT_AS_MISSING = "treat_as_missing"
REASONS = "reasons"
_UNPARSED = "__unparsed_"
_TRUE = ("true", "1", "yes", "y")
_FALSE = ("false", "0", "no", "n")


@dataclass(frozen=True)
class Rule:
    """One compiled expectation: `broken` is true on the rows that break it."""

    name: str  # the reason code written to quarantine, e.g. birth_date:out_of_range
    column: str
    broken: pl.Expr
    treat_as_missing: bool = False  # blank the value instead of rejecting the row


# ---------------------------------------------------------------- typing


def _parse_date(c: pl.Expr, fmt: str) -> pl.Expr:
    return c.str.strptime(pl.Date, fmt, strict=False, exact=True)


def _parse(name: str, dtype: pl.DataType, date_format: str, native: set[str]) -> pl.Expr:
    c = pl.col(name).cast(pl.String)
    if dtype == pl.Date:
        if name in native and date_format != ISO_DATE:  # real date cells arrive as ISO text
            return pl.coalesce(_parse_date(c, date_format), _parse_date(c, ISO_DATE))
        return _parse_date(c, date_format)
    if dtype == pl.Int64:
        return c.str.replace(r"\.0+$", "").cast(pl.Int64, strict=False)
    if dtype == pl.Float64:
        # "nan" and "inf" parse as floats but are no amount, and GX rejects NaN in a range
        f = c.cast(pl.Float64, strict=False)
        return pl.when(f.is_finite()).then(f)
    if dtype == pl.Boolean:
        low = c.str.to_lowercase()
        return pl.when(low.is_in(_TRUE)).then(True).when(low.is_in(_FALSE)).then(False)
    if name == "ssn":
        return c.str.replace_all(r"[-\s]", "")
    return c


def type_columns(
    text: pl.DataFrame, source: Source, date_format: str | None, native: set[str]
) -> pl.DataFrame:
    """Typed canonical columns plus a flag per column where text did not parse."""
    fmt = date_format or ISO_DATE
    typed = [_parse(c.name, c.dtype, fmt, native).alias(c.name) for c in source.columns]
    flags = [
        (pl.col(c.name).is_not_null() & _parse(c.name, c.dtype, fmt, native).is_null()).alias(
            _UNPARSED + c.name
        )
        for c in source.columns
        if c.dtype != pl.String
    ]
    return text.select(pl.exclude(source.column_names), *typed, *flags)


# how a suite's expect_column_values_to_be_of_type names each contract type
SUITE_TYPES = {"datetime64": pl.Date, "int64": pl.Int64, "float64": pl.Float64, "bool": pl.Boolean}


# ---------------------------------------------------------------- compiling suites


def _resolve(value: Any, params: dict[str, Any]) -> Any:
    if isinstance(value, dict) and "$PARAMETER" in value:
        name = value["$PARAMETER"]
        if name not in params:
            raise KeyError(f"suite parameter {name!r} has no value")
        return params[name]
    return value


def _lit(value: Any, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Date and isinstance(value, str):
        return pl.lit(date.fromisoformat(value))
    return pl.lit(value)


def _between(c: pl.Expr, kw: dict[str, Any], dtype: pl.DataType) -> pl.Expr:
    broken = pl.lit(False)
    if kw.get("min_value") is not None:
        lo = _lit(kw["min_value"], dtype)
        broken = broken | (c <= lo if kw.get("strict_min") else c < lo)
    if kw.get("max_value") is not None:
        hi = _lit(kw["max_value"], dtype)
        broken = broken | (c >= hi if kw.get("strict_max") else c > hi)
    return broken


def _in_set(c: pl.Expr, kw: dict[str, Any], dtype: pl.DataType) -> pl.Expr:
    values = kw["value_set"]
    return ~c.is_in(pl.lit(pl.Series(values=list(values), dtype=dtype)).implode())


def _not_in_set(c: pl.Expr, kw: dict[str, Any], dtype: pl.DataType) -> pl.Expr:
    return ~_in_set(c, kw, dtype)


def _regex(c: pl.Expr, kw: dict[str, Any], dtype: pl.DataType) -> pl.Expr:
    return ~c.cast(pl.String).str.contains(kw["regex"])


def _not_regex(c: pl.Expr, kw: dict[str, Any], dtype: pl.DataType) -> pl.Expr:
    return c.cast(pl.String).str.contains(kw["regex"])


def _lengths(c: pl.Expr, kw: dict[str, Any], dtype: pl.DataType) -> pl.Expr:
    """Characters, not bytes, as GX counts them: a 1 MB name must not pass as a name."""
    return _between(c.cast(pl.String).str.len_chars(), kw, pl.Int64())


_MAP_EXPECTATIONS: dict[str, Callable[[pl.Expr, dict[str, Any], pl.DataType], pl.Expr]] = {
    "expect_column_values_to_be_between": _between,
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_values_to_not_be_in_set": _not_in_set,
    "expect_column_values_to_match_regex": _regex,
    "expect_column_values_to_not_match_regex": _not_regex,
    "expect_column_value_lengths_to_be_between": _lengths,
}


def compile_expectation(
    exp: dict[str, Any], params: dict[str, Any], dtypes: dict[str, pl.DataType]
) -> Rule:
    kind = exp["type"]
    kw = {k: _resolve(v, params) for k, v in exp["kwargs"].items()}
    meta = exp.get("meta") or {}
    column = kw.get("column") or kw.get("column_A")
    if column not in dtypes:
        raise KeyError(f"{kind}: column {column!r} is not in the schema")
    c, dtype = pl.col(column), dtypes[column]
    if kind == "expect_column_values_to_be_of_type":
        # a value that did not parse when the column was typed (type_columns)
        broken = pl.col(_UNPARSED + column) if dtype != pl.String else pl.lit(False)
    elif kind == "expect_column_values_to_not_be_null":
        unparsed = pl.col(_UNPARSED + column) if dtype != pl.String else pl.lit(False)
        broken = c.is_null() & ~unparsed
    elif kind == "expect_column_values_to_be_unique":
        broken = c.is_duplicated() & c.is_not_null()
    elif kind == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = pl.col(kw["column_A"]), pl.col(kw["column_B"])
        broken = (a < b if kw.get("or_equal") else a <= b).fill_null(False)
    elif kind in _MAP_EXPECTATIONS:
        broken = c.is_not_null() & _MAP_EXPECTATIONS[kind](c, kw, dtype)
    else:
        raise ValueError(f"expectation type {kind} is not supported by the row-level compiler")
    name = meta.get("rule") or f"{column}:{kind.removeprefix('expect_column_values_to_')}"
    return Rule(name, column, broken.fill_null(False), meta.get("on_failure") == TREAT_AS_MISSING)


def compile_suite(
    suite: dict[str, Any], params: dict[str, Any], dtypes: dict[str, pl.DataType]
) -> list[Rule]:
    return [compile_expectation(e, params, dtypes) for e in suite["expectations"]]


@dataclass(frozen=True)
class Checked:
    """A file's rows after the rules: which are rejected, and why."""

    values: pl.DataFrame  # typed rows, treat-as-missing values blanked, parse flags dropped
    rejected: pl.Series  # per row: breaks a rule that rejects it
    reasons: pl.Series  # for the rejected rows only, in order: every rule each breaks
    blanked: int  # rows whose value a treat-as-missing rule blanked (e.g. invalid SSN)


def apply_rules(typed: pl.DataFrame, rules: list[Rule]) -> Checked:
    """Evaluate every rule once per row; spell out reasons only for the rows rejected.

    Building a list of reasons for every row costs several times the rules
    themselves, and nearly every row has none.
    """
    reject = [r for r in rules if not r.treat_as_missing]
    blank_columns = sorted({r.column for r in rules if r.treat_as_missing})

    def any_of(rs: list[Rule]) -> pl.Expr:
        return pl.any_horizontal([r.broken for r in rs]) if rs else pl.lit(False)

    # one pass over the rows: rejected, and per blanked column whether to blank it
    flags = typed.select(
        any_of(reject).alias("rejected"),
        *(
            any_of([r for r in rules if r.treat_as_missing and r.column == c]).alias(c)
            for c in blank_columns
        ),
    )
    rejected = flags.get_column("rejected")
    reasons = (
        typed.filter(rejected)
        .select(
            pl.concat_list([pl.when(r.broken).then(pl.lit(r.name)) for r in reject])
            .list.drop_nulls()
            .list.unique(maintain_order=True)
            .alias(REASONS)
        )
        .get_column(REASONS)
        if reject
        else pl.Series(REASONS, [], dtype=pl.List(pl.String))
    )
    values = drop_flags(typed).with_columns(
        pl.when(flags.get_column(c)).then(None).otherwise(pl.col(c)).alias(c) for c in blank_columns
    )
    blanked = flags.select(pl.any_horizontal(blank_columns) if blank_columns else pl.lit(False))
    return Checked(values, rejected, reasons, int(blanked.to_series().sum()))


def source_rules(
    source: Source, params: dict[str, Any], unchecked: Collection[str] = ()
) -> list[Rule]:
    """The source's suite compiled; `unchecked` names rules left out (the pre-send check
    cannot judge client_id:unknown_client without the partner's services files)."""
    rules = compile_suite(load_suite(source.name), params, source.dtypes)
    return [r for r in rules if r.name not in unchecked]


def drop_flags(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(pl.exclude(f"^{_UNPARSED}.*$"))


# ---------------------------------------------------------------- staging a file


class QuarantineThresholdError(Exception):
    """Too many bad rows: the file's partition fails and nothing of it is written."""


@dataclass(frozen=True)
class StagedFile:
    staged: pl.DataFrame  # typed canonical columns + org_id, line, file
    quarantine: pl.DataFrame  # QUARANTINE rows (without year)
    rows_read: int
    duplicates_collapsed: int
    invalid_ssn: int

    @property
    def rows_quarantined(self) -> int:
        return self.quarantine.height


def top_reasons(quarantine: pl.DataFrame, n: int = 3) -> list[tuple[str, int]]:
    counts = quarantine.select(pl.col(REASONS).explode()).to_series().value_counts(sort=True)
    return [(r, int(k)) for r, k in counts.head(n).iter_rows()]


def stage_text(
    text: pl.DataFrame,
    source: Source,
    *,
    org_id: str,
    file: str,
    params: dict[str, Any],
    date_format: str | None = None,
    native_dates: frozenset[str] | set[str] = frozenset(),
    unchecked: Collection[str] = (),
) -> StagedFile:
    """Collapse identical rows, type, validate and split one file's rows. Pure."""
    rows_read = text.height
    text = text.unique(subset=source.column_names, keep="first", maintain_order=True)
    typed = type_columns(text, source, date_format, set(native_dates))
    checked = apply_rules(typed, source_rules(source, params, unchecked))
    staged = checked.values.filter(~checked.rejected).with_columns(
        pl.lit(org_id).alias("org_id"), pl.lit(file).alias("file")
    )
    quarantine = text.filter(checked.rejected).select(
        pl.lit(source.name).alias("source"),
        pl.lit(org_id).alias("org_id"),
        pl.lit(file).alias("file"),
        pl.col(LINE),
        checked.reasons.alias(REASONS),
        pl.struct(source.column_names).struct.json_encode().alias("raw"),
    )
    return StagedFile(
        staged=staged,
        quarantine=quarantine,
        rows_read=rows_read,
        duplicates_collapsed=rows_read - text.height,
        invalid_ssn=checked.blanked,
    )


def check_threshold(result: StagedFile, file: str, max_share: float) -> None:
    """Refuse a file whose quarantined share is over the limit, naming the top reasons."""
    if result.rows_read and result.rows_quarantined / result.rows_read > max_share:
        reasons = ", ".join(f"{r} ({n})" for r, n in top_reasons(result.quarantine))
        # nothing of the file is written, so the message is where the partner looks
        lines = result.quarantine.get_column(LINE).sort().head(5).to_list()
        raise QuarantineThresholdError(
            f"{file}: {result.rows_quarantined} of {result.rows_read} rows quarantined "
            f"({result.rows_quarantined / result.rows_read:.1%}, limit {max_share:.0%}); "
            f"top reasons: {reasons}; first at line(s) {', '.join(map(str, lines))}"
        )


def suite_parameters(
    source: Source,
    year: int,
    *,
    county_fips: list[str],
    partnership_ids: list[str] | None = None,
    known_clients: list[str] | None = None,
) -> dict[str, Any]:
    """The values the suites refer to as $PARAMETER for one file."""
    params: dict[str, Any] = {
        "today": date.today().isoformat(),
        "year": year,
        "year_start": f"{year}-01-01",
        "year_end": f"{year}-12-31",
        "county_fips": county_fips,
    }
    if source.name == "partnership_surveys":
        params["partnership_ids"] = partnership_ids or []
    if source.name == "client_surveys":
        params["known_clients"] = known_clients or []
    return params


def stage_file(
    lf: LandingFile,
    params: dict[str, Any],
    caps: LandingCaps | None = None,
    unchecked: Collection[str] = (),
) -> tuple[LandingText, StagedFile]:
    """One landing file read with its organisation's mapping and staged; raises
    LandingError when the file cannot be used at all."""
    mapping = lf.mapping()
    text = read_text(lf, mapping, caps)
    staged = stage_text(
        text.rows, lf.source, org_id=lf.org_id, file=lf.relative, params=params,
        date_format=mapping.date_format, native_dates=text.native_dates, unchecked=unchecked,
    )  # fmt: skip
    return text, staged


def read_references(landing_dir: Path) -> dict[str, pl.DataFrame]:
    """Counties, population and partnerships, typed and checked against their suites;
    raises LandingError naming the file (and the line and rule)."""
    counties = read_reference(landing_dir, "counties")
    check_reference("counties", counties, {}, "reference/counties.csv")
    params = {"county_fips": counties.get_column("county_fips").to_list()}
    frames = {"counties": counties}
    for name in ("population", "partnerships"):
        frames[name] = read_reference(landing_dir, name)
        check_reference(name, frames[name], params, f"reference/{name}.csv")
    return frames


def check_reference(name: str, df: pl.DataFrame, params: dict[str, Any], file: str) -> None:
    """Reference files are small and everything depends on them: any broken rule stops the run."""
    rules = compile_suite(load_suite(name), params, REFERENCE[name])
    parsed = [pl.lit(False).alias(_UNPARSED + c) for c in df.columns]  # typed on reading
    flags = (
        df.with_row_index("line", 1)
        .with_columns(parsed)
        .with_columns([r.broken.alias(f"__rule{i}") for i, r in enumerate(rules)])
    )
    for i, r in enumerate(rules):
        bad = flags.filter(pl.col(f"__rule{i}"))
        if bad.height:
            raise LandingError(
                f"{file}: line {bad['line'][0]} breaks {r.name} ({bad.height} rows in all)"
            )
