"""Automation (issue 10, point 1): the landing-zone sensor over real files, the sensor
that carries a successful run downstream over a real instance's runs, and the monthly
refresh and yearly finalisation schedules."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.resources import OutcomesConfig
from outcomes.arrivals import DONE, Seen, arrivals
from pipelines.alerts import RANGE_END, RANGE_START
from pipelines.automation import (
    DOWNSTREAM_SENSOR,
    LANDING_SENSOR,
    MONTHLY_REFRESH,
    YEARLY_FINALISATION,
    Cursor,
)
from pipelines.definitions import defs
from tests.conftest import TEST_KEY, Materialized

SETTLE = 300.0
SPELLS = "public/dhs/spells_2023.parquet"
MAPPED = "nonprofit/community_action"  # a partner with a mapping.yaml in the sample


@pytest.fixture(scope="module")
def zone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from outcomes.sample import generate

    root = tmp_path_factory.mktemp("arrivals")
    generate(root, scale=100, seed=3, years=[2022, 2023])
    return root / "landing"


@pytest.fixture
def landing(zone: Path, tmp_path: Path) -> Path:
    """A copy of the sample zone, every file last changed an hour ago (settled)."""
    import shutil

    copy = tmp_path / "landing"
    shutil.copytree(zone, copy)
    settle_all(copy, time.time() - 3600)
    return copy


def settle_all(root: Path, when: float) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (when, when))


def deliver(landing: Path, rel: str, content: bytes, when: float) -> None:
    (landing / rel).write_bytes(content)
    os.utime(landing / rel, (when, when))


def test_every_settled_file_arrives_once_and_an_unchanged_one_never_again(landing: Path):
    now = time.time()
    found, cursor = arrivals(landing, {}, now, SETTLE)
    files = {p.relative_to(landing).as_posix() for p in landing.rglob("*") if p.is_file()}
    assert {a.relative for a in found} == files  # data files, mapping.yaml, reference
    again, cursor2 = arrivals(landing, cursor, now + 60, SETTLE)
    assert again == [] and cursor2 == cursor


def test_a_delivery_of_a_then_b_then_a_again_arrives_three_times(landing: Path):
    now = time.time()
    _, cursor = arrivals(landing, {}, now, SETTLE)
    a, b = (landing / SPELLS).read_bytes(), b"another delivery"
    keys = []
    for i, content in enumerate([b, a, b]):
        deliver(landing, SPELLS, content, now - 3000 + i * 100)
        found, cursor = arrivals(landing, cursor, now, SETTLE)
        assert [f.relative for f in found] == [SPELLS] and found[0].years == {2023}
        keys.append(found[0].run_key)
    assert len(set(keys)) == 3
    assert arrivals(landing, cursor, now, SETTLE)[0] == []


def test_a_file_still_changing_waits_for_its_settle_time_or_a_done_marker(landing: Path):
    now = time.time()
    _, cursor = arrivals(landing, {}, now, SETTLE)
    before = cursor[SPELLS]
    deliver(landing, SPELLS, b"being written", now - 10)
    found, cursor = arrivals(landing, cursor, now, SETTLE)
    assert found == [] and cursor[SPELLS] == before  # kept: it arrives once settled
    stale = landing / (SPELLS + DONE)
    stale.write_text("")
    os.utime(stale, (now - 20, now - 20))  # a marker older than the file says nothing
    assert arrivals(landing, cursor, now, SETTLE)[0] == []
    os.utime(stale, (now, now))
    assert [f.relative for f in arrivals(landing, cursor, now, SETTLE)[0]] == [SPELLS]
    assert [f.relative for f in arrivals(landing, cursor, now + SETTLE, SETTLE)[0]] == [SPELLS]


def test_a_mapping_touches_its_partners_years_and_a_reference_file_the_reference(landing):
    now = time.time()
    _, cursor = arrivals(landing, {}, now, SETTLE)
    deliver(landing, f"{MAPPED}/mapping.yaml",
            (landing / MAPPED / "mapping.yaml").read_bytes() + b"\n", now - 3000)  # fmt: skip
    deliver(landing, "reference/counties.csv",
            (landing / "reference/counties.csv").read_bytes() + b"\n", now - 3000)  # fmt: skip
    found = {f.relative: f.years for f in arrivals(landing, cursor, now, SETTLE)[0]}
    assert found == {f"{MAPPED}/mapping.yaml": {2022, 2023}, "reference/counties.csv": None}


def tick(instance: dg.DagsterInstance, landing: Path, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor,
        resources={"outcomes": OutcomesConfig(landing_dir=str(landing), warehouse_dir=".",
                                              linkage_key=TEST_KEY)},
    )  # fmt: skip
    return defs.resolve_sensor_def(LANDING_SENSOR)(context)


def requested(result: dg.SensorResult) -> list[tuple[str, str | None]]:
    return [(r.job_name, r.partition_key) for r in result.run_requests]


def test_the_landing_sensor_starts_reference_then_each_year_in_order(landing: Path):
    with dg.DagsterInstance.ephemeral() as instance:
        first = tick(instance, landing, None)
        assert requested(first) == [("load_reference", None)]
        assert Cursor.load(first.cursor).pending.keys() == {2022, 2023}
        second = tick(instance, landing, first.cursor)
        assert requested(second) == [("stage_and_link", "2022")]
        # while that run waits or goes, the next year waits too (linkage builds on it)
        run = instance.create_run_for_job(defs.resolve_job_def("stage_and_link"),
                                          tags={"dagster/partition": "2022"})  # fmt: skip
        assert requested(tick(instance, landing, second.cursor)) == []
        instance.report_run_canceled(run)
        third = tick(instance, landing, second.cursor)
        assert requested(third) == [("stage_and_link", "2023")]
        assert requested(tick(instance, landing, third.cursor)) == []  # nothing changed
        deliver(landing, SPELLS, b"a re-delivery", time.time() - 3000)
        fourth = tick(instance, landing, third.cursor)
        assert requested(fourth) == [("stage_and_link", "2023")]
        assert fourth.run_requests[0].run_key != third.run_requests[0].run_key


def finished_run(sample: Materialized, job: str) -> tuple[dg.DagsterRun, dg.DagsterEvent]:
    """A successful run of `job` in the sample's instance, and its success event."""
    os.environ["DAGSTER_HOME"] = str(sample.root / "dagster_home")
    try:
        with dg.DagsterInstance.get() as instance:
            run = instance.get_runs(filters=dg.RunsFilter(job_name=job), limit=1)[0]
            (entry,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS)
            return run, entry.dagster_event
    finally:
        del os.environ["DAGSTER_HOME"]


