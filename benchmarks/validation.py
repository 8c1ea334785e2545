"""What validation costs: the suite's rules as plain Polars vs quarantine + GX check.

    .venv/bin/python -m benchmarks.validation --rows 5000000 --repeat 3

Builds a spells file's worth of text rows (about 1% of them breaking a rule),
types them once, then times, in one process:

- typing: parsing the text into the contract's types, which is how the suite's
  type rules (expect_column_values_to_be_of_type) are evaluated in Polars;
- plain: every compiled rule as a Polars expression, counted (the baseline is
  typing + plain);
- quarantine: the same rules deciding which rows are kept, with every reason for
  the rejected ones (outcomes.validate.apply_rules, what staging runs);
- gx: Great Expectations running the suite over the staged rows read back from
  Parquet (outcomes.suites.run_suite, what the blocking `suite` check runs),
  including the copy to pandas.

Staging and the check then run alone in child processes, as in the pipeline,
for their peak memory. Prints
medians and writes a JSON report beside the other benchmark reports.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from outcomes.schema import SPELLS
from outcomes.validate import apply_rules, source_rules, type_columns

REPORTS = Path(__file__).resolve().parent / "reports"
YEAR = 2020
COUNTIES = [f"99{i:03d}" for i in range(1, 48, 2)]
PARAMS = {
    "today": "2026-11-23", "year": YEAR, "year_start": f"{YEAR}-01-01",
    "year_end": f"{YEAR}-12-31", "county_fips": COUNTIES,
}  # fmt: skip
BAD_SHARE = 0.01


def text_rows(n: int, seed: int = 1) -> pl.DataFrame:
    """n spell rows as a partner's CSV would arrive: text, ISO dates, ~1% broken."""
    rng = np.random.default_rng(seed)

    def pick(values: list[str]) -> pl.Series:
        return pl.Series(np.asarray(values)[rng.integers(0, len(values), n)])

    def dates(lo: int, hi: int) -> pl.Series:
        return pl.Series(rng.integers(lo, hi, n)).cast(pl.Date).dt.strftime("%Y-%m-%d")

    start = (datetime(YEAR, 1, 1) - datetime(1970, 1, 1)).days
    df = pl.DataFrame(
        {
            "record_id": pl.int_range(n, eager=True).cast(pl.String),
            "person_id": pl.Series(rng.integers(0, n // 2, n)).cast(pl.String),
            "first_name": pick(["ANN", "BOB", "CY", "DEE", "ED", "FLO"]),
            "last_name": pick(["LEE", "RAY", "ORR", "SMITH", "NG"]),
            "birth_date": dates(-20000, 15000),
            "sex": pick(["F", "M", "X", "U"]),
            "ssn": pl.Series(rng.integers(100_00_0001, 599_99_9999, n)).cast(pl.String),
            "zip": pl.Series(rng.integers(10000, 99999, n)).cast(pl.String),
            "county_fips": pick(COUNTIES),
            "program": pick(["SNAP", "TANF", "MEDICAID", "FOSTER_CARE"]),
            "start_date": dates(start, start + 365),
            "end_date": dates(start + 365, start + 900),
            "monthly_benefit": pl.Series(rng.random(n) * 500).round(2).cast(pl.String),
        }
    )
    bad = pl.Series(rng.random(n) < BAD_SHARE)
    df = df.with_columns(
        pl.when(bad & (pl.int_range(n) % 3 == 0)).then(pl.lit("Q")).otherwise("sex").alias("sex"),
        pl.when(bad & (pl.int_range(n) % 3 == 1))
        .then(pl.lit("2099-01-01"))
        .otherwise("birth_date")
        .alias("birth_date"),
        pl.when(bad & (pl.int_range(n) % 3 == 2))
        .then(pl.lit("55555"))
        .otherwise("county_fips")
        .alias("county_fips"),
    )
    return df.with_row_index("line", 1).with_columns(pl.col("line").cast(pl.Int64))


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def staged_rows(typed: pl.DataFrame, rules: list) -> pl.DataFrame:
    """What staging keeps: the quarantine decision, with reasons for the rejected rows."""
    checked = apply_rules(typed, rules)
    return checked.values.filter(~checked.rejected)


def stage(rows: int, repeat: int, staged_path: Path) -> dict[str, float]:
    """As the staging asset: type the text, time the rules, write what is kept."""
    text = text_rows(rows)
    out: dict[str, float] = {}
    # the suite's type rules are evaluated by parsing: part of the rules' cost
    out["typing"], typed = timed(lambda: type_columns(text, SPELLS, None, set()), repeat)
    rules = source_rules(SPELLS, PARAMS)
    out["plain"], _ = timed(
        lambda: typed.select([r.broken.sum().alias(f"r{i}") for i, r in enumerate(rules)]),
        repeat,
    )
    out["quarantine"], staged = timed(lambda: staged_rows(typed, rules), repeat)
    staged.write_parquet(staged_path)
    out["rows_staged"] = float(staged.height)
    return out


def check(repeat: int, staged_path: Path) -> dict[str, float]:
    """As the blocking suite check: read what was staged, run GX over it."""
    from outcomes.suites import run_suite

    staged = pl.read_parquet(staged_path)
    t0 = time.perf_counter()
    import great_expectations  # noqa: F401  (paid once per process)

    out = {"gx_import": time.perf_counter() - t0}
    out["gx"], result = timed(
        lambda: run_suite("spells", {"dhs": (staged, PARAMS)}, SPELLS.dtypes)["dhs"], repeat
    )
    out["gx_passed"] = float(result.success)
    return out


def peak_mib(call: str) -> float:
    """Peak RSS of a child process that makes just this call once.

    Read from the child's VmHWM: ru_maxrss would carry over this (large) process's
    peak through fork and exec.
    """
    code = (
        "import re\n"
        "from pathlib import Path\n"
        "from benchmarks.validation import stage, check\n"
        f"{call}\n"
        "status = open('/proc/self/status').read()\n"
        "print(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        staged_path = Path(tmp) / "staged.parquet"
        seconds = stage(args.rows, args.repeat, staged_path)
        seconds |= check(args.repeat, staged_path)
        peaks = {
            "staging": peak_mib(f"stage({args.rows}, 1, Path({str(staged_path)!r}))"),
            "suite_check": peak_mib(f"check(1, Path({str(staged_path)!r}))"),
        }
    typing = seconds["typing"]
    ratio = (typing + seconds["quarantine"] + seconds["gx"]) / (typing + seconds["plain"])
    ratio_untyped = (seconds["quarantine"] + seconds["gx"]) / seconds["plain"]
    report = {
        "benchmark": "validation",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "repeat": args.repeat,
        "median_seconds": seconds,
        "ratio": ratio,
        "ratio_without_typing": ratio_untyped,
        "peak_mib": peaks,
    }
    REPORTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = REPORTS / f"{stamp}-validation-{args.rows}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"rows {args.rows:,} (median of {args.repeat})")
    for k in ("typing", "plain", "quarantine", "gx", "gx_import"):
        print(f"  {k:<12} {seconds[k]:7.2f} s")
    print(f"  (typing + quarantine + gx) / (typing + plain) = {ratio:.2f}")
    print(f"  without typing on either side: {ratio_untyped:.2f}")
    print(f"  peak MiB: staging {peaks['staging']:.0f}, suite check {peaks['suite_check']:.0f}")
    print(f"report: {path}")


if __name__ == "__main__":
    main()
