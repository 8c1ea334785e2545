"""The lineage Dagster draws is what each step reads, checked at the operating system.

`outcomes run` runs under `strace -f -e trace=openat`, with OUTCOMES_TRACE_STEPS=1 so
each step signposts itself (a failed open of `<warehouse>/.step/<op>/<partition>`; a
step over several years signposts its range, then each year before reading it).
Every warehouse table file opened for reading after a signpost is the step's, and must
be a partition its lineage declares: a parent partition through the dependency's
partition mapping, or a partition the step writes itself (its own last release, read
to keep what a re-run must keep). The runner's own reads between steps are signposted
as `runner` and not the assets'.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from assets.partitions import partition_years
from outcomes.config import ENV_LINKAGE_KEY, ENV_TRACE_STEPS
from outcomes.indicators import input_files
from pipelines.definitions import defs
from pipelines.runner import RUNNER_STEP
from tests.conftest import TEST_KEY

YEARS = [2022, 2023]
STRACE = shutil.which("strace")
OPEN = re.compile(r'^\d+\s+openat\(\w+, "(?P<path>[^"]+)", (?P<flags>[A-Z_|]+)')
WRITING = ("O_WRONLY", "O_RDWR", "O_CREAT")
# <zone>/<table>/[year=YYYY/]data.parquet, or a release's hidden temporary file of one
TABLE_FILE = re.compile(
    r"^(?P<zone>restricted|analytic|published)/(?P<table>[\w/]+?)/(year=(?P<year>\d{4})/)?"
    r"(?P<tmp>\.)?data\.parquet(\.\w+\.tmp)?$"
)
STEP = re.compile(r"^\.step/(?P<op>[^/]+)/(?P<partition>[^/]+)$")

Partition = tuple[str, int | None]  # (table, year or None for an unpartitioned table)


@dataclass
class Step:
    read: set[Partition]
    wrote: set[Partition]


def steps_of(trace: str, warehouse: Path) -> dict[tuple[str, str | None], Step]:
    """What every step (op, partition) opened: the trace cut at each signpost."""
    steps: dict[tuple[str, str | None], Step] = {}
    step: Step | None = None
    prefix = str(warehouse) + "/"
    for line in trace.splitlines():
        m = OPEN.match(line)
        if not m or not m["path"].startswith(prefix):
            continue
        relative = m["path"].removeprefix(prefix)
        if sign := STEP.match(relative):
            key = (sign["op"], None if sign["partition"] == "all" else sign["partition"])
            step = steps.setdefault(key, Step(set(), set()))
            continue
        table = TABLE_FILE.match(relative)
        if step is None or table is None:
            continue
        part = (table["table"], int(table["year"]) if table["year"] else None)
        if any(f in m["flags"] for f in WRITING):
            step.wrote.add(part)
        elif not table["tmp"]:
            step.read.add(part)
    return steps


def undeclared(steps: dict[tuple[str, str | None], Step]) -> set[tuple]:
    """(op, partition, table, year) of every read neither declared nor the step's own."""
    return {
        (op, partition, table, year)
        for (op, partition), s in steps.items() if op != RUNNER_STEP
        for table, year in s.read - s.wrote - declared(op, partition)
    }  # fmt: skip


