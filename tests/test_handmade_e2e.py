"""End to end through Dagster on a landing zone written from the contract alone.

Every expected number below is worked out by hand from tests/handmade.py.
"""

from __future__ import annotations

import shutil

import polars as pl
import pytest

from outcomes.schema import (
    INDICATOR_PANEL,
    LOAD_LEDGER,
    OUTCOME_INDICATORS,
    OUTCOME_INDICATORS_BY_GROUP,
    QUARANTINE,
    SERVICE_SPELLS,
)
from pipelines.runner import RunFailed
from tests.conftest import Materialized, materialize


def cell(m: Materialized, indicator: str, year: int, county: str) -> dict:
    df = m.warehouse.read(OUTCOME_INDICATORS, [year]).filter(
        (pl.col("indicator_id") == indicator) & (pl.col("county_fips") == county)
    )
    assert df.height == 1
    return df.row(0, named=True)


def test_snap_participation_counts_persons_in_their_latest_county(handmade: Materialized):
    # 2014: all 30 SNAP persons in 36001, population 3 x 1000
    c = cell(handmade, "snap_participation_per_1000", 2014, "36001")
    assert (c["numerator"], c["denominator"], c["value"]) == (30, 3000, 10.0)
    # 2015: S01-S12 started a later spell in 36003 (population 3 x 2000)
    c = cell(handmade, "snap_participation_per_1000", 2015, "36003")
    assert (c["numerator"], c["denominator"], c["value"]) == (12, 6000, 2.0)
    assert cell(handmade, "snap_participation_per_1000", 2015, "36001")["numerator"] == 18
    assert cell(handmade, "snap_participation_per_1000", 2015, "ALL")["numerator"] == 30


def test_foster_care_entry_rate_uses_child_population(handmade: Materialized):
    c = cell(handmade, "foster_care_entry_rate", 2014, "36005")
    assert (c["numerator"], c["denominator"], c["value"]) == (15, 3000, 5.0)
    # exact Poisson 95% for 15 events: 8.395 to 24.740, per 3000 x 1000
    assert c["ci_low"] == pytest.approx(8.3953 / 3, abs=1e-3)
    assert c["ci_high"] == pytest.approx(24.7402 / 3, abs=1e-3)


def panel_cell(m: Materialized, indicator: str, year: int, county: str) -> tuple[int, int]:
    """A county's value before suppression (restricted/indicator_panel)."""
    df = m.warehouse.read(INDICATOR_PANEL, [year]).filter(
        (pl.col("indicator_id") == indicator) & (pl.col("county_fips") == county)
    )
    return df.row(0, named=True)["numerator"], df.row(0, named=True)["denominator"]


def test_cross_sector_reach_links_by_name_and_birth_date(handmade: Materialized):
    # S01-S20 enrolled with cbo under their own client ids; half have no SSN there
    assert panel_cell(handmade, "cross_sector_reach", 2014, "36001") == (20, 30)
    # published, 30 - 20 = 10 persons without an enrollment is a small count too
    assert cell(handmade, "cross_sector_reach", 2014, "36001")["suppression"] == "primary"


def test_primary_and_complementary_suppression(handmade: Materialized):
    # 2015: 36001 has 8 of 18 (numerator < 11: primary); ALL 20 of 30 leaves 10 persons
    # without an enrollment (primary). 36003 (12 of 12) is complementary: shown, its
    # total would give away its age bands (one of 1 of 1, one of 11 of 11)
    assert panel_cell(handmade, "cross_sector_reach", 2015, "36003") == (12, 12)
    reasons = {
        county: cell(handmade, "cross_sector_reach", 2015, county)
        for county in ("36001", "36003", "36005", "ALL")
    }
    assert {k: c["suppression"] for k, c in reasons.items()} == {
        "36001": "primary", "36003": "complementary", "36005": None, "ALL": "primary",
    }  # fmt: skip
    for c in reasons.values():
        if c["suppression"]:
            assert c["numerator"] is None and c["value"] is None and c["ci_low"] is None
    bands = handmade.warehouse.read(OUTCOME_INDICATORS_BY_GROUP, [2015]).filter(
        (pl.col("indicator_id") == "cross_sector_reach") & (pl.col("county_fips") == "36003")
    )
    assert bands.filter(pl.col("suppression") == "primary").height >= 2


