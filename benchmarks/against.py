"""One step of this checkout against another checkout's, alternated, on one warehouse.

    .venv/bin/python -m benchmarks.against --other /tmp/old --job publish_indicators \\
        --years 2018-2023 --repeat 2 --label publish-step

Each (year, repeat) runs the step from this checkout and from `--other` (e.g. a
`git worktree` of an earlier commit) one after the other, so both meet the same load
on a shared machine; the report gives each side's `inner_s` per run, the medians and
the ratio other / this. Settings come from the environment as for `benchmarks.step`
(OUTCOMES_LANDING_DIR, OUTCOMES_WAREHOUSE_DIR, OUTCOMES_LINKAGE_KEY, DAGSTER_HOME).
Both sides write the same outputs: compare code that decides the same.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.run import REPO, measure


def _commit(checkout: Path) -> str:
    out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    return out.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.against", description=__doc__.split("\n")[0])
    p.add_argument("--other", type=Path, required=True, help="the checkout to compare with")
    p.add_argument("--job", required=True)
    p.add_argument("--years", required=True, help="FIRST-LAST, or `all` for unpartitioned jobs")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--label", default="against")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "reports")
    a = p.parse_args(argv)
    if a.years == "all":
        years: list[int | None] = [None]
    else:
        first, _, last = a.years.partition("-")
        years = list(range(int(first), int(last or first) + 1))
    sides = {"this": REPO, "other": a.other.resolve()}
    runs: dict[str, dict[str, list[float]]] = {}
    logs = Path(tempfile.mkdtemp(prefix="outcomes-against-"))
    for year in years:
        label = str(year or "all")
        runs[label] = {side: [] for side in sides}
        for i in range(a.repeat):
            order = list(sides) if i % 2 == 0 else list(sides)[::-1]  # alternate who goes first
            for side in order:
                m = measure(a.job, year, [a.job, label], dict(os.environ), logs / side,
                            checkout=sides[side])  # fmt: skip
                if m.error or m.inner_s is None:
                    print(f"{side} {a.job} {label}: {m.error}", file=sys.stderr)
                    return 1
                runs[label][side].append(m.inner_s)
                print(f"{label} {side:5} {m.inner_s:7.2f} s", flush=True)
    median = {y: {s: statistics.median(v) for s, v in r.items()} for y, r in runs.items()}
    total = {s: sum(m[s] for m in median.values()) for s in sides}
    report = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, "-m", "benchmarks.against", *sys.argv[1:]],
        "job": a.job,
        "commits": {s: _commit(c) for s, c in sides.items()},
        "warehouse": os.environ.get("OUTCOMES_WAREHOUSE_DIR"),
        "inner_s": runs,
        "median_inner_s": median,
        "total_of_medians_s": total,
        "other_over_this": total["other"] / total["this"] if total["this"] else None,
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
    }
    a.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = a.out / f"{stamp}-{a.label}.json"
    target.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"total_of_medians_s": total, "other_over_this": report["other_over_this"]}))
    print(f"report {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