@pytest.mark.parametrize(
    ("finished", "then"),
    [("load_reference", "publish_indicators"), ("stage_and_link", "integrate"),
     ("integrate", "publish_indicators"), ("publish_indicators", "estimate_impact")],
)  # fmt: skip
def test_a_successful_run_starts_the_next_stage_over_every_linked_year(
    sample: Materialized, finished: str, then: str
) -> None:
    run, event = finished_run(sample, finished)
    context = dg.build_run_status_sensor_context(
        sensor_name=DOWNSTREAM_SENSOR, dagster_instance=dg.DagsterInstance.ephemeral(),
        dagster_run=run, dagster_event=event,
        resources={"outcomes": OutcomesConfig.from_settings(sample.settings)},
    )  # fmt: skip
    (request,) = defs.resolve_sensor_def(DOWNSTREAM_SENSOR)(context)
    assert request.job_name == then and request.run_key.startswith(f"after:{run.run_id}")
    if then != "estimate_impact":
        years = sample.summary.years
        assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (str(years[0]),
                                                                        str(years[-1]))  # fmt: skip


def test_only_a_successful_run_is_carried_downstream() -> None:
    """A failed run (a failed blocking check fails its run) never reaches the sensor: it
    watches successes only (Dagster keeps that setting private)."""
    sensor = defs.resolve_sensor_def(DOWNSTREAM_SENSOR)
    assert sensor._run_status == dg.DagsterRunStatus.SUCCESS


@pytest.mark.parametrize(("name", "year"), [(MONTHLY_REFRESH, 2026), (YEARLY_FINALISATION, 2025)])
def test_the_schedules_take_the_year_in_progress_and_the_year_just_ended(name: str, year: int):
    schedule = defs.resolve_schedule_def(name)
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 2, 1, 6))
    request = schedule(context)
    assert request.partition_key == str(year)
    assert schedule.job_name == "stage_and_link"


def test_the_cursor_survives_a_round_trip() -> None:
    cursor = Cursor({"a.csv": Seen(3, 10, "ab" * 32)}, {2023: "stage_and_link:2023:x"})
    assert Cursor.load(cursor.dump()) == cursor
