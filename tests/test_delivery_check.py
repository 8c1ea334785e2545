"""`outcomes validate`: the check a partner runs before sending a delivery.

It must say what a run would do (the same rows quarantined for the same rules,
the same files failing), name rows by line and rule only, and write nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

from outcomes.ingest import discover
from outcomes.schema import LOAD_LEDGER, QUARANTINE
from pipelines.cli import main
from tests.conftest import Materialized
from tests.test_bad_input import put, spell_rows
from tests.test_error_paths import LEAKS, failing_files, quarantined_files

REPORT_LINE = re.compile(r"^  line (\d+): (.+)$")


def validate(landing: Path, *args: str, env: dict | None = None) -> Result:
    return CliRunner().invoke(main, ["validate", "--landing-dir", str(landing), "--max-rows",
                                     "100000", *args], env=env)  # fmt: skip


def reported(output: str) -> dict[str, set[tuple[int, str]]]:
    """file -> {(line, reasons)} from the printed report."""
    out: dict[str, set[tuple[int, str]]] = {}
    current = None
    for text in output.splitlines():
        if m := re.match(r"^(\S+): (passes|FAILS)", text):
            current = out.setdefault(m[1], set())
        elif (m := REPORT_LINE.match(text)) and current is not None:
            current.add((int(m[1]), ", ".join(sorted(m[2].split(", ")))))
    return out


def tree(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file and folder under root: mode, mtime and content digest."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(folder, name)
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
            out[str(p.relative_to(root))] = (st.st_mode, st.st_mtime_ns, digest)
    return out


@pytest.fixture(scope="module")
def sample_check(sample: Materialized) -> Result:
    return validate(sample.landing)


def test_it_quarantines_what_the_run_quarantined(sample: Materialized, sample_check: Result):
    """Every file of a generated delivery: the same lines for the same rules as the run."""
    assert sample_check.exit_code == 0, sample_check.output
    years = sorted({f.year for f in discover(sample.landing)})
    run = (
        sample.warehouse.read(QUARANTINE, years)
        .select("file", "line", pl.col("reasons").list.sort().list.join(", "))
        .group_by("file")
        .agg(pl.struct("line", "reasons"))
    )
    expected = {f: {(r["line"], r["reasons"]) for r in rows} for f, rows in run.iter_rows()}
    got = reported(sample_check.output)
    assert set(got) == {f.relative for f in discover(sample.landing)}
    assert sum(len(v) for v in expected.values()) > 100  # the sample has bad rows to find
    assert {f: rows for f, rows in got.items() if rows} == expected


def test_rows_read_agree_with_the_load_ledger(sample: Materialized, sample_check: Result):
    years = sorted({f.year for f in discover(sample.landing)})
    ledger = sample.warehouse.read(LOAD_LEDGER, years)
    counts = dict(re.findall(r"^(\S+): passes; ([\d,]+) rows read", sample_check.output, re.M))
    assert {f: int(n.replace(",", "")) for f, n in counts.items()} == dict(
        ledger.select("file", "rows_read").iter_rows()
    )


def test_it_writes_nothing(sample: Materialized, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written "here" would show too
    before = tree(sample.landing)
    result = validate(sample.landing)
    assert result.exit_code == 0
    assert tree(sample.landing) == before
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def delivery(handmade: Materialized, tmp_path: Path) -> Path:
    landing = tmp_path / "delivery"
    shutil.copytree(handmade.landing, landing)
    return landing


def test_failing_files_are_named_with_line_and_rule_and_no_value(delivery: Path):
    for rel, content in {**failing_files(), **quarantined_files()}.items():
        put(delivery, rel, content)
    bad = spell_rows(20).with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("99999")).otherwise("county_fips")
        .alias("county_fips")
    )  # fmt: skip
    put(delivery, "public/overshare/spells_2014.csv", bad)  # 3 of 20 bad: over 5%
    result = validate(delivery)
    assert result.exit_code == 1
    out = result.output
    assert "public/plist/spells_2014.parquet: FAILS its partition" in out
    assert "why: public/pbinary/spells_2014.parquet: line 3: column first_name is not UTF-8" in out
    assert "why: public/latin/spells_2014.csv: line 3: not UTF-8" in out
    assert "public/overshare/spells_2014.csv: FAILS its partition; 20 rows read, 3 would" in out
    assert reported(out)["public/overshare/spells_2014.csv"] == {
        (1, "county_fips:not_in_reference"), (2, "county_fips:not_in_reference"),
        (3, "county_fips:not_in_reference")}  # fmt: skip
    assert (8, "birth_date:not_a_date") in reported(out)["public/dated/spells_2014.csv"]
    assert "public/dated/spells_2014.csv: passes" in out
    assert "4 would fail" in out.splitlines()[-1]
    for value in LEAKS:
        assert value not in out


def test_named_files_only(delivery: Path):
    result = validate(delivery, "public/hra/spells_2014.csv", str(delivery / "public/dol"
                      / "wages_2014.csv"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert set(reported(result.output)) == {"public/hra/spells_2014.csv",
                                            "public/dol/wages_2014.csv"}  # fmt: skip
    assert "2 file(s) checked, 0 would fail" in result.output
    missing = validate(delivery, "public/hra/spells_2099.csv")
    assert missing.exit_code == 1
    assert "public/hra/spells_2099.csv: not a contract file of" in missing.output


def test_surveys_without_services_leave_unknown_client_unchecked(delivery: Path, tmp_path: Path):
    """A partner sending surveys alone: the rule cannot be judged, and the report says so."""
    alone = tmp_path / "surveys_only"
    shutil.copytree(delivery / "reference", alone / "reference")
    (rel,) = [f.relative for f in discover(delivery) if f.source.name == "client_surveys"][:1]
    put(alone, rel, (delivery / rel).read_bytes())
    shutil.copy(delivery / Path(rel).parent / "mapping.yaml", alone / Path(rel).parent)
    result = validate(alone)
    assert result.exit_code == 0, result.output
    assert "note: client_id:unknown_client not checked: no readable services file" in result.output
    assert "unknown_client" not in "".join(
        r for rows in reported(result.output).values() for _, r in rows
    )
    with_services = validate(delivery, rel)
    assert "not checked" not in with_services.output


def test_a_delivery_without_reference_needs_reference_dir(delivery: Path, tmp_path: Path):
    partner = tmp_path / "partner"
    shutil.copytree(delivery / "public/hra", partner / "public/hra")
    result = validate(partner)
    assert result.exit_code == 1
    assert "cannot check this delivery: reference/counties.csv: missing" in result.output
    again = validate(partner, "--reference-dir", str(delivery))
    assert again.exit_code == 0, again.output
    assert "public/hra/spells_2014.csv: passes" in again.output


def test_the_quarantine_limit_comes_from_the_environment(delivery: Path):
    bad = spell_rows(20).with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("99999")).otherwise("county_fips")
        .alias("county_fips")
    )  # fmt: skip
    put(delivery, "public/one/spells_2014.csv", bad)  # 1 of 20: 5%, at the limit
    assert validate(delivery).exit_code == 0
    strict = validate(delivery, env={"OUTCOMES_MAX_QUARANTINE_SHARE_SPELLS": "0.01"})
    assert strict.exit_code == 1
    assert "public/one/spells_2014.csv: FAILS its partition" in strict.output
    wrong = validate(delivery, env={"OUTCOMES_MAX_QUARANTINE_SHARE": "lots"})
    assert wrong.exit_code == 1
    assert "OUTCOMES_MAX_QUARANTINE_SHARE must be a share from 0 to 1" in wrong.output
