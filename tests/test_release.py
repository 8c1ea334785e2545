"""Releases and partition locks (outcomes.release), with real processes killed by SIGKILL.

A child process (this module run with `python -m`) writes three tables in one
release and kills itself at a named point; what it leaves must read, after
recovery, as the release before or the release after, never a mix of the two.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from outcomes.config import ENV_FAULT
from outcomes.release import LOCKS, RELEASES, TMP, PartitionLocked
from outcomes.schema import Table, Zone
from outcomes.warehouse import Warehouse

YEAR = 2020
TABLES = [
    Table("release_a", Zone.ANALYTIC, {"year": pl.Int64(), "version": pl.Int64()}),
    Table("release_b", Zone.RESTRICTED, {"year": pl.Int64(), "version": pl.Int64()}),
    Table("release_c", Zone.PUBLISHED, {"version": pl.Int64()}, by_year=False),
]
TARGETS = [(t, YEAR if t.by_year else None) for t in TABLES]
LABEL = "child release"
REPO = Path(__file__).resolve().parents[1]


def frame(table: Table, version: int) -> pl.DataFrame:
    cols = {"version": [version] * 3}
    return pl.DataFrame({"year": [YEAR] * 3, **cols} if table.by_year else cols)


def write_all(wh: Warehouse, version: int, hold_seconds: float = 0.0) -> None:
    with wh.release(LABEL, TARGETS) as r:
        for table, year in TARGETS:
            wh.write(table, frame(table, version), year, r)
        print("staged", flush=True)
        time.sleep(hold_seconds)


def child(root: str, version: str, fault: str = "", hold_seconds: str = "0") -> subprocess.Popen:
    env = {**os.environ, ENV_FAULT: fault}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_release", root, version, hold_seconds],
        cwd=REPO, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def versions(wh: Warehouse) -> set[int | None]:
    """The release each table shows: None where the table was never written."""
    out: set[int | None] = set()
    for table, year in TARGETS:
        path = wh.path(table, year)
        out |= set(pl.read_parquet(path)["version"].to_list()) if path.exists() else {None}
    return out


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob(f"*{TMP}")] + [p for p in (root / RELEASES).glob("*")]


@pytest.mark.parametrize(
    ("fault", "after"),
    [
        ("written:2", 1),  # two of three files staged: nothing of release 2 is visible
        ("committed", 2),  # the journal is committed: recovery finishes all three renames
        ("renamed:1", 2),  # one file renamed, two to go
        ("renamed:3", 2),  # every file renamed, the journal not yet removed
    ],
)
def test_a_release_killed_anywhere_reads_as_before_or_after(
    tmp_path: Path, fault: str, after: int
) -> None:
    wh = Warehouse(tmp_path)
    write_all(wh, 1)
    p = child(str(tmp_path), "2", f"{LABEL}@{fault}")
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL
    recovered = wh.recover()
    assert recovered
    assert versions(wh) == {after}
    assert leftovers(tmp_path) == []


def test_a_release_that_raises_changes_nothing(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    write_all(wh, 1)
    with pytest.raises(RuntimeError, match="bad step"), wh.release(LABEL, TARGETS) as r:
        wh.write(TABLES[0], frame(TABLES[0], 2), YEAR, r)
        raise RuntimeError("bad step")
    assert versions(wh) == {1}
    assert leftovers(tmp_path) == []


def test_nothing_of_a_release_is_visible_before_it_ends(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    with wh.release(LABEL, TARGETS) as r:
        for table, year in TARGETS:
            assert wh.write(table, frame(table, 1), year, r) == wh.path(table, year)
        assert versions(wh) == {None}
    assert versions(wh) == {1}


def test_a_write_outside_the_locked_partitions_is_refused(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    outside = pytest.raises(ValueError, match="outside the partitions")
    with outside, wh.release(LABEL, TARGETS[:1]) as r:
        wh.write(TABLES[0], frame(TABLES[0], 1).with_columns(year=pl.lit(YEAR + 1)), YEAR + 1, r)


def test_a_second_writer_of_a_partition_is_refused_naming_the_holder(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    p = child(str(tmp_path), "1", hold_seconds="60")
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "staged"
        second = wh.release("second", TARGETS[1:2], wait=0.5)
        with pytest.raises(PartitionLocked) as refused, second:
            pass
        message = str(refused.value)
        assert f"pid {p.pid}" in message and LABEL in message
        assert "restricted/release_b/year=2020" in message
        # another partition of the same table goes on meanwhile
        other = frame(TABLES[1], 9).with_columns(year=pl.lit(YEAR + 1))
        wh.write(TABLES[1], other, YEAR + 1)
        # a sweep leaves the holder's staged files alone: they are a live writer's
        wh.recover()
        assert any(tmp_path.rglob(f"*{TMP}"))
    finally:
        p.kill()
        p.wait(timeout=60)
    # the kernel freed its locks: the partition is free at once, and its files are cleaned
    with wh.release("third", TARGETS, wait=0):
        pass
    assert versions(wh) == {None} and leftovers(tmp_path) == []
    assert (tmp_path / LOCKS).is_dir()


if __name__ == "__main__":
    write_all(Warehouse(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
