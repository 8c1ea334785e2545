"""The demo as evaluators first meet it (issue 10, point 2): `outcomes demo` keeps its
Dagster instance in the demo folder, so `dagster dev` over it shows every run, every
asset's materializations with their metadata, and every check's result."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from pipelines.cli import DEMO_INSTANCE
from pipelines.definitions import defs
from tests.conftest import DEMO_YEARS

YEARS = {str(y) for y in range(int(DEMO_YEARS[:4]), int(DEMO_YEARS[-4:]) + 1)}


@pytest.fixture(scope="module")
def instance(demo: Path, monkeypatch_module: pytest.MonkeyPatch):
    monkeypatch_module.setenv("DAGSTER_HOME", str(demo / DEMO_INSTANCE))
    with dg.DagsterInstance.get() as instance:
        yield instance


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_the_demo_keeps_its_runs_in_its_own_instance(demo: Path, instance) -> None:
    assert (demo / DEMO_INSTANCE / "dagster.yaml").exists()
    runs = instance.get_runs()
    # reference, a run per year for staging and linkage, one each for integration,
    # indicators (every year) and impact
    assert len(runs) == 1 + len(YEARS) + 3
    assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}


def test_every_asset_of_every_year_is_materialized_there(instance) -> None:
    graph = defs.resolve_asset_graph()
    missing = []
    for asset in graph.assets_defs:
        if not asset.is_executable:
            continue
        for key in asset.keys:
            if asset.partitions_def is not None:
                have = instance.get_materialized_partitions(key)
                missing += [(key.to_user_string(), y) for y in sorted(YEARS - have)]
            elif instance.get_latest_materialization_event(key) is None:
                missing.append((key.to_user_string(), None))
    assert missing == []


def test_the_indicators_materialization_carries_its_charts_and_figures(instance) -> None:
    event = instance.get_latest_materialization_event(dg.AssetKey("outcome_indicators"))
    metadata = event.asset_materialization.metadata
    assert {"suppressed_cells", "min_cell", "dagster/column_schema"} <= set(metadata)
    assert any(k.startswith("trend_") for k in metadata)


def test_every_check_of_every_year_has_a_result_there(instance) -> None:
    graph = defs.resolve_asset_graph()
    storage = instance.event_log_storage
    partitioned = {k for k in graph.asset_check_keys
                   if graph.get(k.asset_key).partitions_def is not None}  # fmt: skip
    for key in graph.asset_check_keys:
        history = storage.get_asset_check_execution_history(key, limit=10)
        wanted = len(YEARS) if key in partitioned else 1
        assert len(history) == wanted, key
        assert {h.status.value for h in history} == {"SUCCEEDED"}, key
