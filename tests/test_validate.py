"""Staging a file: typing, the suites compiled to Polars, quarantine and the ledger counts."""

from __future__ import annotations

import json

import polars as pl
import pytest

from outcomes.schema import SPELLS, WAGES
from outcomes.validate import (
    QuarantineThresholdError,
    check_threshold,
    compile_suite,
    load_suite,
    stage_text,
)

PARAMS = {
    "today": "2026-11-23", "year": 2020, "year_start": "2020-01-01",
    "year_end": "2020-12-31", "county_fips": ["55001", "55003"],
}  # fmt: skip


def spells(**columns: list) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    base = {
        "record_id": [str(i) for i in range(1, n + 1)], "person_id": ["p"] * n,
        "first_name": ["A"] * n, "last_name": ["B"] * n, "birth_date": ["1980-01-01"] * n,
        "sex": ["F"] * n, "ssn": [None] * n, "zip": [None] * n, "county_fips": ["55001"] * n,
        "program": ["SNAP"] * n, "start_date": ["2020-03-01"] * n, "end_date": [None] * n,
        "monthly_benefit": [None] * n,
    }  # fmt: skip
    base.update(columns)
    return (
        pl.DataFrame(base, schema={k: pl.String for k in base})
        .with_row_index("line", 1)
        .with_columns(pl.col("line").cast(pl.Int64))
    )


def stage(text: pl.DataFrame, source=SPELLS, **kw):
    return stage_text(text, source, org_id="dhs", file="f.csv", params=PARAMS, **kw)


def reasons(result) -> dict[int, list[str]]:
    return {r["line"]: sorted(r["reasons"]) for r in result.quarantine.iter_rows(named=True)}


def test_every_broken_rule_is_reported_with_its_line():
    r = stage(
        spells(
            birth_date=["1980-01-01", "2099-01-01", "1899-05-05", "1980-02-30", "1980-01-01"],
            sex=["F", "F", "F", "Q", "F"],
            county_fips=["55001", "55001", "99999", "55001", "5501"],
            start_date=["2020-03-01", "2019-12-31", "2020-03-01", "2020-03-01", "2020-03-01"],
            end_date=[None, None, "2020-01-01", None, None],
            monthly_benefit=["10", "-1", None, "ten", None],
        )
    )
    assert r.staged.get_column("record_id").to_list() == ["1"]
    assert reasons(r) == {
        2: ["birth_date:out_of_range", "monthly_benefit:negative", "start_date:outside_file_year"],
        3: ["birth_date:out_of_range", "county_fips:not_in_reference",
            "end_date:before_start_date"],
        4: ["birth_date:not_a_date", "monthly_benefit:not_a_number", "sex:not_in_set"],
        5: ["county_fips:not_5_digits", "county_fips:not_in_reference"],
    }  # fmt: skip
    assert r.rows_read == 5 and r.duplicates_collapsed == 0


def test_missing_required_is_not_also_a_type_error():
    r = stage(spells(birth_date=[None], person_id=[None]))
    assert reasons(r) == {1: ["birth_date:required", "person_id:required"]}


def test_identical_rows_collapse_and_conflicting_ids_are_all_quarantined():
    text = spells(record_id=["1", "1", "2", "2", "3"], sex=["F", "F", "F", "M", "F"])
    r = stage(text)
    assert r.duplicates_collapsed == 1
    assert reasons(r) == {3: ["duplicate_record_id"], 4: ["duplicate_record_id"]}
    assert r.rows_read == r.staged.height + r.rows_quarantined + r.duplicates_collapsed


