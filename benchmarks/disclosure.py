"""What disclosure control costs, and what an attacker gets from a release.

    python -m benchmarks.disclosure --warehouse DIR [--before DIR] [--label X]

Per year of a warehouse that `outcomes run` made: the time to compute the unsuppressed
cells of every indicator (the rest of `publish_indicators`), the time of the
protection (`disclosure.protect`, audit included), and the audit of the release as
published (`outcomes audit-disclosure`). `--before` audits another warehouse's
published tables too (e.g. one made by an earlier version), for the figures before
and after. The report goes to benchmarks/reports/<time>-disclosure-<label>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from assets.indicators import indicator_inputs
from outcomes import disclosure, indicators
from outcomes.schema import OUTCOME_INDICATORS, OUTCOME_INDICATORS_BY_GROUP
from outcomes.warehouse import Warehouse

REPORTS = Path(__file__).parent / "reports"


def _cells(wh: Warehouse, year: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    inp = indicators.Inputs.of(*indicator_inputs(wh, year))
    units = indicators._units_by_indicator(inp, year)
    county = indicators._estimates(indicators._all_county_cells(inp, year, units))
    return county, indicators._estimates(indicators._all_group_cells(inp, year, units))


def _release(wh: Warehouse, limit: int) -> dict[str, object]:
    t0 = time.perf_counter()
    audit = indicators.release_audit(
        wh.read(OUTCOME_INDICATORS), wh.read(OUTCOME_INDICATORS_BY_GROUP), limit
    )
    totals = audit.summary.select("suppressed", "primary", "recovered", "narrowed").sum()
    return {"audit_s": time.perf_counter() - t0, **totals.row(0, named=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--before", type=Path)
    parser.add_argument("--label", default="run")
    parser.add_argument("--min-cell", type=int, default=11)
    args = parser.parse_args()
    wh = Warehouse(args.warehouse)
    years = []
    for year in wh.years(OUTCOME_INDICATORS):
        t0 = time.perf_counter()
        county, groups = _cells(wh, year)
        t1 = time.perf_counter()
        disclosure.protect(county, groups, args.min_cell)
        t2 = time.perf_counter()
        years.append({"year": year, "cells_s": t1 - t0, "protect_s": t2 - t1})
        print(years[-1], flush=True)
    share = [y["protect_s"] / (y["cells_s"] + y["protect_s"]) for y in years]
    report: dict[str, object] = {
        "warehouse": str(args.warehouse),
        "min_cell": args.min_cell,
        "years": years,
        "median_cells_s": statistics.median(y["cells_s"] for y in years),
        "median_protect_s": statistics.median(y["protect_s"] for y in years),
        "median_protect_share": statistics.median(share),
        "after": _release(wh, args.min_cell),
    }
    if args.before:
        report["before"] = _release(Warehouse(args.before), args.min_cell)
    print(json.dumps(report, indent=2))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = REPORTS / f"{stamp}-disclosure-{args.label}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {out}")


if __name__ == "__main__":
    main()
