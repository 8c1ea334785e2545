"""`outcomes run`: every partition of every asset, through Dagster, in dependency order."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import dagster as dg
import polars as pl

from assets.common import materialized, partition_label, signpost
from assets.partitions import partition_years, ranges
from assets.resources import OutcomesConfig
from assets.validate import ZERO_PADDED
from outcomes.config import ENV_DAGSTER_HOME, ENV_LINKAGE_KEY, Settings
from outcomes.ingest import discover
from outcomes.link import resolve
from outcomes.schema import (
    LOAD_LEDGER,
    OUTCOME_INDICATORS,
    PARTNERSHIP_IMPACT,
    PERSON_KEY_MERGES,
    RECORD_LINKS,
    SOURCES,
    staged_table,
)
from outcomes.secret import check_key_fingerprint
from outcomes.warehouse import Warehouse
from pipelines.alerts import RANGE_END, RANGE_START, assets_by_op, failure_of
from pipelines.definitions import build_definitions
from pipelines.jobs import EACH_YEAR, ONCE, RUN_ORDER

RUNNER_STEP = "runner"  # the runner's own reads between steps, in an OS-level trace
# the command line prints its own progress and errors; Dagster's event log keeps the rest
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class RunFailed(Exception):
    """A step failed; the message says which job, year and why (no identifiers)."""


@dataclass
class RunSummary:
    years: list[int]
    steps: int = 0
    seconds: float = 0.0
    figures: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        width = max(len(k) for k in self.figures) if self.figures else 0
        return [
            f"years            {self.years[0]}-{self.years[-1]} ({len(self.years)})",
            *(f"{k:<{width}}  {v:>12,}" for k, v in self.figures.items()),
            f"elapsed          {self.seconds:,.1f} s ({self.steps} Dagster runs)",
        ]


def landing_years(settings: Settings, wanted: tuple[int, int] | None = None) -> list[int]:
    """Years with landing files, refusing files outside the partitions by name."""
    files = discover(settings.landing_dir)
    span = partition_years()
    outside = [f.relative for f in files if f.year not in span]
    if outside:
        raise RunFailed(
            f"{len(outside)} file(s) for years outside {span.start}-{span.stop - 1}: "
            + ", ".join(outside[:5])
        )
    years = sorted({f.year for f in files})
    if wanted:
        years = [y for y in years if wanted[0] <= y <= wanted[1]]
    if not years:
        raise RunFailed(f"no landing files found under {settings.landing_dir} for those years")
    return years


@contextmanager
def dagster_instance():
    """The instance under DAGSTER_HOME when it is set, else a temporary one."""
    if os.environ.get(ENV_DAGSTER_HOME):
        with dg.DagsterInstance.get() as instance:
            yield instance
    else:
        with (
            tempfile.TemporaryDirectory(prefix="outcomes-dagster-") as tmp,
            dg.DagsterInstance.local_temp(
                tmp, overrides={"telemetry": {"enabled": False}}
            ) as instance,
        ):
            yield instance


@contextmanager
def linkage_key_in_env(key: str) -> Iterator[None]:
    """OUTCOMES_LINKAGE_KEY holds `key` while the runs execute, the value before after.

    The resource takes the key as `dg.EnvVar`, so Dagster reads it from the process's
    environment when a run starts and no run config, snapshot or event ever holds it.
    """
    before = os.environ.get(ENV_LINKAGE_KEY)
    os.environ[ENV_LINKAGE_KEY] = key
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV_LINKAGE_KEY, None)
        else:
            os.environ[ENV_LINKAGE_KEY] = before


def plan(years: list[int]) -> list[tuple[str, str | None]]:
    """(job name, partition: a year, a range `first-last`, or None) in the order a full
    run takes them, one Dagster run each."""

    def partitions(how: str) -> list[list[int]] | list[None]:
        if how == ONCE:
            return [None]
        return [[y] for y in years] if how == EACH_YEAR else ranges(years)

    return [(job.name, part and partition_label(part)) for job, how in RUN_ORDER
            for part in partitions(how)]  # fmt: skip


def run_step(
    defs: dg.Definitions, instance: dg.DagsterInstance, job: str, partition: str | None
) -> list[tuple[str, float]]:
    """One job for one partition or range (or unpartitioned); raises RunFailed with the
    reason. Returns the seconds each of the run's steps took."""
    first, _, last = (partition or "").partition("-")
    tags = {}
    if last:  # a range: one run whose assets take every year of it
        tags = {RANGE_START: first, RANGE_END: last}  # Dagster's single-run backfill tags
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance,
        partition_key=None if last else partition,
        tags=tags,
        raise_on_error=False,
        run_config=QUIET,
    )
    if not result.success:
        ops = assets_by_op([*(defs.assets or []), *(defs.asset_checks or [])])
        raise RunFailed(failure_of(result.dagster_run, result.all_events, ops).message())
    return step_seconds(instance, result.run_id)


