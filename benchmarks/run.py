"""Per-stage wall time and peak memory of a full run at a given scale.

    .venv/bin/python -m benchmarks.run --scale 100000 --out benchmarks/reports/

Generates a sample landing zone, then runs every step of `plan(years)` in a
child process of its own (`benchmarks.step`), because peak RSS is per process:
in one process the first big stage would set the peak for all that follow.
Each child's rusage comes from `os.wait4` on its pid, so it is that child's
alone. Writes a JSON report and prints a table; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import dagster as dg

from outcomes.config import (
    ENV_LANDING_DIR,
    ENV_LINKAGE_KEY,
    ENV_MAX_QUARANTINE_SHARE,
    ENV_MIN_CELL,
    ENV_WAREHOUSE_DIR,
    Settings,
)
from outcomes.warehouse import Warehouse
from pipelines.runner import figures, landing_years, plan

REPO = Path(__file__).resolve().parent.parent
BENCH_KEY = "benchmark-linkage-key-not-secret"
PACKAGES = ("polars", "dagster", "pyarrow", "duckdb")
TOP_OPS = 12  # the table lists this many of the slowest ops
DAGSTER_YAML = "telemetry:\n  enabled: false\n"


@dataclass
class Measured:
    """One child process: wall from spawn to reap (start-up included), its own peak RSS."""

    job: str
    year: str | None  # the run's partition: a year, a range `first-last`, or None
    wall_s: float
    inner_s: float | None  # the work alone, as timed inside the child
    peak_mib: float
    error: str | None = None
    extra: dict | None = None


def measure(
    job: str, year: str | None, args: list[str], env: dict[str, str], logs: Path,
    checkout: Path = REPO,
) -> Measured:  # fmt: skip
    """Run `python -m benchmarks.step ARGS` in `checkout` (whose code it then imports)
    and reap it with wait4 for its own rusage."""
    logs.mkdir(parents=True, exist_ok=True)
    name = f"{job}-{year or 'all'}"
    out, err = logs / f"{name}.out", logs / f"{name}.err"
    t0 = time.perf_counter()
    with out.open("w") as fo, err.open("w") as fe:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.step", *args],
            cwd=checkout,
            env=env,
            stdout=fo,
            stderr=fe,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    peak = usage.ru_maxrss / 1024  # KiB on Linux
    if proc.returncode != 0:
        lines = err.read_text().strip().splitlines() or [f"exit status {proc.returncode}"]
        return Measured(job, year, wall, None, peak, error=lines[-1])
    result = json.loads(out.read_text().strip().splitlines()[-1])
    inner = result.pop("inner_s")
    return Measured(job, year, wall, inner, peak, extra=result or None)


def rounded(value: object) -> object:
    """Floats to 3 places, so the report reads as numbers rather than noise."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def disk_mib(root: Path) -> float:
    """Apparent size of every file under root, in MiB."""
    total = sum(p.lstat().st_size for p in root.rglob("*") if p.is_file())
    return total / 2**20


def op_seconds(home: Path) -> dict[str, float]:
    """Seconds in each op and asset check ("job/step"), summed over years, from the event log.

    A stage's wall time says which job is slow; this says which asset or check inside it.
    """
    start, done = dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS
    kinds = {start, done, dg.DagsterEventType.STEP_FAILURE}
    seconds: dict[str, float] = defaultdict(float)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for record in instance.get_run_records():
            run, started = record.dagster_run, {}
            for event in instance.all_logs(run.run_id, of_type=kinds):
                if event.dagster_event and event.dagster_event.event_type == start:
                    started[event.step_key] = event.timestamp
                elif event.step_key in started:
                    key = f"{run.job_name}/{event.step_key}"
                    seconds[key] += event.timestamp - started.pop(event.step_key)
    return dict(sorted(seconds.items(), key=lambda kv: -kv[1]))