def declared(op: str, partition: str | None) -> set[Partition]:
    """The partitions of its parents that the lineage of `op`'s assets and checks names
    (for a range `first-last`, one step over several years: what any of them names)."""
    if partition and "-" in partition:
        first, last = map(int, partition.split("-"))
        return set().union(*(declared(op, str(y)) for y in range(first, last + 1)))
    graph = defs.resolve_asset_graph()
    node = next(a for a in graph.assets_defs if a.is_executable and a.node_def.name == op)
    out: set[Partition] = set()

    def add(parent: dg.AssetKey, keys: list[str]) -> None:
        name = parent.to_user_string()
        partitions = graph.get(parent).partitions_def
        if partitions is None:
            out.add((name, None))
        else:  # an unpartitioned child reads every partition
            out.update((name, int(k)) for k in (keys or partitions.get_partition_keys()))

    for key in node.keys:
        for parent in graph.get(key).parent_keys:
            if partition is None or graph.get(parent).partitions_def is None:
                add(parent, [])
                continue
            mapped = graph.get_parent_partition_keys_for_child(partition, parent, key)
            add(parent, list(mapped.partitions_subset.get_partition_keys()))
    for spec in node.check_specs:  # a check reads its asset's partition and its extra deps
        for parent in [spec.asset_key, *(d.asset_key for d in spec.additional_deps)]:
            add(parent, [partition] if partition else [])
    return out


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str | None], Step]:
    from outcomes.sample import generate

    assert STRACE, "strace is not installed: `apt-get install strace` (.ci/run does)"
    root = tmp_path_factory.mktemp("lineage")
    generate(root, scale=300, seed=5, years=YEARS)
    warehouse, trace = root / "warehouse", root / "trace.txt"
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env |= {ENV_LINKAGE_KEY: TEST_KEY, ENV_TRACE_STEPS: "1"}
    outcomes = Path(sys.executable).parent / "outcomes"
    run = subprocess.run(
        [STRACE, "-f", "-qq", "-e", "trace=openat", "-o", trace, outcomes, "run",
         "--landing-dir", root / "landing", "--warehouse-dir", warehouse],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    return steps_of(trace.read_text(), warehouse.resolve())


def test_every_warehouse_file_a_step_reads_is_in_its_declared_lineage(traced) -> None:
    assert undeclared(traced) == set()


def test_the_trace_saw_every_step_and_what_it_read(traced) -> None:
    """The test above could pass on an empty trace: it must hold every asset step of both
    years, and the steps must have read and written tables."""
    ops = {op for op, _ in traced}
    assets = {a.node_def.name for a in defs.resolve_asset_graph().assets_defs if a.is_executable}
    assert assets - ops == set()
    read = traced[("indicators", "2022")].read
    # spells up to the next year, wages of the year and the next: the declared windows
    assert {("linked_spells", 2022), ("linked_spells", 2023), ("quarterly_wages", 2023)} <= read
    assert all(traced[(op, "2023")].wrote for op in ("staging", "linkage"))
    # integration and indicators take both years in one step, and signpost each year
    assert traced[("indicators", "2022-2023")].wrote >= {("outcome_indicators", 2022),
                                                       ("outcome_indicators", 2023)}  # fmt: skip
    assert traced[("integrate_linked_spells", "2023")].read


def test_a_read_outside_the_lineage_is_caught(tmp_path: Path) -> None:
    """The check can fail: the indicators of 2022 read 2023's surveys (never declared),
    and linkage reads its own partition before writing it (allowed), in a made-up trace."""
    wh = tmp_path / "warehouse"
    trace = "\n".join([
        f'1 openat(AT_FDCWD, "{wh}/.step/indicators/2022", O_RDONLY) = -1 ENOENT',
        f'2 openat(AT_FDCWD, "{wh}/restricted/linked_client_surveys/year=2022/data.parquet", '
        "O_RDONLY|O_CLOEXEC) = 5",
        f'2 openat(AT_FDCWD, "{wh}/restricted/linked_client_surveys/year=2023/data.parquet", '
        "O_RDONLY|O_CLOEXEC) = 6",
        f'1 openat(AT_FDCWD, "{wh}/.step/linkage/2023", O_RDONLY) = -1 ENOENT',
        f'1 openat(AT_FDCWD, "{wh}/restricted/record_links/year=2023/data.parquet", '
        "O_RDONLY|O_CLOEXEC) = 5",
        f'1 openat(AT_FDCWD, "{wh}/restricted/record_links/year=2023/.data.parquet.ab12.tmp", '
        "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 7",
        f'1 openat(AT_FDCWD, "{wh}/.step/runner/all", O_RDONLY) = -1 ENOENT',
        f'1 openat(AT_FDCWD, "{wh}/published/outcome_indicators/year=2030/data.parquet", '
        "O_RDONLY|O_CLOEXEC) = 5",
    ])  # fmt: skip
    found = undeclared(steps_of(trace, wh))
    assert found == {("indicators", "2022", "linked_client_surveys", 2023)}


@pytest.mark.parametrize("year", [2001, 2020])
def test_the_indicators_lineage_is_the_definitions_input_windows(year: int) -> None:
    """Provenance names the files of `outcomes.indicators.input_files`, the asset reads
    through its partition mappings: the two statements of the windows must agree."""
    files = input_files(year)
    windows = {"linked_spells": files["spells"]["spells"],
               "quarterly_wages": files["wages"]["wages"],
               "linked_client_surveys": files["surveys"]["client_surveys"]}  # fmt: skip
    lineage = declared("indicators", str(year))
    for table, years in windows.items():
        assert {y for t, y in lineage if t == table} == set(years) & set(partition_years())
