"""Linkage alone, year by year: wall time and peak memory of each year's `link_year`.

    .venv/bin/python -m benchmarks.linkage --warehouse DIR [--truth DIR] [--out benchmarks/reports/]

DIR is a warehouse whose staged tables a run has written (`outcomes run`, or
`python -m benchmarks.run`). A copy of its linkage state is rebuilt from scratch:
the model is trained on the first year (as `outcomes run` does), then every year
is linked in a child process of its own against the registry the years before it
left, so each year's peak RSS is its own. With `--truth` (the generator's truth
folder) the report adds pairwise precision and recall per source pair.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KEY = "benchmark-linkage-key-not-secret"


def _child(warehouse: str, state: str, year: int) -> dict:
    """Link one year (in this process): read staged identities and the registry, write both."""
    import polars as pl

    from outcomes import linkage_model as lm
    from outcomes.integrate import identities
    from outcomes.link import empty_registry, link_year, variants_of
    from outcomes.schema import SOURCES, staged_table
    from outcomes.warehouse import Warehouse

    wh, st = Warehouse(warehouse), Path(state)
    records = variants_of(
        identities(
            *(wh.scan(staged_table(SOURCES[n]), [year]) for n in ("spells", "wages", "services"))
        )
    )
    t0 = time.perf_counter()
    out: dict = {"year": year}
    if not (st / "model" / "model.json").exists():
        model = lm.train(records.variants)
        model.save(st / "model")
        out["train_s"] = time.perf_counter() - t0
        out["trained_on"] = model.trained_on
    model = lm.Model.load(st / "model")
    reg_path = st / "registry.parquet"
    registry = pl.read_parquet(reg_path) if reg_path.exists() else empty_registry()
    t1 = time.perf_counter()
    result = link_year(records, registry, model, KEY, year)
    out["link_s"] = time.perf_counter() - t1
    result.registry.write_parquet(reg_path)
    result.links.write_parquet(st / f"links_{year}.parquet")
    result.merges.write_parquet(st / f"merges_{year}.parquet")
    out.update(result.stats)
    out["comparisons_per_new_variant"] = result.stats["candidate_pairs"] / max(
        1, result.stats["new_variants"]
    )
    out["inner_s"] = time.perf_counter() - t0
    return out


def _measure(args: list[str]) -> tuple[dict, float, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.linkage", "--child", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    if status != 0:
        raise SystemExit(f"year {args[-1]} failed:\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1]), wall, usage.ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--warehouse", type=Path)
    p.add_argument("--truth", type=Path)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "reports")
    p.add_argument("--label", default="")
    p.add_argument("--keep", type=Path, help="write the resolved links here (to inspect)")
    p.add_argument("--child", nargs=3, metavar=("WAREHOUSE", "STATE", "YEAR"))
    a = p.parse_args()
    if a.child:
        print(json.dumps(_child(a.child[0], a.child[1], int(a.child[2]))))
        return

    from outcomes.schema import SOURCES, staged_table
    from outcomes.warehouse import Warehouse

    wh = Warehouse(a.warehouse)
    years = wh.years(staged_table(SOURCES["spells"]))
    if not years:
        raise SystemExit(f"{a.warehouse}: no staged years (run `outcomes run` on it first)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="outcomes-linkage-bench-") as state:
        for y in years:
            result, wall, peak = _measure([str(a.warehouse), state, str(y)])
            result.update(wall_s=round(wall, 2), peak_mib=round(peak))
            rows.append(result)
            print(
                f"{y}  wall {wall:7.1f} s  link {result['link_s']:7.1f} s  peak {peak:7.0f} MiB"
                f"  records {result['records']:>10,}  new variants {result['new_variants']:>9,}"
                f"  comparisons/new variant {result['comparisons_per_new_variant']:.1f}",
                flush=True,
            )
        quality = None
        if a.truth:
            import polars as pl

            from outcomes.link import resolve
            from outcomes.linkage_quality import pairwise_quality

            links = pl.concat(pl.read_parquet(f) for f in sorted(Path(state).glob("links_*")))
            merges = pl.concat(pl.read_parquet(f) for f in sorted(Path(state).glob("merges_*")))
            links = resolve(links, merges)  # every year's keys through every merge
            if a.keep:
                links.write_parquet(a.keep)
            truth = pl.read_parquet(a.truth / "records.parquet")
            q = pairwise_quality(links, truth)
            print(q)
            quality = q.to_dicts()
    first, last = rows[0]["link_s"], rows[-1]["link_s"]
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "warehouse": str(a.warehouse),
        "years": rows,
        "link_s_total": round(sum(r["link_s"] for r in rows), 1),
        "last_over_first_link_s": round(last / first, 3) if first else None,
        "peak_mib_max": max(r["peak_mib"] for r in rows),
        "quality": quality,
    }
    print(
        f"linkage total {report['link_s_total']} s; last/first year "
        f"{report['last_over_first_link_s']}; peak {report['peak_mib_max']} MiB"
    )
    a.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = a.out / f"{stamp}-linkage{('-' + a.label) if a.label else ''}.json"
    path.write_text(json.dumps(report, indent=1, default=str))
    print(f"report: {path}")


if __name__ == "__main__":
    main()
