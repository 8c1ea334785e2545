"""Number cells of ssn, zip and county_fips get their leading zeros back; text never.

A spreadsheet that stores the SSN 012345678 as a number shows 12345678: read as
text that is an invalid SSN, and the person would not be linked. Only number cells
(xlsx cells without a text type, Parquet integer or float columns) are padded, to
the width the contract gives the column; a CSV is text throughout.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import xlsxwriter

from assets.checks import NOTHING_LOST
from assets.resources import OutcomesConfig
from assets.validate import STAGING_WRITES
from outcomes.ingest import discover, read_text
from outcomes.schema import SOURCES, staged_table
from pipelines.definitions import build_definitions
from pipelines.runner import figures
from tests.conftest import TEST_KEY, Materialized
from tests.test_bad_input import put, spell_rows

# (ssn, zip, county_fips) per data row; an int is written as a number cell
ROWS: list[tuple[object, object, object]] = [
    (12345678, 2134, 36001),  # ssn and zip lost a zero
    ("12345678", "2134", "36001"),  # the same digits as text: left as they are
    ("012345678", "02134", "36001"),  # text with its zeros
    (123456789, 12207, 36001),  # full width already
    (1234, 12207, 36001),  # a partial SSN typed as a number: 000001234, invalid anyway
]
PADDED = [
    ("012345678", "02134", "36001"),
    ("12345678", "2134", "36001"),
    ("012345678", "02134", "36001"),
    ("123456789", "12207", "36001"),
    ("000001234", "12207", "36001"),
]


def sheet(first_row: int = 2, first_col: int = 1, ssn_header: str = "ssn") -> bytes:
    """The rows of spell_rows() in a sheet that starts at (first_row, first_col), with
    a blank row after the second data row, ssn/zip/county_fips as ROWS says."""
    rows = spell_rows(len(ROWS)).rename({"ssn": ssn_header})
    buf = io.BytesIO()
    with xlsxwriter.Workbook(buf) as wb:
        ws = wb.add_worksheet("Data")
        ws.write_row(first_row, first_col, rows.columns)
        r = first_row
        for i, values in enumerate(rows.iter_rows(named=True)):
            r += 2 if i == 2 else 1  # one blank row between data lines 2 and 3
            values[ssn_header], values["zip"], values["county_fips"] = ROWS[i]
            for j, v in enumerate(values.values()):
                if isinstance(v, int):
                    ws.write_number(r, first_col + j, v)
                elif v is not None:
                    ws.write_string(r, first_col + j, v)
    return buf.getvalue()


def codes(df: pl.DataFrame) -> list[tuple]:
    return df.select("ssn", "zip", "county_fips").rows()


def test_xlsx_number_cells_are_padded_text_cells_never(tmp_path: Path):
    put(tmp_path, "public/sheet/spells_2014.xlsx", sheet(first_row=2, first_col=1))
    text = read_text(discover(tmp_path)[0])
    assert codes(text.rows) == PADDED
    assert text.rows["line"].to_list() == [1, 2, 3, 4, 5]  # the blank row is no data line
    assert text.zero_padded == {"ssn": 2, "zip": 1, "county_fips": 0}


def test_xlsx_padding_follows_the_mapping(tmp_path: Path):
    put(tmp_path, "public/mapped/spells_2014.xlsx", sheet(first_row=0, first_col=0,
                                                         ssn_header="SSN Number"))  # fmt: skip
    put(tmp_path, "public/mapped/mapping.yaml", 'columns: {ssn: "SSN Number"}\n')
    text = read_text(discover(tmp_path)[0])
    assert codes(text.rows) == PADDED
    assert text.zero_padded["ssn"] == 2


def test_parquet_integer_columns_are_padded_and_csv_never(tmp_path: Path):
    rows = spell_rows(3).with_columns(
        pl.Series("ssn", [12345678, 123456789, None]),
        pl.Series("zip", [2134.0, 12207.0, 501.0]),
        pl.Series("county_fips", [36001, 36001, 36001]),
    )
    buf = io.BytesIO()
    rows.write_parquet(buf)
    put(tmp_path / "p", "public/p/spells_2014.parquet", buf.getvalue())
    text = read_text(discover(tmp_path / "p")[0])
    assert codes(text.rows) == [
        ("012345678", "02134", "36001"),
        ("123456789", "12207", "36001"),
        (None, "00501", "36001"),
    ]
    assert text.zero_padded == {"ssn": 1, "zip": 2, "county_fips": 0}
    put(tmp_path / "c", "public/c/spells_2014.csv", rows)
    text = read_text(discover(tmp_path / "c")[0])
    assert codes(text.rows)[0] == ("12345678", "2134.0", "36001")
    assert text.zero_padded == {}


def test_padded_cells_are_counted_in_metadata_check_and_summary(
    handmade: Materialized, tmp_path: Path
):
    landing, wh = tmp_path / "landing", tmp_path / "warehouse"
    shutil.copytree(handmade.landing, landing)
    shutil.copytree(handmade.warehouse.root, wh)
    put(landing, "public/sheet/spells_2014.xlsx", sheet())
    config = OutcomesConfig(landing_dir=str(landing), warehouse_dir=str(wh), linkage_key=TEST_KEY,
                           max_quarantine_share=1.0)  # fmt: skip
    # line 2's zip is text "2134": quarantined, never padded
    key = dg.AssetCheckKey(dg.AssetKey("staged_spells"), NOTHING_LOST)
    staging = dg.AssetSelection.assets(*(t.name for t in STAGING_WRITES))
    job = dg.define_asset_job(
        "stage_spells", selection=staging.without_checks() | dg.AssetSelection.checks(key)
    )
    defs = dg.Definitions.merge(build_definitions(config), dg.Definitions(jobs=[job]))
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("stage_spells").execute_in_process(
            partition_key="2014", instance=instance
        )
        (materialized,) = [m.metadata for m in result.asset_materializations_for_node("staging")
                           if m.asset_key == key.asset_key]  # fmt: skip
        assert materialized["zero_padded"].value == 3
        assert materialized["zero_padded_ssn"].value == 2
        assert materialized["zero_padded_zip"].value == 1
        (check,) = [
            e.event_specific_data
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
            and e.event_specific_data.asset_check_key == key
        ]
        assert check.passed and check.metadata["zero_padded"].value == 3
        assert figures(config.warehouse, [2014], instance)["zero-padded cells"] == 3
    staged = config.warehouse.read(staged_table(SOURCES["spells"]), [2014])
    staged = staged.filter(pl.col("org_id") == "sheet").sort("record_id")
    # RS04's 123456789 is a placeholder and RS05's 000001234 invalid: blanked by the rules
    assert staged.select("record_id", "ssn", "zip").rows() == [
        ("RS01", "012345678", "02134"),
        ("RS03", "012345678", "02134"),
        ("RS04", None, "12207"),
        ("RS05", None, "12207"),
    ]
