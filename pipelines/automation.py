"""Automation: the landing-zone sensor, the sensor that carries a finished run
downstream, and the monthly refresh and yearly finalisation schedules.

A delivery flows as `outcomes run` would take it: reference tables first, then staging
and linkage year by year in order (linkage builds on the earlier years), then one run
integrating every year, one computing every year's indicators, then the impact
estimates. Each run starts when the one before it has succeeded, so a failed blocking
check (a failed run) stops everything downstream of it. Both sensors and both
schedules start stopped: turn them on in the UI or with `dagster sensor start`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from assets.partitions import ranges
from assets.resources import OutcomesConfig
from outcomes.arrivals import Seen, arrivals, touched_years
from outcomes.config import settle_seconds
from outcomes.schema import RECORD_LINKS
from pipelines.alerts import RANGE_END, RANGE_START
from pipelines.jobs import (
    estimate_impact,
    integrate,
    load_reference,
    publish_indicators,
    stage_and_link,
)

LANDING_SENSOR = "landing_zone"
DOWNSTREAM_SENSOR = "carry_downstream"
MONTHLY_REFRESH = "monthly_refresh"
YEARLY_FINALISATION = "yearly_finalisation"
# what runs after each job succeeds
NEXT = {
    load_reference.name: publish_indicators,
    stage_and_link.name: integrate,
    integrate.name: publish_indicators,
    publish_indicators.name: estimate_impact,
}
WAITING = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]  # fmt: skip


@dataclass
class Cursor:
    """The landing sensor's memory: every file as last seen, and the years whose staging
    is still to start (one at a time, in order), with their run keys."""

    seen: dict[str, Seen] = field(default_factory=dict)
    pending: dict[int, str] = field(default_factory=dict)

    @classmethod
    def load(cls, raw: str | None) -> Cursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls({k: Seen(*v) for k, v in data["seen"].items()},
                   {int(y): k for y, k in data["pending"].items()})  # fmt: skip

    def dump(self) -> str:
        return json.dumps({
            "seen": {k: [s.size, s.mtime_ns, s.sha256] for k, s in sorted(self.seen.items())},
            "pending": {str(y): k for y, k in sorted(self.pending.items())},
        })  # fmt: skip


def _digest(keys: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]


def busy(instance: dg.DagsterInstance, *jobs: dg.UnresolvedAssetJobDefinition) -> bool:
    """Whether a run of these jobs is queued or going."""
    return any(
        instance.get_runs(filters=dg.RunsFilter(job_name=job.name, statuses=WAITING), limit=1)
        for job in jobs
    )


@dg.sensor(
    name=LANDING_SENSOR, jobs=[load_reference, stage_and_link], minimum_interval_seconds=60,
    description="New or changed landing files, once settled (OUTCOMES_SETTLE_SECONDS, or a "
    "`.done` marker beside the file): the reference tables, then each year they touch.",
)  # fmt: skip
def landing_zone(context: dg.SensorEvaluationContext, outcomes: OutcomesConfig):
    state = Cursor.load(context.cursor)
    found, seen = arrivals(Path(outcomes.landing_dir), state.seen, time.time(), settle_seconds())
    pending = dict(state.pending)
    for year in touched_years(found):
        keys = [a.run_key for a in found if a.years and year in a.years]
        pending[year] = f"{stage_and_link.name}:{year}:{_digest(keys)}"
    requests = []
    reference = [a.run_key for a in found if a.years is None]
    if reference:
        key = f"{load_reference.name}:{_digest(reference)}"
        requests.append(dg.RunRequest(job_name=load_reference.name, run_key=key))
    elif pending and not busy(context.instance, load_reference, stage_and_link):
        year = min(pending)  # linkage needs every earlier year linked first
        requests.append(dg.RunRequest(job_name=stage_and_link.name, partition_key=str(year),
                                      run_key=pending.pop(year)))  # fmt: skip
    return dg.SensorResult(run_requests=requests, cursor=Cursor(seen, pending).dump())


def downstream_requests(
    finished: dg.DagsterRun, outcomes: OutcomesConfig
) -> list[dg.RunRequest] | dg.SkipReason:
    """The runs that follow a successful run: one per unbroken range of linked years."""
    after = NEXT[finished.job_name]
    key = f"after:{finished.run_id}"
    if after is estimate_impact:
        return [dg.RunRequest(job_name=after.name, run_key=key)]
    years = outcomes.warehouse.years(RECORD_LINKS)
    if not years:
        return dg.SkipReason("no year is linked yet")
    return [
        dg.RunRequest(job_name=after.name, run_key=f"{key}:{span[0]}",
                      tags={RANGE_START: str(span[0]), RANGE_END: str(span[-1])})
        for span in ranges(years)
    ]  # fmt: skip


@dg.run_status_sensor(
    name=DOWNSTREAM_SENSOR,
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[load_reference, stage_and_link, integrate, publish_indicators],
    request_jobs=[integrate, publish_indicators, estimate_impact],
    description="After a successful run, the next stage over every linked year; a failed "
    "run (a failed blocking check) starts nothing.",
)
def carry_downstream(context: dg.RunStatusSensorContext, outcomes: OutcomesConfig):
    finished = context.dagster_run
    if finished.job_name in (load_reference.name, stage_and_link.name) and busy(
        context.instance, load_reference, stage_and_link
    ):
        return dg.SkipReason("more staging is queued or running: its last run carries on")
    return downstream_requests(finished, outcomes)


def _year_schedule(name: str, cron: str, years_back: int, description: str):
    """A schedule that stages and links one year: this one, or `years_back` before."""

    @dg.schedule(name=name, job=stage_and_link, cron_schedule=cron, description=description)
    def schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        year = context.scheduled_execution_time.year - years_back
        return dg.RunRequest(partition_key=str(year), tags={"outcomes/schedule": name})

    return schedule


monthly_refresh = _year_schedule(
    MONTHLY_REFRESH, "0 6 1 * *", 0,
    "On the 1st of each month: stage and link the year in progress again (then "
    "carry_downstream integrates and publishes).",
)  # fmt: skip
yearly_finalisation = _year_schedule(
    YEARLY_FINALISATION, "0 6 15 1 *", 1,
    "On 15 January: stage and link the year just ended with its final deliveries; then "
    "the indicators that waited for it are recomputed downstream.",
)  # fmt: skip


sensors = [landing_zone, carry_downstream]
schedules = [monthly_refresh, yearly_finalisation]