@pytest.mark.parametrize(
    ("ssn", "valid"),
    [
        ("219-09-9999", True), ("219 09 9999", True), ("123456789", False),
        ("111-11-1111", False), ("000-12-3456", False), ("666123456", False),
        ("912345678", False), ("219001234", False), ("219090000", False), ("21909999", False),
    ],
)  # fmt: skip
def test_ssn_rule_blanks_in_spells_and_quarantines_in_wages(ssn: str, valid: bool):
    r = stage(spells(ssn=[ssn]))
    assert r.rows_quarantined == 0 and r.invalid_ssn == (0 if valid else 1)
    assert r.staged["ssn"][0] == (ssn.replace("-", "").replace(" ", "") if valid else None)
    wages = pl.DataFrame(
        {"record_id": ["w"], "ssn": [ssn], "first_name": [None], "last_name": [None],
         "employer_id": ["E"], "year": ["2020"], "quarter": ["2"], "wages": ["10.5"]},
        schema={c: pl.String for c in WAGES.column_names},
    ).with_row_index("line", 1)  # fmt: skip
    w = stage(wages, WAGES)
    assert w.rows_quarantined == (0 if valid else 1)


def test_mapping_date_format_and_native_dates():
    text = spells(birth_date=["01/31/1980"], start_date=["2020-03-01"])
    r = stage(text, date_format="%m/%d/%Y", native_dates={"start_date"})
    assert r.rows_quarantined == 0
    assert str(r.staged["birth_date"][0]) == "1980-01-31"


def test_threshold_names_file_count_and_top_reasons():
    r = stage(spells(sex=["Q", "F", "F"]))
    with pytest.raises(
        QuarantineThresholdError, match=r"f.csv: 1 of 3 rows .*sex:not_in_set \(1\)"
    ):
        check_threshold(r, "f.csv", 0.05)
    check_threshold(r, "f.csv", 0.5)


def test_editing_a_suite_changes_the_quarantine(tmp_path):
    suite = load_suite("spells")
    tighter = json.loads(json.dumps(suite))
    for e in tighter["expectations"]:
        if e["meta"]["rule"] == "monthly_benefit:negative":
            e["kwargs"]["max_value"] = 100
    text = spells(monthly_benefit=["50", "500"])
    dtypes = SPELLS.dtypes
    loose = [r.name for r in compile_suite(suite, PARAMS, dtypes)]
    tight = compile_suite(tighter, PARAMS, dtypes)
    assert "monthly_benefit:negative" in loose
    rule = next(r for r in tight if r.name == "monthly_benefit:negative")
    broken = text.with_columns(pl.col("monthly_benefit").cast(pl.Float64)).select(rule.broken)
    assert broken.to_series().to_list() == [False, True]


def test_a_client_is_known_from_a_quarantined_enrollment_too():
    """Contract: known when the client_id is in any row of the partner's services files
    of the year or earlier, even a row quarantined for another reason."""
    from assets.validate import clients_by_partner, known_clients
    from outcomes.schema import KNOWN_CLIENTS, QUARANTINE, SOURCES, staged_table

    def rows(table, values):
        return pl.DataFrame(values).select(
            pl.col(c).cast(t) if c in values else pl.lit(None, t).alias(c)
            for c, t in table.schema.items()
        )

    services = staged_table(SOURCES["services"])
    staged = rows(services, {"org_id": ["cbo"], "client_id": ["C1"], "year": [2014]})
    none = rows(QUARANTINE, {"source": []})
    y2014 = known_clients(rows(KNOWN_CLIENTS, {"org_id": []}).lazy(), staged, none, 2014)
    assert clients_by_partner(y2014) == {"cbo": ["C1"]}
    bad_county = ['{"client_id": " C9 ", "county_fips": "99999"}', '{"client_id": "C7"}',
                  '{"client_id": "C8"}']  # fmt: skip
    quarantined = rows(QUARANTINE, {"source": ["services", "services", "spells"],
                                    "org_id": ["cbo", "other", "cbo"], "raw": bad_county})
    y2015 = known_clients(y2014.lazy(), staged.head(0), quarantined, 2015)
    # an earlier year's clients stay known; a spells row names no client
    assert clients_by_partner(y2015) == {"cbo": ["C1", "C9"], "other": ["C7"]}
    assert y2015.get_column("year").unique().to_list() == [2015]
