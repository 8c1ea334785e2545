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
