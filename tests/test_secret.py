"""The linkage secret (issue 6, point 4): refused when missing or weak outside the demo,
tied to its warehouse by a fingerprint, and never shown by the webserver or stored."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from assets.resources import OutcomesConfig
from outcomes.config import ENV_LANDING_DIR, ENV_WAREHOUSE_DIR, Settings
from outcomes.secret import (
    DEMO_LINKAGE_KEY,
    ENV_LINKAGE_KEY,
    MAKE_A_KEY,
    KeyMismatchError,
    LinkageKeyError,
    check_key_fingerprint,
    fingerprint_path,
    key_fingerprint,
    validate_linkage_key,
)
from outcomes.warehouse import Warehouse
from pipelines.cli import main
from pipelines.runner import landing_years, run_all
from tests.conftest import TEST_KEY, Materialized
from tests.handmade import write_handmade

REPO = Path(__file__).resolve().parents[1]
OTHER_KEY = "another-linkage-key-of-the-test-suite-0123456789"

# (key, what the refusal says); None: the variable is not set
WEAK = {
    "missing": (None, "OUTCOMES_LINKAGE_KEY is not set"),
    "empty": ("", "OUTCOMES_LINKAGE_KEY is empty"),
    "blank": ("   ", "OUTCOMES_LINKAGE_KEY is empty"),
    "demo key": (DEMO_LINKAGE_KEY, "OUTCOMES_LINKAGE_KEY is the built-in demo key"),
    "31 bytes": ("k" * 31, "OUTCOMES_LINKAGE_KEY is 31 bytes long; it must be at least 32"),
    "31 bytes in 16 characters": ("é" * 15 + "k", "is 31 bytes long"),
}


def _env(key: str | None) -> dict[str, str | None]:
    return {ENV_LINKAGE_KEY: key}


# (a) refusal and the demo


def test_test_key_is_a_real_one():
    assert validate_linkage_key(TEST_KEY) == TEST_KEY
    assert len(TEST_KEY.encode()) >= 32


@pytest.mark.parametrize("case", WEAK)
def test_a_weak_key_is_refused_saying_how_to_make_one(case: str):
    key, says = WEAK[case]
    with pytest.raises(LinkageKeyError) as e:
        validate_linkage_key(key)
    assert says in str(e.value)
    assert MAKE_A_KEY in str(e.value)


@pytest.mark.parametrize("case", WEAK)
def test_settings_from_env_refuse_a_weak_key(case: str, monkeypatch: pytest.MonkeyPatch):
    key, says = WEAK[case]
    if key is None:
        monkeypatch.delenv(ENV_LINKAGE_KEY, raising=False)
    else:
        monkeypatch.setenv(ENV_LINKAGE_KEY, key)
    with pytest.raises(LinkageKeyError, match=says):
        Settings.from_env("landing", "warehouse")


@pytest.mark.parametrize("case", WEAK)
def test_outcomes_run_refuses_a_weak_key_before_anything(case: str, tmp_path: Path):
    key, says = WEAK[case]
    warehouse = tmp_path / "warehouse"
    result = CliRunner().invoke(
        main,
        ["run", "--landing-dir", str(tmp_path / "landing"), "--warehouse-dir", str(warehouse)],
        env=_env(key),
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("outcomes run refused: ")
    assert says in result.stderr and MAKE_A_KEY in result.stderr
    assert not warehouse.exists()


def test_the_demo_may_use_the_demo_key_but_not_a_weak_one():
    assert validate_linkage_key(None, demo=True) == DEMO_LINKAGE_KEY
    assert validate_linkage_key("", demo=True) == DEMO_LINKAGE_KEY
    assert validate_linkage_key(DEMO_LINKAGE_KEY, demo=True) == DEMO_LINKAGE_KEY
    assert validate_linkage_key(TEST_KEY, demo=True) == TEST_KEY
    with pytest.raises(LinkageKeyError, match="31 bytes"):
        validate_linkage_key("k" * 31, demo=True)


def test_outcomes_demo_runs_with_the_demo_key_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import outcomes.sample
    import pipelines.runner

    seen: list[Settings] = []
    monkeypatch.setattr(outcomes.sample, "generate", lambda out, **_: None)
    monkeypatch.setattr(pipelines.runner, "landing_years", lambda settings, years: [2020])

    def fake_run_all(settings: Settings, years: list[int], echo) -> pipelines.runner.RunSummary:
        seen.append(settings)
        return pipelines.runner.RunSummary(years=years)

    monkeypatch.setattr(pipelines.runner, "run_all", fake_run_all)
    result = CliRunner().invoke(
        main,
        ["demo", "--out", str(tmp_path)],
        env={ENV_LINKAGE_KEY: None, ENV_WAREHOUSE_DIR: "/elsewhere", ENV_LANDING_DIR: None},
    )
    assert result.exit_code == 0, result.output
    assert "note: this demo makes person keys with the built-in demo key" in result.stderr
    (settings,) = seen
    assert settings.demo and settings.uses_demo_key
    assert settings.warehouse_dir == (tmp_path / "warehouse").resolve()


def test_the_resource_refuses_a_weak_key_outside_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(ENV_WAREHOUSE_DIR, str(tmp_path / "warehouse"))
    monkeypatch.setenv(ENV_LANDING_DIR, str(tmp_path / "landing"))
    for key, says in WEAK.values():
        if key is None:
            monkeypatch.delenv(ENV_LINKAGE_KEY, raising=False)
        else:
            monkeypatch.setenv(ENV_LINKAGE_KEY, key)
        with pytest.raises(LinkageKeyError, match=says):
            OutcomesConfig.from_env()


def test_the_resource_over_the_demo_warehouse_uses_the_demo_key(monkeypatch: pytest.MonkeyPatch):
    for name in (ENV_WAREHOUSE_DIR, ENV_LANDING_DIR, ENV_LINKAGE_KEY):
        monkeypatch.delenv(name, raising=False)
    config = OutcomesConfig.from_env()
    assert config.demo and config.linkage_key == DEMO_LINKAGE_KEY
    assert config.warehouse_dir == str(Path("demo/warehouse").resolve())


def test_the_resource_takes_the_key_as_an_env_var_and_never_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    key = secrets.token_urlsafe(36)
    monkeypatch.setenv(ENV_WAREHOUSE_DIR, str(tmp_path / "warehouse"))
    monkeypatch.setenv(ENV_LINKAGE_KEY, key)
    config = OutcomesConfig.from_env()
    assert isinstance(config.linkage_key, dg.EnvVar)
    assert config.linkage_key.env_var_name == ENV_LINKAGE_KEY
    assert config.key == key and config.settings.linkage_key == key
    assert not config.demo
    for shown in (repr(config), str(config), repr(config.settings), str(config.settings)):
        assert key not in shown and "linkage_key" not in shown


def test_the_runner_passes_the_key_as_an_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from pipelines.runner import linkage_key_in_env

    monkeypatch.setenv(ENV_LINKAGE_KEY, "what was there before")
    settings = Settings(tmp_path / "landing", tmp_path / "warehouse", linkage_key=TEST_KEY)
    with linkage_key_in_env(TEST_KEY):
        config = OutcomesConfig.from_settings(settings)
    assert isinstance(config.linkage_key, dg.EnvVar)
    assert os.environ[ENV_LINKAGE_KEY] == "what was there before"
    # by hand, without the variable: a value, but a masked one
    by_hand = OutcomesConfig.from_settings(settings)
    assert by_hand.linkage_key == TEST_KEY and TEST_KEY not in repr(by_hand)
    field = OutcomesConfig.to_config_schema().as_field().config_type.fields["linkage_key"]
    assert field.is_secret


@dg.asset
def _uses_outcomes(outcomes: OutcomesConfig) -> None:
    assert outcomes.linkage_key == outcomes.key  # the key itself inside a run


def _materialize(config: OutcomesConfig) -> tuple[bool, str]:
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [_uses_outcomes], resources={"outcomes": config}, instance=instance,
            raise_on_error=False,
        )  # fmt: skip
        text = "\n".join(
            f"{e.level} {e.user_message} {e.dagster_event!r}"
            for e in instance.all_logs(result.run_id)
        )
        return result.success, text


def test_a_demo_run_warns_in_its_log(tmp_path: Path):
    ok, log = _materialize(
        OutcomesConfig(landing_dir=str(tmp_path), warehouse_dir=str(tmp_path), demo=True)
    )
    assert ok
    assert "this demo run makes person keys with the built-in demo key" in log


def test_a_run_started_with_a_weak_key_fails_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(ENV_LINKAGE_KEY, "k" * 31)
    ok, log = _materialize(
        OutcomesConfig(
            landing_dir=str(tmp_path),
            warehouse_dir=str(tmp_path),
            linkage_key=dg.EnvVar(ENV_LINKAGE_KEY),
        )
    )
    assert not ok
    assert "is 31 bytes long; it must be at least 32" in log
    ok, log = _materialize(OutcomesConfig(landing_dir=str(tmp_path), warehouse_dir=str(tmp_path)))
    assert not ok and "built-in demo key" in log  # the demo key outside the demo


# (b) the fingerprint


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under root with its size and mtime (ns)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def test_a_new_warehouse_gets_the_fingerprint_of_its_key_and_never_the_key(tmp_path: Path):
    warehouse = tmp_path / "warehouse"
    check_key_fingerprint(warehouse, TEST_KEY)
    path = fingerprint_path(warehouse)
    assert path == warehouse / "restricted" / "linkage" / "key_fingerprint.json"
    record = json.loads(path.read_text())
    assert record["fingerprint"] == key_fingerprint(TEST_KEY)
    assert len(record["fingerprint"]) == 64 and record["created_at"]
    assert TEST_KEY.encode() not in path.read_bytes()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    before = listing(warehouse)
    check_key_fingerprint(warehouse, TEST_KEY)  # the same key: nothing changes
    assert listing(warehouse) == before


def test_another_key_is_refused_without_showing_either(tmp_path: Path):
    warehouse = tmp_path / "warehouse"
    check_key_fingerprint(warehouse, TEST_KEY)
    before = listing(warehouse)
    with pytest.raises(KeyMismatchError) as e:
        check_key_fingerprint(warehouse, OTHER_KEY)
    message = str(e.value)
    assert "was built under another linkage key" in message
    assert "would not match" in message
    for secret in (TEST_KEY, OTHER_KEY, key_fingerprint(TEST_KEY), key_fingerprint(OTHER_KEY)):
        assert secret not in message
    assert key_fingerprint(TEST_KEY)[:8] in message  # a prefix tells them apart
    assert listing(warehouse) == before


def test_an_unreadable_fingerprint_refuses(tmp_path: Path):
    path = fingerprint_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(LinkageKeyError, match="cannot be read"):
        check_key_fingerprint(tmp_path, TEST_KEY)


@pytest.fixture(scope="module")
def keyed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Materialized, Path]:
    """A run of the handmade landing zone through `run_all` under a persistent DAGSTER_HOME."""
    root = tmp_path_factory.mktemp("keyed")
    landing = write_handmade(root)
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    settings = Settings(landing_dir=landing, warehouse_dir=root / "warehouse", linkage_key=TEST_KEY)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        mp.delenv(ENV_LINKAGE_KEY, raising=False)
        summary = run_all(settings, landing_years(settings), echo=lambda _: None)
        assert ENV_LINKAGE_KEY not in os.environ  # the runner restored the environment
    return Materialized(landing, Warehouse(settings.warehouse_dir), settings, summary), home


def files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_run_records_the_fingerprint_and_stores_the_key_nowhere(
    keyed_run: tuple[Materialized, Path],
):
    run, home = keyed_run
    assert run.summary.steps > 0
    record = json.loads(fingerprint_path(run.settings.warehouse_dir).read_text())
    assert record["fingerprint"] == key_fingerprint(TEST_KEY)
    assert list(home.rglob("*.db")), "the runs were stored under DAGSTER_HOME"
    assert files_holding(home, TEST_KEY.encode()) == []
    assert files_holding(run.settings.warehouse_dir, TEST_KEY.encode()) == []


def test_a_second_run_under_another_key_refuses_and_writes_nothing(
    keyed_run: tuple[Materialized, Path], tmp_path: Path
):
    run, home = keyed_run
    warehouse = tmp_path / "warehouse"
    shutil.copytree(run.settings.warehouse_dir, warehouse)  # keeps mtimes
    before, home_before = listing(warehouse), listing(home)
    other = Settings(landing_dir=run.landing, warehouse_dir=warehouse, linkage_key=OTHER_KEY)
    with pytest.raises(KeyMismatchError, match="was built under another linkage key"):
        run_all(other, landing_years(other), echo=lambda _: None)
    result = CliRunner().invoke(
        main,
        ["run", "--landing-dir", str(run.landing), "--warehouse-dir", str(warehouse)],
        env={ENV_LINKAGE_KEY: OTHER_KEY, "DAGSTER_HOME": str(home)},
    )
    assert result.exit_code == 1
    assert "outcomes run refused: the warehouse" in result.stderr
    assert "was built under another linkage key" in result.stderr
    assert OTHER_KEY not in result.output and TEST_KEY not in result.output
    assert listing(warehouse) == before
    assert listing(home) == home_before  # not even a run was started


# (c) the webserver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def _graphql(base: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{base}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        answer = json.loads(r.read())
    assert "errors" not in answer, answer
    return answer["data"]


REPOSITORIES = """{ repositoriesOrError { __typename
  ... on RepositoryConnection { nodes { name location { name }
      allTopLevelResourceDetails { name configuredValues { key value type } } } }
  ... on PythonError { message } } }"""
LOCATION_ERRORS = """{ workspaceOrError { ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
RESOURCES = """query ($selector: RepositorySelector!) {
  allTopLevelResourceDetailsOrError(repositorySelector: $selector) { __typename
    ... on ResourceDetailsList { results { name configuredValues { key value type } } }
    ... on PythonError { message } } }"""


def _wait_for_resources(base: str, server: subprocess.Popen, deadline: float) -> dict:
    """The first repository once the webserver answers and has loaded the code location."""
    while time.monotonic() < deadline:
        assert server.poll() is None, "the webserver exited"
        try:
            _get(f"{base}/server_info", timeout=2)
            data = _graphql(base, REPOSITORIES)["repositoriesOrError"]
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
            continue
        if data["__typename"] == "RepositoryConnection" and data["nodes"]:
            return data["nodes"][0]
        entries = _graphql(base, LOCATION_ERRORS)["workspaceOrError"]["locationEntries"]
        errors = [e for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
        assert not errors, errors
        time.sleep(0.5)
    raise AssertionError("the webserver did not serve the code location within 90 s")


def _stop(server: subprocess.Popen) -> None:
    """Stop the webserver and its code server: the whole process group, by its id."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        end = time.monotonic() + wait
        while time.monotonic() < end:
            server.poll()
            try:
                os.killpg(server.pid, 0)  # anyone left in the group?
            except ProcessLookupError:
                return
            time.sleep(0.2)


@contextmanager
def webserver(home: Path, env: dict[str, str], log: Path) -> Iterator[tuple[str, dict]]:
    """`dagster-webserver` over this repository's code location with DAGSTER_HOME `home`
    and `env`: its base URL and first repository once loaded; stopped on the way out."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO), **env}
    command = Path(sys.executable).parent / "dagster-webserver"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(command), "-h", "127.0.0.1", "-p", str(port),
             "-m", "pipelines.definitions", "-d", str(REPO)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            yield base, _wait_for_resources(base, server, time.monotonic() + 90)
        finally:
            _stop(server)


def test_the_webserver_shows_the_key_variable_never_its_value(tmp_path: Path):
    key = secrets.token_urlsafe(36)
    assert len(key) == 48
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        ENV_LINKAGE_KEY: key,
        ENV_LANDING_DIR: str(tmp_path / "landing"),
        ENV_WAREHOUSE_DIR: str(tmp_path / "warehouse"),
    }
    log = tmp_path / "webserver.log"
    with webserver(home, env, log) as (base, repo):
        location = repo["location"]["name"]
        selector = {"repositoryName": repo["name"], "repositoryLocationName": location}
        listed = _graphql(base, RESOURCES, {"selector": selector})
        listed = listed["allTopLevelResourceDetailsOrError"]
        assert listed["__typename"] == "ResourceDetailsList", listed
        pages = [
            _get(f"{base}/locations/{location}/resources")[1],
            _get(f"{base}/locations/{location}/resources/outcomes")[1],
        ]
    for resources in (repo["allTopLevelResourceDetails"], listed["results"]):
        outcomes = {r["name"]: r for r in resources}["outcomes"]
        values = {v["key"]: v for v in outcomes["configuredValues"]}
        assert values["linkage_key"]["type"] == "ENV_VAR"
        assert values["linkage_key"]["value"] == ENV_LINKAGE_KEY
        assert values["warehouse_dir"]["value"].strip('"') == str(tmp_path / "warehouse")
    answers = json.dumps([repo, listed]).encode() + b"".join(pages)
    assert key.encode() not in answers
    assert all(b"<html" in page.lower() for page in pages)
    stored = [p for p in home.rglob("*") if p.is_file()]
    assert stored, "the webserver wrote its instance under DAGSTER_HOME"
    assert files_holding(home, key.encode()) == []
    assert key.encode() not in log.read_bytes()
