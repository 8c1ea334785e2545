"""No name, SSN, birth date or zip from the inputs reaches the analytic or published
zones, asset metadata, or the Dagster event log."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from outcomes.ingest import discover, read_text
from tests.conftest import Materialized

IDENTIFIER_COLUMNS = ("first_name", "last_name", "ssn", "zip", "birth_date")
FORBIDDEN_COLUMNS = {*IDENTIFIER_COLUMNS, "record_id", "person_id", "client_id", "response_id"}
# coded columns that may legitimately hold a 5-digit code or a place name
NOT_IDENTIFIERS = {"county_fips", "county_name"}
MIN_NAME_LENGTH = 4  # shorter names collide with ordinary tokens


def identifiers(landing: Path) -> dict[str, set[str]]:
    """Every identifier value the partners delivered, as text (SSNs also without dashes)."""
    found: dict[str, set[str]] = {c: set() for c in IDENTIFIER_COLUMNS}
    for f in discover(landing):
        text, _ = read_text(f)
        for c in IDENTIFIER_COLUMNS:
            if c in text.columns:
                found[c] |= set(text.get_column(c).drop_nulls().to_list())
    found["ssn"] |= {re.sub(r"[-\s]", "", s) for s in found["ssn"]}
    found["first_name"] = {n for n in found["first_name"] if len(n) >= MIN_NAME_LENGTH}
    found["last_name"] = {n for n in found["last_name"] if len(n) >= MIN_NAME_LENGTH}
    return found


def leaks(values: set[str], ids: dict[str, set[str]]) -> dict[str, set[str]]:
    return {k: values & v for k, v in ids.items() if values & v}


@pytest.fixture(params=["handmade", "sample"])
def run(request: pytest.FixtureRequest) -> Materialized:
    return request.getfixturevalue(request.param)


def test_no_identifier_in_analytic_or_published_tables(run: Materialized):
    ids = identifiers(run.landing)
    assert ids["ssn"] and ids["zip"] and (ids["first_name"] | ids["last_name"])
    files = [
        p
        for zone in ("analytic", "published")
        for p in (run.warehouse.root / zone).rglob("*.parquet")
    ]
    assert files
    for path in files:
        df = pl.read_parquet(path)
        assert not FORBIDDEN_COLUMNS & set(df.columns), path
        text = [c for c, t in df.schema.items() if t == pl.String and c not in NOT_IDENTIFIERS]
        values = set(df.select(pl.concat_list(text).explode().unique()).to_series().drop_nulls())
        assert not leaks(values, ids), (path, leaks(values, ids))


def test_no_identifier_in_asset_metadata_or_event_log(sample: Materialized):
    ids = identifiers(sample.landing)
    home = sample.root / "dagster_home"
    instance = dg.DagsterInstance.from_config(str(home))
    text = "\n".join(
        f"{entry.user_message}\n{entry.dagster_event!r}"
        for run in instance.get_runs()
        for entry in instance.all_logs(run.run_id)
    )
    assert "ASSET_MATERIALIZATION" in text and "dagster/column_schema" in text
    tokens = set(re.findall(r"[A-Za-z0-9]+", text))
    dates = set(re.findall(r"\d{4}-\d{2}-\d{2}", text))
    found = leaks(tokens, {k: v for k, v in ids.items() if k != "birth_date"})
    assert not found, found
    assert not dates & ids["birth_date"]