def one_run(root: Path, scale: int, seed: int) -> dict:
    """Generate, then every step in order; stops at the first failure (later steps need it)."""
    landing, warehouse, home = root / "landing", root / "warehouse", root / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        ENV_LANDING_DIR: str(landing),
        ENV_WAREHOUSE_DIR: str(warehouse),
        ENV_LINKAGE_KEY: BENCH_KEY,
        "DAGSTER_HOME": str(home),
    }
    logs = root / "logs"
    gen = measure("generate", None, ["generate", str(root), str(scale), str(seed)], env, logs)
    label = f"generate {scale:,} persons"
    print(f"{label:<32} {gen.wall_s:7.1f} s {gen.peak_mib:8.0f} MiB", flush=True)
    run: dict = {"generate": gen, "steps": [], "failed": None}
    if gen.error:
        run["failed"] = gen
        return run
    run["baseline"] = measure("baseline", None, ["baseline"], env, logs)
    settings = Settings(landing_dir=landing, warehouse_dir=warehouse, linkage_key=BENCH_KEY)
    run["years"] = years = landing_years(settings)
    steps = plan(years)
    t0 = time.perf_counter()
    for i, (job, year) in enumerate(steps, 1):
        m = measure(job, year, [job, str(year or "all")], env, logs)
        run["steps"].append(m)
        label = f"[{i:>2}/{len(steps)}] {job:<18} {year or 'all':<5}"
        failed = "  FAILED" if m.error else ""
        print(f"{label} {m.wall_s:7.1f} s {m.peak_mib:8.0f} MiB{failed}", flush=True)
        if m.error:
            run["failed"] = m
            break
    run["total_wall_s"] = time.perf_counter() - t0
    run["ops"] = op_seconds(home)
    if not run["failed"]:
        run["figures"] = figures(Warehouse(warehouse), years)
    run["disk_mib"] = {
        "landing": disk_mib(landing),
        "warehouse": disk_mib(warehouse) if warehouse.exists() else 0.0,
        **{f"warehouse/{z.name}": disk_mib(z) for z in sorted(warehouse.glob("*")) if z.is_dir()},
        "dagster_home": disk_mib(home),
    }
    return run


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def combine(runs: list[dict]) -> dict:
    """Medians over repeats: per step (wall, in-step, peak), then totals from those medians."""

    def med(items: list[Measured]) -> dict:
        return {
            "wall_s": _median([m.wall_s for m in items]),
            "inner_s": _median([m.inner_s for m in items]),
            "peak_mib": _median([m.peak_mib for m in items]),
            "wall_s_runs": [round(m.wall_s, 3) for m in items],
        }

    steps = [
        {"job": m.job, "year": m.year, **med([r["steps"][i] for r in runs])}
        for i, m in enumerate(runs[0]["steps"])
    ]
    stages: dict[str, dict] = {}
    by_year: dict[str, dict] = {}
    for s in steps:
        for key, table in ((s["job"], stages), (str(s["year"] or "all"), by_year)):
            agg = table.setdefault(
                key, {"steps": 0, "wall_s": 0.0, "inner_s": 0.0, "peak_mib": 0.0}
            )
            agg["steps"] += 1
            agg["wall_s"] += s["wall_s"]
            agg["inner_s"] += s["inner_s"] or 0.0
            agg["peak_mib"] = max(agg["peak_mib"], s["peak_mib"])
    gens = [r["generate"] for r in runs]
    return {
        "generate": {**med(gens), "rows": gens[0].extra and gens[0].extra.get("rows")},
        "baseline": med([r["baseline"] for r in runs])
        if all("baseline" in r for r in runs)
        else None,
        "steps": steps,
        "stages": stages,
        "by_year": by_year,
        "total_wall_s": _median([r.get("total_wall_s") for r in runs]),
        "ops_s": dict(
            sorted(
                ((k, _median([r["ops"].get(k) for r in runs])) for k in runs[0].get("ops", {})),
                key=lambda kv: -(kv[1] or 0),
            )
        ),
        "peak_mib": max((s["peak_mib"] for s in steps), default=None),
    }


