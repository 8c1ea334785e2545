"""Shared fixtures: landing zones materialized once per session through Dagster."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from outcomes.config import Settings
from outcomes.warehouse import Warehouse
from pipelines.runner import RunSummary, landing_years, run_all
from tests.handmade import write_handmade

# a linkage key as `outcomes run` accepts one (32 bytes or more); only the tests know it
TEST_KEY = "test-linkage-key-for-the-test-suite-only-0123456789"


@dataclass
class Materialized:
    landing: Path
    warehouse: Warehouse
    settings: Settings
    summary: RunSummary

    @property
    def root(self) -> Path:
        return self.landing.parent


def materialize(landing: Path, warehouse: Path, **overrides: object) -> Materialized:
    settings = Settings(
        landing_dir=landing, warehouse_dir=warehouse, linkage_key=TEST_KEY, **overrides
    )
    summary = run_all(settings, landing_years(settings), echo=lambda _: None)
    return Materialized(landing, Warehouse(warehouse), settings, summary)


@pytest.fixture(scope="session")
def handmade(tmp_path_factory: pytest.TempPathFactory) -> Materialized:
    root = tmp_path_factory.mktemp("handmade")
    return materialize(write_handmade(root), root / "warehouse")


SAMPLE_SCALE = 2000


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Materialized:
    """A generated landing zone with known truth, run through a persistent Dagster instance."""
    from outcomes.sample import generate

    root = tmp_path_factory.mktemp("sample")
    generate(root, scale=SAMPLE_SCALE, seed=11)
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        return materialize(root / "landing", root / "warehouse")


DEMO_YEARS = "2022-2023"  # a quicker demo than the default six years, the same command


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`outcomes demo` as a user runs it, in a process of its own: its folder."""
    import os
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("demo") / "demo"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DAGSTER_HOME", "OUTCOMES_LINKAGE_KEY")}  # fmt: skip
    command = [Path(sys.executable).parent / "outcomes", "demo", "--out", out,
               "--scale", "300", "--years", DEMO_YEARS]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return out
