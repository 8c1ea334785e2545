"""Failure you hear about: a failed run named by its job, partition, step, assets and
cause, as a log line and, when OUTCOMES_ALERT_WEBHOOK_URL is set, a JSON POST to it.

The same message is what `outcomes run` prints and what the run-failure sensor sends
for a run started anywhere (a schedule, a sensor, a backfill from the UI). Causes are
the pipeline's own error messages, which name files, lines, rules and counts, never a
value (tests/test_privacy.py).
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import dagster as dg

from outcomes.config import ENV_ALERT_WEBHOOK

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo

log = logging.getLogger("outcomes.alerts")
WEBHOOK_SECONDS = 10
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
PARTITION = "dagster/partition"


@dataclass(frozen=True)
class Failure:
    job: str
    partition: str | None  # a year, a range `first-last`, or None (unpartitioned)
    step: str | None
    assets: tuple[str, ...]
    cause: str
    run_id: str

    def message(self) -> str:
        where = f"{self.job} {self.partition or ''}".strip()
        if self.step:
            where += f": step {self.step}" + (f" ({', '.join(self.assets)})" if self.assets else "")
        return f"{where}: {self.cause}"

    def payload(self) -> dict[str, object]:
        return {"text": f"outcomes run failed: {self.message()}", **asdict(self)}


def run_partition(tags: Mapping[str, str]) -> str | None:
    if tags.get(RANGE_START) and tags.get(RANGE_END) and tags[RANGE_START] != tags[RANGE_END]:
        return f"{tags[RANGE_START]}-{tags[RANGE_END]}"
    return tags.get(PARTITION) or tags.get(RANGE_START)


def cause(error: SerializableErrorInfo | None) -> str:
    """The user code's own message: the innermost cause, without the exception's name."""
    while error is not None and error.cause is not None:
        error = error.cause
    message = error.message.strip() if error else "unknown error"
    return re.sub(r"^[\w.]*(Failure|Error|Exception):\s*", "", message)


def assets_by_op(definitions: Iterable[object]) -> dict[str, tuple[str, ...]]:
    """What each op materializes or checks, by name: how a failed step names its assets."""
    out = {}
    for d in definitions:
        if isinstance(d, dg.AssetsDefinition) and d.is_executable:
            keys = d.keys or {c.asset_key for c in d.check_keys}
            out[d.node_def.name] = tuple(sorted(k.to_user_string() for k in keys))
    return out


def failure_of(
    run: dg.DagsterRun, events: Sequence[dg.DagsterEvent], assets: Mapping[str, tuple[str, ...]]
) -> Failure:
    """The first failed step of a run (or the run's own failure when no step failed)."""
    step = next((e for e in events if e.is_step_failure), None)
    if step is not None:
        error, op = step.step_failure_data.error, step.step_key
    else:
        failed = next((e for e in events if e.is_run_failure), None)
        error = failed.event_specific_data.error if failed and failed.event_specific_data else None
        op = None
    return Failure(run.job_name, run_partition(run.tags), op, assets.get(op or "", ()),
                   cause(error) if error else "the run failed", run.run_id)  # fmt: skip


def alert(failure: Failure, url: str | None = None) -> None:
    """Log the failure; POST it as JSON when a webhook is configured (a failed POST raises,
    so the sensor tries again at its next tick)."""
    log.error("outcomes run failed: %s (run %s)", failure.message(), failure.run_id)
    url = url if url is not None else os.environ.get(ENV_ALERT_WEBHOOK)
    if not url:
        return
    request = urllib.request.Request(
        url, data=json.dumps(failure.payload()).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=WEBHOOK_SECONDS) as response:
        response.read()


def failure_sensor(assets: Mapping[str, tuple[str, ...]]) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name="alert_on_run_failure",
        description="Every failed run, as a log line and (with OUTCOMES_ALERT_WEBHOOK_URL) "
        "a webhook: job, partition, step, assets and cause.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def alert_on_run_failure(context: dg.RunFailureSensorContext) -> None:
        events = context.get_step_failure_events() or [context.failure_event]
        failure = failure_of(context.dagster_run, events, assets)
        context.log.error(failure.message())
        alert(failure)

    return alert_on_run_failure