def machine() -> dict:
    """What a reader needs to judge the numbers: hardware, load, versions, commit."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_mib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": {p: version(p) for p in PACKAGES},
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain")),
    }


def table(report: dict) -> str:
    """The report as text: stages, years, then the one-off figures."""

    def rows(title: str, groups: dict[str, dict], total: float) -> list[str]:
        out = [
            f"{title:<20} {'steps':>5} {'wall s':>9} {'share':>6} {'in-step s':>10} {'peak MiB':>9}"
        ]
        for name, g in groups.items():
            share = 100 * g["wall_s"] / total if total else 0
            out.append(
                f"{name:<20} {g['steps']:>5} {g['wall_s']:>9.1f} {share:>5.0f}% "
                f"{g['inner_s']:>10.1f} {g['peak_mib']:>9.0f}"
            )
        return out

    steps_total = sum(s["wall_s"] for s in report["steps"])
    gen, base = report["generate"], report["baseline"]
    lines = [
        f"scale {report['scale']:,}  seed {report['seed']}  repeat {report['repeat']}  "
        f"({report['machine']['cpu_count']} cpus, {report['machine']['memory_mib']:,} MiB)  "
        + " ".join(f"{k}={v}" for k, v in report["policy_env"].items()),
        "",
        *rows("stage", report["stages"], steps_total),
        f"{'total':<20} {len(report['steps']):>5} {steps_total:>9.1f} {'':>6} "
        f"{sum(s['inner_s'] or 0 for s in report['steps']):>10.1f} {report['peak_mib'] or 0:>9.0f}",
        "",
        *rows("year", report["by_year"], steps_total),
        "",
        f"{'generate':<20} {gen['wall_s']:>15.1f} {gen['peak_mib']:>27.0f}  (landing and truth)",
    ]
    if base:
        lines.append(
            f"{'baseline per step':<20} {base['wall_s']:>15.1f} {base['peak_mib']:>27.0f}"
            "  (start-up, imports, Definitions, instance)"
        )
    ops = list(report["ops_s"].items())[:TOP_OPS]
    if ops:
        width = max(len(k) for k, _ in ops)
        lines += ["", f"slowest ops and checks (seconds, all years; {len(report['ops_s'])} in all)"]
        lines += [f"  {k:<{width}} {v:>8.1f}" for k, v in ops]
    lines += ["", *(f"{k:<27} {v:>9,}" for k, v in (report.get("figures") or {}).items())]
    lines += [f"disk {k:<22} {v:>9,.1f} MiB" for k, v in report["disk_mib"].items()]
    if report["failed"]:
        f = report["failed"]
        lines += ["", f"FAILED {f['job']} {f['year'] or ''}: {f['error']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument("--scale", type=int, required=True, help="persons in the sample")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeat", type=int, default=1, help="runs; steps report medians")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "reports")
    p.add_argument("--workdir", type=Path, help="where to work (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    a = p.parse_args(argv)
    if a.workdir and a.workdir.exists() and any(a.workdir.iterdir()):
        p.error(f"{a.workdir} is not empty: a warehouse left from before would skew the run")

    facts = machine()
    work = a.workdir or Path(tempfile.mkdtemp(prefix=f"outcomes-bench-{a.scale}-"))
    runs: list[dict] = []
    try:
        for i in range(a.repeat):
            if a.repeat > 1:
                print(f"-- run {i + 1}/{a.repeat}", flush=True)
            runs.append(one_run(work / f"run{i + 1}", a.scale, a.seed))
            if runs[-1]["failed"]:
                break
            if not (a.keep or a.workdir):  # free the disk between repeats
                shutil.rmtree(work / f"run{i + 1}")
    finally:
        if not (a.keep or a.workdir):
            shutil.rmtree(work, ignore_errors=True)

    last = runs[-1]
    failed = last["failed"]
    report = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, "-m", "benchmarks.run", *sys.argv[1:]],
        "machine": {**facts, "load_avg_end": [round(x, 2) for x in os.getloadavg()]},
        "scale": a.scale,
        "seed": a.seed,
        "repeat": len(runs),
        # policy the children inherit from this environment; it changes what a run does
        "policy_env": {
            k: os.environ[k] for k in (ENV_MAX_QUARANTINE_SHARE, ENV_MIN_CELL) if k in os.environ
        },
        "years": last.get("years"),
        **combine([r for r in runs if not r["failed"]] or [last]),
        "figures": last.get("figures"),
        "disk_mib": {k: round(v, 2) for k, v in last["disk_mib"].items()}
        if "disk_mib" in last
        else {},
        "failed": asdict(failed) if failed else None,
        "workdir": str(work) if (a.keep or a.workdir) else None,
    }
    a.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = a.out / f"{stamp}-scale{a.scale}.json"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(rounded(report), indent=2) + "\n")
    tmp.rename(target)
    print("\n" + table(report) + f"\n\nreport {target}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
