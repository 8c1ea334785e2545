"""Failure you hear about (issue 10, point 6): a failed run's message names the job,
the partition, the step with its assets, and the cause; the run-failure sensor logs it
and POSTs it to a webhook, here a real HTTP server on loopback."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest

from outcomes.config import ENV_ALERT_WEBHOOK
from pipelines.definitions import defs
from pipelines.runner import RunFailed
from tests.conftest import Materialized, materialize

BROKEN = "public/hra/spells_2014.csv"


@dataclass
class Failed:
    home: Path
    message: str


@pytest.fixture(scope="module")
def failed(handmade: Materialized, tmp_path_factory: pytest.TempPathFactory) -> Failed:
    """The handmade zone with one spells file lacking its columns, run into an instance
    that keeps the failed run."""
    root = tmp_path_factory.mktemp("alerts")
    landing, home = root / "landing", root / "dagster_home"
    shutil.copytree(handmade.landing, landing)
    (landing / BROKEN).write_text("color,shape\nred,round\n")
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        with pytest.raises(RunFailed) as e:
            materialize(landing, root / "warehouse")
    return Failed(home, str(e.value))


@pytest.fixture
def instance(failed: Failed, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DAGSTER_HOME", str(failed.home))
    with dg.DagsterInstance.get() as instance:
        yield instance


class Webhook:
    """A loopback HTTP server that keeps every JSON body POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.headers["Content-Type"], json.loads(body)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


def evaluate_sensor(instance: dg.DagsterInstance) -> None:
    """The code location's run-failure sensor on the failed run, as the daemon calls it."""
    (run,) = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    (entry,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="alert_on_run_failure", dagster_instance=instance, dagster_run=run,
        dagster_event=entry.dagster_event,
    )  # fmt: skip
    sensor = defs.resolve_sensor_def("alert_on_run_failure")
    sensor(context)


def test_a_failed_run_names_its_job_partition_step_assets_and_cause(failed: Failed) -> None:
    job, step, cause = failed.message.split(": ", 2)
    assert job == "stage_and_link 2014"
    assert step.startswith("step staging (") and "staged_spells" in step
    assert BROKEN in cause and "record_id" in cause  # the file and the missing column


def test_the_sensor_logs_the_failure_and_posts_it_to_the_webhook(
    instance, webhook: Webhook, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(ENV_ALERT_WEBHOOK, webhook.url)
    with caplog.at_level(logging.ERROR, logger="outcomes.alerts"):
        evaluate_sensor(instance)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "outcomes.alerts"]
    assert line.startswith("outcomes run failed: stage_and_link 2014: step staging (")
    ((content_type, body),) = webhook.received
    assert content_type == "application/json"
    assert (body["job"], body["partition"], body["step"]) == ("stage_and_link", "2014", "staging")
    assert "staged_spells" in body["assets"] and BROKEN in body["cause"]
    assert body["text"] == line.removesuffix(f" (run {body['run_id']})")


def test_without_a_webhook_the_sensor_only_logs(
    instance, webhook: Webhook, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(ENV_ALERT_WEBHOOK, raising=False)
    with caplog.at_level(logging.ERROR, logger="outcomes.alerts"):
        evaluate_sensor(instance)
    assert any(r.name == "outcomes.alerts" for r in caplog.records)
    assert webhook.received == []


def test_a_webhook_that_fails_fails_the_tick_so_the_daemon_tries_again(
    instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Webhook(status=500)
    monkeypatch.setenv(ENV_ALERT_WEBHOOK, broken.url)
    try:
        with pytest.raises(Exception, match="500"):
            evaluate_sensor(instance)
        assert len(broken.received) == 1
    finally:
        broken.close()


def test_the_sensor_watches_every_run_from_the_start() -> None:
    sensor = defs.resolve_sensor_def("alert_on_run_failure")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
