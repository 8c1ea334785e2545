"""What the client-survey suite costs with every known client against those the rows name.

    .venv/bin/python -m benchmarks.known_clients --known 300000 --rows 100000 --repeat 3

GX copies an expectation's whole value set each time it reads the expectation, so the
`client_id:unknown_client` rule costs in proportion to the partners' known clients (a
state's grow every year). The suite check hands GX only the known clients the year's
rows name (`assets.validate.YearParameters.of_year`), which cannot change the result.
Both are timed in one process, one after the other, on the same rows; prints medians
and writes a JSON report beside the other benchmark reports.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from assets.validate import YearParameters
from outcomes.schema import CLIENT_SURVEYS, staged_table
from outcomes.suites import in_org, run_suite

PARTNERS = 20
REPORTS = Path(__file__).parent / "reports"


def surveys(known: int, rows: int) -> tuple[dict[str, list[str]], pl.DataFrame]:
    """`known` clients spread over the partners, and `rows` surveys each naming one."""
    clients: dict[str, list[str]] = {}
    for i in range(known):
        clients.setdefault(f"org{i % PARTNERS}", []).append(f"C{i:07d}")
    named = pl.int_range(rows, eager=True) * 7 % known
    df = pl.DataFrame({
        "org_id": "org" + (named % PARTNERS).cast(pl.String),
        "response_id": "r" + pl.int_range(rows, eager=True).cast(pl.String),
        "client_id": "C" + named.cast(pl.String).str.zfill(7),
        "survey_date": [datetime(2020, 3, 1).date()] * rows,
        "wave": ["BASELINE"] * rows,
    })  # fmt: skip
    schema = staged_table(CLIENT_SURVEYS).schema
    return clients, df.select(
        pl.col(c).cast(t) if c in df.columns else pl.lit(None, t).alias(c)
        for c, t in schema.items()
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--known", type=int, default=300_000)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    clients, staged = surveys(args.known, args.rows)
    year = YearParameters(CLIENT_SURVEYS, 2020, pl.LazyFrame({"county_fips": ["01001"]}),
                          pl.LazyFrame({"partnership_id": ["P1"]}), clients)  # fmt: skip
    every = year.base | {"known_clients": [in_org(o, c) for o, cs in clients.items() for c in cs]}
    run_suite(CLIENT_SURVEYS.name, {"warm": (staged.head(10), every)}, CLIENT_SURVEYS.dtypes)
    seconds: dict[str, list[float]] = {"every_known_client": [], "those_the_rows_name": []}
    for _ in range(args.repeat):
        for label, times in seconds.items():
            t0 = time.perf_counter()
            params = every if label == "every_known_client" else year.of_year(staged)
            result = run_suite(CLIENT_SURVEYS.name, {"y": (staged, params)},
                               CLIENT_SURVEYS.dtypes)["y"]  # fmt: skip
            times.append(time.perf_counter() - t0)
            assert result.success, result.failed
    medians = {k: statistics.median(v) for k, v in seconds.items()}
    for label, m in medians.items():
        print(f"{label:<22} {m:7.2f} s")
    ratio = medians["every_known_client"] / medians["those_the_rows_name"]
    print(f"ratio                  {ratio:7.2f}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = REPORTS / f"{stamp}-known-clients-{args.known}-{args.rows}.json"
    out.write_text(json.dumps({"args": vars(args), "seconds": seconds, "medians": medians,
                               "ratio": ratio}, indent=2) + "\n")  # fmt: skip
    print(f"report {out}")


if __name__ == "__main__":
    main()
