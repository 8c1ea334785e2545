"""No identifier on any error path: files whose bad values are identifiers.

Polars, PyArrow, fastexcel, PyYAML and GX put the values that failed in their
messages. Each file below breaks on an identifier; the run reports file, column,
line and rule, and none of those values reaches the exception, stderr, the
Dagster event log or any check metadata.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xlsxwriter
from click.testing import CliRunner

from outcomes.ingest import LandingError, Mapping
from outcomes.schema import QUARANTINE, SOURCES, staged_table
from outcomes.suites import run_suite
from outcomes.warehouse import Warehouse
from pipelines.cli import main
from tests.conftest import TEST_KEY, Materialized
from tests.test_bad_input import params, put, spell_rows

# each value occurs nowhere else: finding it anywhere is a leak
LIST_NAME = "Quixotica"  # in a Parquet first_name column of lists
BINARY_NAME = "Wendeline"  # in a Parquet binary column, not UTF-8
LATIN1_NAME = "Zébulonia"  # in a Latin-1 CSV
BAD_SSN = "078-05-112O"  # a letter O typed for a zero, in an xlsx cell
DATE_NAME, BAD_BIRTH = "Quarrelsome", "1985-02-30"  # a broken date next to a name
LEAKS = [LIST_NAME, BINARY_NAME, "bulonia", BAD_SSN, "05112O", DATE_NAME, BAD_BIRTH]


def parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def with_name(rows: pl.DataFrame, name: str, at: int = 2) -> pl.DataFrame:
    first = pl.when(pl.int_range(pl.len()) == at).then(pl.lit(name)).otherwise("first_name")
    return rows.with_columns(first.alias("first_name"))


def failing_files() -> dict[str, bytes]:
    """Files that fail their partition on an identifier."""
    rows = spell_rows()
    listed = rows.with_columns(pl.concat_list(with_name(rows, LIST_NAME)["first_name"]))
    binary = with_name(rows, BINARY_NAME).to_arrow()
    names = binary.column("first_name").to_pylist()
    names = [n.encode() + (b"\xff" if n == BINARY_NAME else b"") for n in names]
    binary = binary.set_column(
        binary.schema.get_field_index("first_name"), "first_name", pa.array(names, pa.binary())
    )
    return {
        "public/plist/spells_2014.parquet": parquet(listed.to_arrow()),
        "public/pbinary/spells_2014.parquet": parquet(binary),
        "public/latin/spells_2014.csv": with_name(rows, LATIN1_NAME).write_csv().encode("latin-1"),
    }


def quarantined_files() -> dict[str, bytes]:
    """Files whose identifier is one bad row among 25: the rest of the file is staged."""
    rows = spell_rows(25)
    dated = with_name(rows, DATE_NAME, at=7).with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(pl.lit(BAD_BIRTH)).otherwise("birth_date")
        .alias("birth_date")
    )  # fmt: skip
    buf = io.BytesIO()
    sheet = rows.with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(pl.lit(BAD_SSN)).otherwise("ssn").alias("ssn")
    )
    with xlsxwriter.Workbook(buf) as wb:
        sheet.write_excel(workbook=wb, worksheet="Data")
    return {"public/dated/spells_2014.csv": dated.write_csv().encode(),
            "public/typed/spells_2014.xlsx": buf.getvalue()}  # fmt: skip


@dataclass
class Runs:
    failed_stderr: str
    passed_stderr: str
    passed_exit: int
    event_log: str
    warehouse: Path


@pytest.fixture(scope="module")
def runs(handmade: Materialized, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """`outcomes run` with every file (fails on the first three), then without those."""
    root = tmp_path_factory.mktemp("error_paths")
    landing, warehouse, home = root / "landing", root / "warehouse", root / "dagster_home"
    shutil.copytree(handmade.landing, landing)
    shutil.copytree(handmade.warehouse.root, warehouse)
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for rel, content in {**failing_files(), **quarantined_files()}.items():
        put(landing, rel, content)
    env = {"OUTCOMES_LINKAGE_KEY": TEST_KEY, "DAGSTER_HOME": str(home)}
    args = ["run", "--landing-dir", str(landing), "--warehouse-dir", str(warehouse)]
    failed = CliRunner().invoke(main, args, env=env)
    assert failed.exit_code == 1
    for rel in failing_files():
        (landing / rel).unlink()
    passed = CliRunner().invoke(main, args, env=env)
    instance = dg.DagsterInstance.from_config(str(home))
    log = "\n".join(
        f"{entry.user_message}\n{entry.dagster_event!r}"
        for run in instance.get_runs()
        for entry in instance.all_logs(run.run_id)
    )
    return Runs(failed.stderr, passed.stderr, passed.exit_code, log, warehouse)


def test_failing_files_are_named_with_column_and_line(runs: Runs):
    err = runs.failed_stderr
    assert "public/plist/spells_2014.parquet: column first_name is List" in err
    assert "public/pbinary/spells_2014.parquet: line 3: column first_name is not UTF-8" in err
    assert "public/latin/spells_2014.csv: line 3: not UTF-8" in err


def test_bad_identifiers_are_quarantined_by_rule_and_line(runs: Runs):
    assert runs.passed_exit == 0, runs.passed_stderr
    assert "ASSET_CHECK_EVALUATION" in runs.event_log
    assert "birth_date:not_a_date" in runs.event_log  # the rule, in the check metadata
    assert "| public/dated/spells_2014.csv | 8 | birth_date:not_a_date |" in runs.event_log


@pytest.mark.parametrize("value", LEAKS)
def test_no_bad_value_reaches_stderr_or_the_event_log(runs: Runs, value: str):
    for where, text in (("failed run's stderr", runs.failed_stderr),
                        ("passing run's stderr", runs.passed_stderr),
                        ("event log", runs.event_log)):  # fmt: skip
        assert value not in text, where


def test_the_bad_values_went_through_the_run(runs: Runs):
    """They reached the pipeline (the restricted quarantine keeps them): a search that
    finds none of them elsewhere is not searching for values that never arrived."""
    raw = " ".join(Warehouse(runs.warehouse).read(QUARANTINE, [2014])["raw"].to_list())
    assert DATE_NAME in raw and BAD_BIRTH in raw
    staged = Warehouse(runs.warehouse).read(staged_table(SOURCES["spells"]), [2014])
    assert staged.filter(pl.col("org_id") == "typed").height == 25  # the SSN blanked, kept


def test_a_yaml_error_says_where_not_what(tmp_path: Path):
    path = put(tmp_path, "public/x/mapping.yaml", f"values:\n  sex: {{{LIST_NAME}: F\n")
    with pytest.raises(LandingError) as e:
        Mapping.load(path, "public/x/mapping.yaml")
    message = str(e.value)
    assert message.startswith("public/x/mapping.yaml: not a readable mapping.yaml (")
    assert "line 3" in message and LIST_NAME not in message
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_a_gx_error_names_its_kind_not_its_message():
    source = SOURCES["wages"]
    df = pl.DataFrame({c: [LIST_NAME] for c in source.column_names if c != "year"})
    (result,) = run_suite("wages", {"batch": (df, params(2014))}, source.dtypes).values()
    errors = [o for o in result.outcomes if o.error]
    assert errors and not result.success
    assert all(o.error.startswith("GX raised ") and LIST_NAME not in o.error for o in errors)
