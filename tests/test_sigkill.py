"""`outcomes run` killed by SIGKILL inside staging, linkage and indicators, then run again.

Each kill comes at a point named by OUTCOMES_FAULT (outcomes.release), so it is the
same every time. After each, the killed step's tables of that year read as one
release (all of the step's files, or none); after the last run every table of the
warehouse equals an uninterrupted run's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.validate import STAGING_WRITES
from outcomes.config import ENV_FAULT, ENV_LINKAGE_KEY
from outcomes.release import RELEASES, TMP
from outcomes.schema import (
    INDICATOR_PANEL,
    INDICATOR_PROVENANCE,
    LINKAGE_REVIEW,
    OUTCOME_INDICATORS,
    OUTCOME_INDICATORS_BY_GROUP,
    PERSON_KEY_MERGES,
    PERSON_KEY_SPLITS,
    RECORD_LINKS,
)
from outcomes.warehouse import Warehouse
from tests.conftest import TEST_KEY, Materialized, materialize

YEARS = [2022, 2023]
# columns that say when or by which run a table was written, not what it holds
VOLATILE = {"loaded_at", "run_id", "computed_at", "at"}
# (the step's fault point, its tables, the year; whether the kill comes after the commit)
KILLS = [
    ("staging 2023@renamed:1", STAGING_WRITES, 2023, True),
    ("linkage 2023@written:3",
     [RECORD_LINKS, PERSON_KEY_MERGES, PERSON_KEY_SPLITS, LINKAGE_REVIEW], 2023, False),
    ("indicators 2022-2023@committed",
     [INDICATOR_PANEL, OUTCOME_INDICATORS, OUTCOME_INDICATORS_BY_GROUP, INDICATOR_PROVENANCE],
     2022, True),
]  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Materialized:
    from outcomes.sample import generate

    root = tmp_path_factory.mktemp("sigkill")
    generate(root, scale=300, seed=3, years=YEARS)
    return materialize(root / "landing", root / "uninterrupted")


def outcomes_run(landing: Path, warehouse: Path, fault: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env |= {ENV_LINKAGE_KEY: TEST_KEY, ENV_FAULT: fault}
    command = [Path(sys.executable).parent / "outcomes", "run", "--landing-dir", landing,
               "--warehouse-dir", warehouse]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)


def stable(path: Path) -> pl.DataFrame:
    df = pl.read_parquet(path)
    return df.drop([c for c in df.columns if c in VOLATILE])


def tables(wh: Warehouse) -> list[Path]:
    return sorted(
        p.relative_to(wh.root)
        for zone in ("restricted", "analytic", "published")
        for p in (wh.root / zone).rglob("*.parquet")
    )


def same(a: Path, b: Path) -> bool:
    if not (a.exists() and b.exists()):
        return False
    try:
        assert_frame_equal(stable(a), stable(b))
    except AssertionError:
        return False
    return True


def test_a_run_killed_in_staging_linkage_and_indicators_recovers_to_an_uninterrupted_run(
    uninterrupted: Materialized, tmp_path: Path
) -> None:
    base, wh = uninterrupted.warehouse, Warehouse(tmp_path / "warehouse")
    for fault, step_tables, year, committed in KILLS:
        killed = outcomes_run(uninterrupted.landing, wh.root, fault)
        assert killed.returncode == -signal.SIGKILL, (fault, killed.stdout, killed.stderr)
        wh.recover()
        assert not list(wh.root.rglob(f"*{TMP}")) and not list((wh.root / RELEASES).glob("*"))
        # the killed step's release: every table of it, or none, and never a mix
        shown = [wh.path(t, year) for t in step_tables]
        if committed:
            assert all(same(p, base.path(t, year)) for p, t in zip(shown, step_tables, strict=True))
        else:
            assert not any(p.exists() for p in shown), fault
    finished = outcomes_run(uninterrupted.landing, wh.root)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert tables(wh) == tables(base)
    different = [str(p) for p in tables(wh) if not same(wh.root / p, base.root / p)]
    assert different == []


def test_the_kill_points_are_steps_of_a_run() -> None:
    """A fault point that names no step would never fire: the test above would then pass
    for nothing, so each is checked against the step names Dagster gives."""
    from assets.resources import OutcomesConfig
    from pipelines.definitions import build_definitions

    defs = build_definitions(OutcomesConfig(landing_dir=".", warehouse_dir="."))
    ops = {n.name for job in defs.resolve_all_job_defs() for n in job.graph.node_defs}
    for fault, _, _, _ in KILLS:
        assert fault.split(" ")[0] in ops