def test_provisional_when_the_next_year_is_not_loaded(handmade: Materialized):
    assert cell(handmade, "employment_q2_after_exit", 2014, "ALL")["provisional"] is True
    assert cell(handmade, "tanf_return_12m", 2014, "ALL")["provisional"] is False
    assert cell(handmade, "tanf_return_12m", 2015, "ALL")["provisional"] is True


def test_nothing_lost_and_quarantine_names_file_line_and_rule(handmade: Materialized):
    ledger = handmade.warehouse.read(LOAD_LEDGER)
    assert ledger.height == 7
    balance = ledger.select(
        (
            pl.col("rows_read")
            - pl.col("rows_staged")
            - pl.col("rows_quarantined")
            - pl.col("duplicates_collapsed")
        )
        .abs()
        .sum()
    ).item()
    assert balance == 0
    spells = ledger.filter(pl.col("file") == "public/hra/spells_2014.csv").row(0, named=True)
    assert (spells["rows_read"], spells["duplicates_collapsed"], spells["rows_quarantined"]) == (
        32, 1, 1,
    )  # fmt: skip
    q = handmade.warehouse.read(QUARANTINE).sort("file")
    got = {(r["file"], r["line"], tuple(r["reasons"])) for r in q.iter_rows(named=True)}
    assert got == {
        ("public/hra/spells_2014.csv", 32, ("birth_date:out_of_range",)),
        ("public/dol/wages_2014.csv", 26, ("ssn:invalid",)),
    }
    # half of cbo's clients had SSNs, written with dashes: valid, none treated as missing
    services = ledger.filter(pl.col("source") == "services").row(0, named=True)
    assert services["invalid_ssn"] == 0


def test_analytic_spells_carry_no_identifiers(handmade: Materialized):
    spells = handmade.warehouse.read(SERVICE_SPELLS)
    assert set(spells.columns) == set(SERVICE_SPELLS.schema)
    # 30 SNAP persons (20 also enrolled with cbo), 15 children, 5 other cbo clients
    assert spells.get_column("person_key").n_unique() == 50


def test_rerun_gives_identical_tables(handmade: Materialized, tmp_path):
    again = materialize(handmade.landing, tmp_path / "warehouse")
    for table in ("load_ledger", "record_links", "service_spells", "outcome_indicators"):
        first = sorted(handmade.warehouse.root.glob(f"*/{table}/**/*.parquet"))
        second = sorted(again.warehouse.root.glob(f"*/{table}/**/*.parquet"))
        assert len(first) == len(second) > 0
        for a, b in zip(first, second, strict=True):
            left, right = pl.read_parquet(a), pl.read_parquet(b)
            if table == "load_ledger":  # a fresh warehouse loads the files anew
                left, right = left.drop("loaded_at"), right.drop("loaded_at")
            assert left.equals(right), a


def test_failed_run_keeps_what_was_published(handmade: Materialized, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(handmade.landing, landing)
    warehouse = tmp_path / "warehouse"
    shutil.copytree(handmade.warehouse.root, warehouse)
    published = warehouse / "published/outcome_indicators/year=2014/data.parquet"
    staged = warehouse / "restricted/staged_spells/year=2014/data.parquet"
    before = {p: p.read_bytes() for p in (published, staged)}
    # a re-delivery with half its rows broken: more than 5% quarantined
    path = landing / "public/hra/spells_2014.csv"
    text = path.read_text(encoding="utf-8-sig").splitlines()
    broken = [text[0]] + [
        ln.replace("SNAP", "NOPE") if i % 2 else ln for i, ln in enumerate(text[1:])
    ]
    path.write_text("\n".join(broken) + "\n", encoding="utf-8")
    with pytest.raises(RunFailed) as e:
        materialize(landing, warehouse)
    message = str(e.value)
    assert "public/hra/spells_2014.csv" in message and "program:not_in_set" in message
    assert "limit 5%" in message
    assert all(p.read_bytes() == b for p, b in before.items())