def step_seconds(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, float]]:
    """(step, seconds it took) in the order the steps started."""
    stats = sorted(instance.get_run_step_stats(run_id), key=lambda s: s.start_time or 0)
    return [(s.step_key, s.end_time - s.start_time) for s in stats if s.start_time and s.end_time]


def step_lines(defs: dg.Definitions, timed: list[tuple[str, float]]) -> list[str]:
    """A line per asset step of a run, and one for its checks together."""
    graph = defs.resolve_asset_graph()
    assets = {a.node_def.name for a in graph.assets_defs if a.is_executable and a.keys}
    checks = [seconds for step, seconds in timed if step not in assets]
    lines = [(step, seconds) for step, seconds in timed if step in assets]
    if checks:
        lines.append((f"{len(checks)} checks", sum(checks)))
    return [f"{'':8}{step:<32}  {seconds:5.1f} s" for step, seconds in lines]


def run_all(
    settings: Settings,
    years: list[int],
    echo: Callable[[str], None] = print,
) -> RunSummary:
    """Every step for `years`; refuses (LinkageKeyError) before writing anything when the
    linkage key is missing or weak (outside the demo) or not the warehouse's."""
    key = settings.validate_key()
    check_key_fingerprint(settings.warehouse_dir, key)
    recovered = Warehouse(settings.warehouse_dir).recover()
    if recovered:
        echo(
            f"recovered what a killed run left: {recovered.finished} file(s) released from "
            f"its journal, {recovered.deleted} unreleased temporary file(s) deleted"
        )
    steps = plan(years)
    summary = RunSummary(years=years)
    started = time.perf_counter()
    with linkage_key_in_env(key), dagster_instance() as instance:
        defs = build_definitions(OutcomesConfig.from_settings(settings))
        for i, (job, partition) in enumerate(steps, 1):
            label = f"[{i:>2}/{len(steps)}] {job:<20} {partition or 'all years':<10}"
            t0 = time.perf_counter()
            try:
                timed = run_step(defs, instance, job, partition)
                signpost(settings.warehouse_dir, RUNNER_STEP, "all")
            except RunFailed:
                echo(f"{label}  FAILED")
                raise
            echo(f"{label}  {time.perf_counter() - t0:5.1f} s")
            for line in step_lines(defs, timed):
                echo(line)
            summary.steps += 1
        summary.seconds = time.perf_counter() - started
        summary.figures = figures(Warehouse(settings.warehouse_dir), years, instance)
    return summary


def zero_padded(instance: dg.DagsterInstance, years: list[int]) -> int:
    """Number cells of ssn, zip and county_fips that staging gave back their zeros."""
    return sum(
        int(materialized(instance, staged_table(s).name, str(y)).get(ZERO_PADDED, 0))
        for s in SOURCES.values() for y in years
    )  # fmt: skip


def figures(
    wh: Warehouse, years: list[int], instance: dg.DagsterInstance | None = None
) -> dict[str, int]:
    ledger = wh.read(LOAD_LEDGER, years)
    links = resolve(wh.read(RECORD_LINKS), wh.read(PERSON_KEY_MERGES))
    published = wh.read(OUTCOME_INDICATORS, years)
    return {
        "files loaded": ledger.height,
        "rows in": int(ledger["rows_read"].sum()),
        "rows staged": int(ledger["rows_staged"].sum()),
        "quarantined": int(ledger["rows_quarantined"].sum()),
        "duplicates": int(ledger["duplicates_collapsed"].sum()),
        **({"zero-padded cells": zero_padded(instance, years)} if instance else {}),
        "persons": links.get_column("person_key").n_unique(),
        "indicator cells": published.height,
        "suppressed cells": published.filter(pl.col("suppression").is_not_null()).height,
        "impact estimates": wh.read(PARTNERSHIP_IMPACT)
        .filter(pl.col("suppression").is_null())
        .height,
    }
