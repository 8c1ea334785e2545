"""Bad input, case by case (contract section 2).

Every error names the file, the line where there is one, and the rule; nothing good
is lost and nothing published before is overwritten. Two decisions are fixed here:

- a header-only file is a valid delivery of zero rows (it gets a ledger entry); a file
  with no bytes, or with no header row, is an error naming the file;
- names and text ids longer than 255 characters break `<column>:too_long`
  (expect_column_value_lengths_to_be_between in expectations/*.json): the row is
  quarantined and the rest of the file goes on.

Three levels, cheapest first: unit calls (read_text, stage_text) where the pipeline
adds nothing; one failed `outcomes run` (`broken`) over a copy of the handmade zone with
several broken spells files for 2014 (the staging step reports every file's error in one
message, so one run serves every case that fails a partition); one successful run
(`redelivered`) with a re-delivered file and a few bad rows that are kept or quarantined.
"""

from __future__ import annotations

import io
import re
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from assets.partitions import yearly
from outcomes.config import FIRST_PARTITION_YEAR
from outcomes.ingest import LandingError, LandingFile, Mapping, discover, read_text
from outcomes.schema import LOAD_LEDGER, QUARANTINE, SOURCES, staged_table
from outcomes.validate import (
    QuarantineThresholdError,
    StagedFile,
    check_threshold,
    stage_file,
    stage_text,
)
from pipelines.cli import main
from tests.conftest import TEST_KEY, Materialized, materialize
from tests.handmade import COUNTIES, snap_persons

SPELLS = staged_table(SOURCES["spells"])
HEADER = ",".join(SOURCES["spells"].column_names)
LONG = "nonprofit/longname/services_2014.csv"


# ---------------------------------------------------------------- helpers


def spell_rows(n: int = 20) -> pl.DataFrame:
    """n valid 2014 SNAP spells as text, in the contract's column order."""
    return snap_persons().head(n).select(
        pl.format("R{}", pl.col("person_id")).alias("record_id"),
        "person_id", "first_name", "last_name",
        pl.col("birth_date").dt.strftime("%Y-%m-%d"), "sex", "ssn",
        pl.lit("12207").alias("zip"), pl.lit("36001").alias("county_fips"),
        pl.lit("SNAP").alias("program"), pl.lit("2014-02-01").alias("start_date"),
        pl.lit(None, pl.String).alias("end_date"), pl.lit("120.5").alias("monthly_benefit"),
    )  # fmt: skip


def put(landing: Path, rel: str, content: bytes | str | pl.DataFrame) -> Path:
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, pl.DataFrame):
        content = content.write_csv()
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def landing_file(landing: Path, rel: str) -> LandingFile:
    return next(f for f in discover(landing) if f.relative == rel)


def params(year: int) -> dict:
    return {
        "today": date.today().isoformat(), "year": year, "year_start": f"{year}-01-01",
        "year_end": f"{year}-12-31", "county_fips": COUNTIES,
    }  # fmt: skip


def stage(landing: Path, rel: str, max_share: float = 1.0) -> StagedFile:
    """What the staging step does with one file (assets/validate.py stage_year)."""
    f = landing_file(landing, rel)
    _, result = stage_file(f, params(f.year))
    check_threshold(result, f.relative, max_share)
    return result


def reasons(result: StagedFile) -> dict[int, list[str]]:
    return {r["line"]: sorted(r["reasons"]) for r in result.quarantine.iter_rows(named=True)}


def nothing_lost(result: StagedFile) -> bool:
    return result.rows_read == (
        result.staged.height + result.rows_quarantined + result.duplicates_collapsed
    )


def xlsx_bytes(sheets: dict[str, pl.DataFrame]) -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    with xlsxwriter.Workbook(buf) as wb:
        for name, df in sheets.items():
            df.write_excel(workbook=wb, worksheet=name)
    return buf.getvalue()


def parquet_files(root: Path) -> dict[str, bytes]:
    """Every table file under a warehouse (Data Docs are HTML and carry timestamps)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.parquet")}


# ---------------------------------------------------------------- one failed run


@dataclass
class Broken:
    exit_code: int
    stderr: str
    errors: dict[str, str]  # file -> its part of the message
    before: dict[str, bytes] = field(repr=False)  # the warehouse's table files before
    after: dict[str, bytes] = field(repr=False)


def _broken_files() -> dict[str, bytes | str]:
    rows = spell_rows()
    good = rows.write_csv()
    latin1 = rows.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("Zoë")).otherwise("first_name")
        .alias("first_name")
    ).write_csv().encode("latin-1")  # fmt: skip
    us = rows.with_columns(
        pl.col(c).str.to_date().dt.strftime("%m/%d/%Y") for c in ("birth_date", "start_date")
    )
    lines = good.splitlines()
    ragged = "\n".join([*lines[:4], lines[4] + ",extra", *lines[5:]]) + "\n"
    half_bad = rows.with_columns(
        pl.when(pl.int_range(pl.len()).is_in([1, 4, 7])).then(pl.lit("Q")).otherwise("sex")
        .alias("sex"),
        pl.when(pl.int_range(pl.len()) == 10).then(pl.lit("NOPE")).otherwise("program")
        .alias("program"),
    )  # fmt: skip
    xlsx = xlsx_bytes({"Data": rows})
    return {
        "public/garbage/spells_2014.parquet": bytes(range(256)) * 8,
        "public/corrupt/spells_2014.xlsx": xlsx[: len(xlsx) // 2],
        "public/ragged/spells_2014.csv": ragged,
        "public/latin1/spells_2014.csv": latin1,
        "public/semicolon/spells_2014.csv": good.replace(",", ";"),
        "public/nocolumn/spells_2014.csv": rows.drop("birth_date").write_csv(),
        "public/empty/spells_2014.csv": b"",
        "public/usdates/spells_2014.csv": us.write_csv(),
        "public/badmap/spells_2014.csv": rows.rename({"record_id": "Case Number"}).write_csv(),
        "public/badmap/mapping.yaml": 'columns: {record_id: "Case No"}\n',
        "public/toomany/spells_2014.csv": half_bad.write_csv(),
    }


@pytest.fixture(scope="module")
def broken(handmade: Materialized, tmp_path_factory: pytest.TempPathFactory) -> Broken:
    """`outcomes run` over the handmade zone and warehouse plus broken spells files for 2014."""
    root = tmp_path_factory.mktemp("broken")
    landing, warehouse = root / "landing", root / "warehouse"
    shutil.copytree(handmade.landing, landing)
    shutil.copytree(handmade.warehouse.root, warehouse)
    for rel, content in _broken_files().items():
        put(landing, rel, content)
    before = parquet_files(warehouse)
    result = CliRunner().invoke(
        main,
        ["run", "--landing-dir", str(landing), "--warehouse-dir", str(warehouse)],
        env={"OUTCOMES_LINKAGE_KEY": TEST_KEY, "DAGSTER_HOME": None},
    )
    message = result.stderr.split("spells 2014: ", 1)[-1].strip()
    errors = {
        part.split(":", 1)[0]: part for part in re.split(r"; (?=public/)", message)
    }  # every part starts with the file it is about
    return Broken(result.exit_code, result.stderr, errors, before, parquet_files(warehouse))


def test_a_failed_partition_names_every_broken_file_on_stderr(broken: Broken):
    assert broken.exit_code == 1
    # the job, the partition, the step and the assets it writes, then the cause
    step = "step staging (known_clients, load_ledger, quarantine, staged_client_surveys, "
    step += "staged_partnership_surveys, staged_services, staged_spells, staged_wages)"
    wanted = f"outcomes run failed: stage_and_link 2014: {step}: spells 2014: "
    assert broken.stderr.count(wanted) == 1
    files = {rel for rel in _broken_files() if not rel.endswith("mapping.yaml")}
    assert set(broken.errors) == files


# 1. unreadable files


def test_garbage_named_parquet_fails_naming_the_file(broken: Broken):
    assert broken.errors["public/garbage/spells_2014.parquet"].startswith(
        "public/garbage/spells_2014.parquet: cannot be read as parquet ("
    )


def test_corrupt_xlsx_fails_naming_the_file(broken: Broken):
    assert broken.errors["public/corrupt/spells_2014.xlsx"].startswith(
        "public/corrupt/spells_2014.xlsx: cannot be read as xlsx ("
    )


def test_a_row_with_more_fields_than_the_header_names_its_line(broken: Broken):
    assert broken.errors["public/ragged/spells_2014.csv"] == (
        "public/ragged/spells_2014.csv: cannot be read as csv: "
        "line 4 has 14 fields, the header 13 (ComputeError)"
    )


def test_an_unclosed_quote_names_its_line_and_never_the_value(tmp_path: Path):
    rows = spell_rows().with_columns(
        pl.when(pl.int_range(pl.len()) == 6).then(pl.lit('Wes "Jr')).otherwise("first_name")
        .alias("first_name")
    ).write_csv().replace('"Wes ""Jr"', 'Wes "Jr')  # fmt: skip
    put(tmp_path, "public/q/spells_2014.csv", rows)
    with pytest.raises(LandingError) as e:
        stage(tmp_path, "public/q/spells_2014.csv")
    assert str(e.value).startswith("public/q/spells_2014.csv: cannot be read as csv: line 7: ")
    assert "Wes" not in str(e.value)  # Polars' own message quotes the text


# 2. Latin-1


def test_latin1_csv_fails_naming_file_and_line(broken: Broken):
    assert broken.errors["public/latin1/spells_2014.csv"] == (
        "public/latin1/spells_2014.csv: line 3: not UTF-8 (Latin-1 or another encoding?); "
        "re-export the file as UTF-8"
    )


# 3. semicolons


def test_semicolon_delimited_csv_fails_saying_so(broken: Broken):
    assert broken.errors["public/semicolon/spells_2014.csv"] == (
        "public/semicolon/spells_2014.csv: the header is semicolon-delimited; "
        "the contract expects commas (re-export as comma-separated CSV)"
    )


def test_semicolons_with_decimal_commas_get_the_same_message(tmp_path: Path):
    text = spell_rows().write_csv().replace(",", ";").replace("120.5", "120,5")
    put(tmp_path, "public/eu/spells_2014.csv", text)
    with pytest.raises(LandingError, match="semicolon-delimited"):
        stage(tmp_path, "public/eu/spells_2014.csv")


# 4. missing required column


def test_missing_required_column_names_file_and_column(broken: Broken):
    assert broken.errors["public/nocolumn/spells_2014.csv"] == (
        "public/nocolumn/spells_2014.csv: missing required column(s) ['birth_date']"
    )


def test_a_column_twice_is_refused(tmp_path: Path):
    text = spell_rows().with_columns(pl.col("sex").alias(" sex ")).write_csv()
    put(tmp_path, "public/twice/spells_2014.csv", text)
    with pytest.raises(LandingError, match=r"spells_2014.csv: column\(s\) \['sex'\] appear more"):
        stage(tmp_path, "public/twice/spells_2014.csv")


# 5. extra and reordered columns


@pytest.mark.parametrize("ext", ["csv", "parquet", "xlsx"])
def test_extra_and_reordered_columns_land_in_the_right_columns(tmp_path: Path, ext: str):
    rows = spell_rows()
    put(tmp_path, "public/a/spells_2014.csv", rows)
    shuffled = rows.with_columns(pl.lit("n/a").alias("Notes"), pl.lit("1").alias("extra"))
    shuffled = shuffled.select(sorted(shuffled.columns, reverse=True))
    assert shuffled.columns[0] == "zip"
    path = tmp_path / f"public/b/spells_2014.{ext}"
    path.parent.mkdir(parents=True)
    if ext == "csv":
        path.write_text(shuffled.write_csv())
    elif ext == "parquet":
        shuffled.write_parquet(path)
    else:
        path.write_bytes(xlsx_bytes({"Sheet1": shuffled}))
    a = stage(tmp_path, "public/a/spells_2014.csv").staged.drop("file", "org_id")
    b = stage(tmp_path, f"public/b/spells_2014.{ext}").staged.drop("file", "org_id")
    assert b.height == 20 and b.equals(a)


# 6. empty and header-only


def test_empty_file_fails_naming_the_file(broken: Broken):
    assert broken.errors["public/empty/spells_2014.csv"] == (
        "public/empty/spells_2014.csv: the file is empty (0 bytes)"
    )


@pytest.mark.parametrize(
    ("rel", "content", "error"),
    [
        ("public/e/spells_2014.parquet", b"", "the file is empty (0 bytes)"),
        ("public/e/spells_2014.xlsx", b"", "the file is empty (0 bytes)"),
        ("public/e/spells_2014.csv", b"\xef\xbb\xbf\r\n\n", "the file is empty (no header row)"),
    ],
)
def test_no_bytes_or_no_header_is_an_error_in_every_format(
    tmp_path: Path, rel: str, content: bytes, error: str
):
    put(tmp_path, rel, content)
    with pytest.raises(LandingError) as e:
        stage(tmp_path, rel)
    assert str(e.value) == f"{rel}: {error}"


@pytest.mark.parametrize("ext", ["csv", "parquet", "xlsx"])
def test_header_only_is_zero_rows_read(tmp_path: Path, ext: str):
    rel = f"public/h/spells_2014.{ext}"
    head = spell_rows().head(0)
    if ext == "csv":
        put(tmp_path, rel, HEADER + "\n")
    elif ext == "parquet":
        put(tmp_path, rel, b"")
        head.write_parquet(tmp_path / rel)
    else:
        put(tmp_path, rel, xlsx_bytes({"Sheet1": head}))
    r = stage(tmp_path, rel, max_share=0.05)
    assert (r.rows_read, r.staged.height, r.rows_quarantined) == (0, 0, 0)


def test_header_only_file_gets_a_ledger_entry(redelivered: Materialized):
    ledger = redelivered.warehouse.read(LOAD_LEDGER, [2014])
    row = ledger.filter(pl.col("file") == "public/quiet/spells_2014.csv").row(0, named=True)
    assert (row["org_id"], row["rows_read"], row["rows_staged"], row["rows_quarantined"]) == (
        "quiet", 0, 0, 0,
    )  # fmt: skip


# 7. xlsx with several sheets


def test_xlsx_first_sheet_is_the_data_others_are_ignored(tmp_path: Path):
    rows = spell_rows()
    other = rows.head(3).with_columns(pl.lit("TANF").alias("program"))
    notes = pl.DataFrame({"note": ["exported by hand", "do not edit"]})
    put(tmp_path, "public/x/spells_2014.xlsx", xlsx_bytes({"Data": rows, "Notes": notes,
                                                           "Old": other}))  # fmt: skip
    r = stage(tmp_path, "public/x/spells_2014.xlsx", max_share=0.05)
    assert r.staged.height == 20 and r.staged["program"].unique().to_list() == ["SNAP"]
    # a cover sheet first is not skipped: the first sheet must hold the data
    put(tmp_path, "public/y/spells_2014.xlsx", xlsx_bytes({"Cover": notes, "Data": rows}))
    with pytest.raises(LandingError, match=r"^public/y/spells_2014.xlsx: missing required"):
        stage(tmp_path, "public/y/spells_2014.xlsx")


# 8. dates in another format, no mapping


def test_a_date_in_another_format_is_quarantined_with_its_line(tmp_path: Path):
    rows = spell_rows().with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("02/01/2014")).otherwise("start_date")
        .alias("start_date")
    )  # fmt: skip
    put(tmp_path, "public/d/spells_2014.csv", rows)
    r = stage(tmp_path, "public/d/spells_2014.csv", max_share=0.05)
    assert reasons(r) == {5: ["start_date:not_a_date"]} and r.staged.height == 19
    # the partner's fix: a mapping with its date format
    us = spell_rows().with_columns(
        pl.col(c).str.to_date().dt.strftime("%m/%d/%Y") for c in ("birth_date", "start_date")
    )
    put(tmp_path, "public/us/spells_2014.csv", us)
    put(tmp_path, "public/us/mapping.yaml", 'date_format: "%m/%d/%Y"\n')
    r = stage(tmp_path, "public/us/spells_2014.csv", max_share=0.05)
    assert r.staged.height == 20 and r.staged["start_date"].unique().to_list() == [date(2014, 2, 1)]


def test_a_file_of_other_dates_fails_naming_file_and_top_reason(broken: Broken):
    assert broken.errors["public/usdates/spells_2014.csv"] == (
        "public/usdates/spells_2014.csv: 20 of 20 rows quarantined (100.0%, limit 5%); "
        "top reasons: birth_date:not_a_date (20), start_date:not_a_date (20); "
        "first at line(s) 1, 2, 3, 4, 5"
    )


# 9. a mapping naming a column that does not exist


def test_mapping_naming_a_column_the_file_lacks_fails(broken: Broken):
    assert broken.errors["public/badmap/spells_2014.csv"] == (
        "public/badmap/spells_2014.csv: public/badmap/mapping.yaml names column(s) "
        "['Case No'] that the file does not have"
    )


@pytest.mark.parametrize(
    ("mapping", "error"),
    [
        ('columns: {frist_name: "First"}\n',
         "public/m/spells_2014.csv: public/m/mapping.yaml maps ['frist_name'], not contract "
         "column(s) of public files"),
        ('values: {progam: {"Food Stamps": SNAP}}\n',
         "public/m/spells_2014.csv: public/m/mapping.yaml maps ['progam'], not contract "
         "column(s) of public files"),
        ('columns: {first_name: "First"}\n',
         "public/m/spells_2014.csv: has both column(s) ['first_name'] and the column(s) "
         "public/m/mapping.yaml maps to them; keep one"),
        ("columns: [record_id]\n", "public/m/mapping.yaml: columns must map contract names"),
        ('date_format: "%Y-%m-%d %H"\n',
         "public/m/mapping.yaml: date_format is not a valid date format"),
        ("values: {sex: {Female: &f F, Woman: *f}}\n",
         "public/m/mapping.yaml: anchors and aliases (&, *) are not allowed"),
        ("values: {sex: {Female: [F]}}\n", "public/m/mapping.yaml: columns must map contract"),
        ("columns: {first_name: {a: b}}\n", "public/m/mapping.yaml: columns must map contract"),
    ],
)  # fmt: skip
def test_a_mapping_that_cannot_apply_fails_naming_it(tmp_path: Path, mapping: str, error: str):
    put(tmp_path, "public/m/spells_2014.csv", spell_rows().with_columns(pl.lit("x").alias("First")))
    put(tmp_path, "public/m/mapping.yaml", mapping)
    with pytest.raises(LandingError) as e:
        stage(tmp_path, "public/m/spells_2014.csv")
    assert str(e.value).startswith(error)


def test_mapping_labels_are_read_as_written(tmp_path: Path):
    # YAML 1.1 reads N as false, yes as true and 001 as 1: a label must stay the label
    path = tmp_path / "mapping.yaml"
    path.write_text("values:\n  sex: {N: X, yes: M, 001: F, 1.0: U, ~: U}\ncolumns: {ssn: 010}\n")
    mapping = Mapping.load(path)
    assert mapping.values == {"sex": {"N": "X", "yes": "M", "001": "F", "1.0": "U", "~": "U"}}
    assert mapping.columns == {"ssn": "010"}


def test_wage_columns_in_an_agency_mapping_do_not_break_its_spells(tmp_path: Path):
    put(tmp_path, "public/m/spells_2014.csv", spell_rows())
    put(tmp_path, "public/m/mapping.yaml", 'columns: {employer_id: "Employer"}\n')
    assert Mapping.load(tmp_path / "public/m/mapping.yaml").columns == {"employer_id": "Employer"}
    assert stage(tmp_path, "public/m/spells_2014.csv", max_share=0.05).staged.height == 20


# 10. a field 1 MB long


def test_a_1mb_field_quarantines_its_row_and_the_rest_goes_on(tmp_path: Path):
    rows = spell_rows().with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("x" * 1_000_000))
        .otherwise("first_name").alias("first_name")
    )  # fmt: skip
    put(tmp_path, "public/l/spells_2014.csv", rows)
    r = stage(tmp_path, "public/l/spells_2014.csv", max_share=0.05)
    assert reasons(r) == {8: ["first_name:too_long"]}
    assert r.staged.height == 19 and nothing_lost(r)
    assert r.staged["first_name"].str.len_chars().max() <= 255


def test_a_1mb_field_through_the_pipeline_and_gx(redelivered: Materialized):
    # the run succeeded, so the blocking GX suite check passed the staged rows too
    q = redelivered.warehouse.read(QUARANTINE, [2014])
    mine = q.filter(pl.col("file") == LONG)
    assert [(r["line"], r["reasons"]) for r in mine.iter_rows(named=True)] == [
        (3, ["first_name:too_long"])
    ]
    ledger = redelivered.warehouse.read(LOAD_LEDGER, [2014])
    row = ledger.filter(pl.col("file") == LONG).row(0, named=True)
    assert (row["rows_read"], row["rows_staged"], row["rows_quarantined"]) == (25, 24, 1)


# 11. identical duplicates


def test_identical_duplicate_rows_collapse_and_are_counted(tmp_path: Path):
    rows = spell_rows()
    # the same values as read, after mapping: a differing extra column is ignored
    dup = pl.concat([rows, rows.head(2), rows.slice(5, 1)]).with_columns(
        pl.int_range(pl.len()).cast(pl.String).alias("export_row")
    )
    put(tmp_path, "public/dup/spells_2014.csv", dup)
    r = stage(tmp_path, "public/dup/spells_2014.csv", max_share=0.05)
    assert (r.rows_read, r.duplicates_collapsed, r.staged.height) == (23, 3, 20)
    assert r.staged["line"].to_list() == list(range(1, 21))  # the first of each is kept
    assert nothing_lost(r)


def test_duplicates_collapsed_is_in_the_ledger(redelivered: Materialized):
    ledger = redelivered.warehouse.read(LOAD_LEDGER, [2014])
    row = ledger.filter(pl.col("file") == "public/hra/spells_2014.csv").row(0, named=True)
    assert (row["rows_read"], row["duplicates_collapsed"], row["rows_staged"]) == (21, 1, 20)


# 12. conflicting rows sharing a record id


def test_conflicting_rows_sharing_a_record_id_are_all_quarantined(tmp_path: Path):
    rows = spell_rows()
    conflict = rows.slice(3, 1).with_columns(pl.lit("Dana").alias("first_name"))  # RS04 again
    put(tmp_path, "public/c/spells_2014.csv", pl.concat([rows, conflict, rows.slice(3, 1)]))
    r = stage(tmp_path, "public/c/spells_2014.csv")
    # line 22 is identical to line 4: collapsed first, so the count is not doubled
    assert r.duplicates_collapsed == 1
    assert reasons(r) == {4: ["duplicate_record_id"], 21: ["duplicate_record_id"]}
    assert "RS04" not in r.staged["record_id"].to_list() and nothing_lost(r)


# 13. placeholder and never-issued SSNs


def test_invalid_ssns_blank_in_spells_and_quarantine_in_wages(tmp_path: Path):
    bad = ["123-45-6789", "666-12-3456", "219-00-1234", "999999999"]
    rows = spell_rows()
    rows = rows.with_columns(pl.Series("ssn", bad + rows["ssn"].to_list()[4:]))
    put(tmp_path, "public/s/spells_2014.csv", rows)
    r = stage(tmp_path, "public/s/spells_2014.csv", max_share=0.05)
    assert (r.staged.height, r.rows_quarantined, r.invalid_ssn) == (20, 0, 4)
    assert r.staged["ssn"].head(4).to_list() == [None] * 4
    assert r.staged["ssn"].drop_nulls().len() == 16
    wages = rows.select(
        "record_id", "ssn", pl.lit("E1").alias("employer_id"), pl.lit("2014").alias("year"),
        pl.lit("3").alias("quarter"), pl.lit("100").alias("wages"),
    )  # fmt: skip
    put(tmp_path, "public/s/wages_2014.csv", wages)
    w = stage(tmp_path, "public/s/wages_2014.csv")
    assert reasons(w) == {i: ["ssn:invalid"] for i in range(1, 5)} and w.staged.height == 16


def test_invalid_ssn_is_counted_in_the_ledger(redelivered: Materialized, handmade: Materialized):
    ledger = redelivered.warehouse.read(LOAD_LEDGER, [2014])
    row = ledger.filter(pl.col("file") == "public/hra/spells_2014.csv").row(0, named=True)
    assert (row["invalid_ssn"], row["rows_quarantined"]) == (1, 0)
    staged = redelivered.warehouse.read(SPELLS, [2014]).filter(pl.col("record_id") == "RS05")
    assert staged["ssn"].to_list() == [None]
    wages_q = handmade.warehouse.read(QUARANTINE, [2014]).filter(pl.col("source") == "wages")
    assert wages_q.select("line", "reasons").rows() == [(26, ["ssn:invalid"])]


# 14. over the threshold


def test_over_the_threshold_names_file_count_reasons_and_lines(broken: Broken):
    assert broken.errors["public/toomany/spells_2014.csv"] == (
        "public/toomany/spells_2014.csv: 4 of 20 rows quarantined (20.0%, limit 5%); "
        "top reasons: sex:not_in_set (3), program:not_in_set (1); first at line(s) 2, 5, 8, 11"
    )


def test_a_failed_partition_leaves_every_table_file_byte_identical(broken: Broken):
    for table in ("restricted/staged_spells", "analytic/load_ledger", "restricted/quarantine",
                  "published/outcome_indicators"):  # fmt: skip
        assert f"{table}/year=2014/data.parquet" in broken.before
    assert broken.after == broken.before


def test_threshold_unit_message_without_a_pipeline():
    r = stage_text(
        spell_rows(4).with_columns(pl.lit("Q").alias("sex")).with_row_index("line", 1)
        .with_columns(pl.col("line").cast(pl.Int64)),
        SOURCES["spells"], org_id="a", file="f.csv", params=params(2014),
    )  # fmt: skip
    with pytest.raises(QuarantineThresholdError, match=r"^f.csv: 4 of 4 rows quarantined"):
        check_threshold(r, "f.csv", 0.05)


# 15. a year outside the partitions


def test_a_file_outside_the_partition_years_fails_the_run_naming_it(
    handmade: Materialized, tmp_path: Path
):
    landing = tmp_path / "landing"
    shutil.copytree(handmade.landing, landing)
    last = int(yearly.get_last_partition_key())
    early = f"public/hra/spells_{FIRST_PARTITION_YEAR - 1}.csv"
    late = f"nonprofit/cbo/services_{last + 1}.csv"
    put(landing, early, HEADER + "\n")
    put(landing, late, HEADER + "\n")
    result = CliRunner().invoke(
        main,
        ["run", "--landing-dir", str(landing), "--warehouse-dir", str(tmp_path / "wh")],
        env={"OUTCOMES_LINKAGE_KEY": TEST_KEY},
    )
    assert result.exit_code == 1
    assert (
        f"outcomes run failed: 2 file(s) for years outside {FIRST_PARTITION_YEAR}-{last}: "
        f"{late}, {early}"
    ) in result.stderr
    assert not (tmp_path / "wh").exists()  # refused before anything ran


# 16. a re-delivered earlier year


@pytest.fixture(scope="module")
def redelivered(handmade: Materialized, tmp_path_factory: pytest.TempPathFactory) -> Materialized:
    """The handmade warehouse, then a run with hra's 2014 spells re-delivered.

    The new file: S01-S20 only, a corrected monthly benefit, S05's SSN a placeholder,
    line 21 a copy of line 1. Also a header-only file from a new agency, and a new
    partner's services with a 1 MB first name on line 3 (1 of 25: under the threshold).
    """
    root = tmp_path_factory.mktemp("redelivered")
    landing, warehouse = root / "landing", root / "warehouse"
    shutil.copytree(handmade.landing, landing)
    shutil.copytree(handmade.warehouse.root, warehouse)
    rows = spell_rows().with_columns(
        pl.lit("99.5").alias("monthly_benefit"),
        pl.when(pl.col("person_id") == "S05").then(pl.lit("123-45-6789")).otherwise("ssn")
        .alias("ssn"),
    )  # fmt: skip
    put(landing, "public/hra/spells_2014.csv", pl.concat([rows, rows.head(1)]))
    put(landing, "public/quiet/spells_2014.csv", HEADER + "\r\n")
    services = spell_rows(25).select(
        pl.format("V{}", pl.col("person_id")).alias("record_id"),
        pl.format("c{}", pl.col("person_id")).alias("client_id"),
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("x" * 1_000_000))
        .otherwise("first_name").alias("first_name"),
        "last_name", "birth_date", "county_fips", pl.lit("FOOD").alias("program"),
        pl.lit("2014-04-01").alias("enroll_date"),
    )  # fmt: skip
    put(landing, LONG, services)
    return materialize(landing, warehouse)


def test_redelivery_replaces_that_organisations_year_only(
    redelivered: Materialized, handmade: Materialized
):
    old, new = handmade.warehouse, redelivered.warehouse
    hra = new.read(SPELLS, [2014]).filter(pl.col("org_id") == "hra").sort("record_id")
    assert hra["record_id"].to_list() == [f"RS{i:02d}" for i in range(1, 21)]
    assert hra["monthly_benefit"].unique().to_list() == [99.5]
    # the other organisation's rows of that year, and the other year, are unchanged
    for year, org in ((2014, "dcfs"), (2015, "hra")):
        before = old.read(SPELLS, [year]).filter(pl.col("org_id") == org).sort("record_id")
        after = new.read(SPELLS, [year]).filter(pl.col("org_id") == org).sort("record_id")
        assert before.height > 0 and after.equals(before), (year, org)
    # the old file's quarantined row went with it
    q = new.read(QUARANTINE, [2014]).filter(pl.col("file") == "public/hra/spells_2014.csv")
    assert q.is_empty()
    # the ledger: a new entry for the new bytes, earlier entries as they were
    before, after = old.read(LOAD_LEDGER), new.read(LOAD_LEDGER)
    key = ["file", "file_sha256", "loaded_at"]
    gone = before.join(after, on=key, how="anti")["file"].to_list()
    assert gone == ["public/hra/spells_2014.csv"]
    assert after.filter(pl.col("file") == "public/hra/spells_2014.csv").height == 1


def test_nothing_lost_in_any_file_after_the_redelivery(redelivered: Materialized):
    ledger = redelivered.warehouse.read(LOAD_LEDGER)
    off = ledger.filter(
        pl.col("rows_read")
        != pl.col("rows_staged") + pl.col("rows_quarantined") + pl.col("duplicates_collapsed")
    )
    assert ledger.height == 9 and off.is_empty()


@pytest.mark.parametrize("ext", ["csv", "xlsx", "parquet"])
def test_a_repeated_column_header_fails_in_every_format(tmp_path: Path, ext: str):
    rows = spell_rows(3)
    header = [*rows.columns, "ssn"]  # a second ssn column, e.g. a spouse's
    values = [[*r, "123-45-6789"] for r in rows.rows()]
    rel = f"public/dup/spells_2014.{ext}"
    if ext == "csv":
        content = "\n".join(",".join(v or "" for v in r) for r in [header, *values]) + "\n"
    elif ext == "xlsx":
        import xlsxwriter

        path = tmp_path / rel
        path.parent.mkdir(parents=True)
        with xlsxwriter.Workbook(path) as wb:
            ws = wb.add_worksheet()
            for i, r in enumerate([header, *values]):
                ws.write_row(i, 0, r)
        content = path.read_bytes()
    else:
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        table = pa.Table.from_arrays([pa.array(c) for c in zip(*values, strict=True)], header)
        pq.write_table(table, buf)
        content = buf.getvalue()
    put(tmp_path, rel, content)
    with pytest.raises(LandingError) as e:
        stage(tmp_path, rel)
    assert str(e.value) == f"{rel}: column(s) ['ssn'] appear more than once; keep one"
    assert "123-45-6789" not in str(e.value)


@pytest.mark.parametrize("kind", ["file link", "folder link", "fifo"])
def test_links_and_special_files_in_the_landing_zone_are_refused(tmp_path: Path, kind: str):
    import os

    landing, outside = tmp_path / "landing", tmp_path / "outside"
    put(landing, "public/ok/spells_2014.csv", spell_rows(2))
    put(outside, "spells_2014.csv", spell_rows(2))  # e.g. another agency's export
    if kind == "file link":
        (landing / "public/ok/link").mkdir()
        os.symlink(outside / "spells_2014.csv", landing / "public/ok/link/spells_2015.csv")
        rel = "public/ok/link/spells_2015.csv"
    elif kind == "folder link":
        os.symlink(outside, landing / "public/elsewhere")
        rel = "public/elsewhere"
    else:
        os.mkfifo(landing / "public/ok/spells_2016.csv")
        rel = "public/ok/spells_2016.csv"
    with pytest.raises(LandingError) as e:
        discover(landing)
    assert str(e.value).startswith(f"{rel}: ")


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_the_ledger_hash_is_that_of_the_bytes_parsed(tmp_path: Path, ext: str):
    import hashlib
    import io

    rows = spell_rows(3)
    if ext == "csv":
        content: bytes | str = rows.write_csv()
    else:
        buf = io.BytesIO()
        rows.write_parquet(buf)
        content = buf.getvalue()
    path = put(tmp_path, f"public/h/spells_2014.{ext}", content)
    parsed = path.read_bytes()
    (lf,) = discover(tmp_path)
    text = read_text(lf).rows
    path.write_bytes(parsed + b"\n")  # the partner's upload lands again mid-run
    assert lf.sha256() == hashlib.sha256(parsed).hexdigest()
    assert text.height == 3


def far_cell_xlsx(path: Path) -> None:
    """A few-KB workbook whose sheet names a cell at XFD1048576."""
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    with xlsxwriter.Workbook(path) as wb:
        ws = wb.add_worksheet()
        rows = spell_rows(2)
        for i, r in enumerate([rows.columns, *rows.rows()]):
            ws.write_row(i, 0, r)
        ws.write(1048575, 16383, "x")


def test_caps_stop_a_file_before_it_is_allocated(tmp_path: Path):
    from outcomes.config import LandingCaps

    far = tmp_path / "public/big/spells_2014.xlsx"
    far_cell_xlsx(far)
    assert far.stat().st_size < 20_000
    (lf,) = discover(tmp_path)
    with pytest.raises(LandingError) as e:
        read_text(lf)
    assert str(e.value) == (
        "public/big/spells_2014.xlsx: 1,048,576 rows by 16,384 columns is over the cap of "
        "2,000,000 by 200 (OUTCOMES_MAX_SHEET_ROWS, OUTCOMES_MAX_SHEET_COLUMNS)"
    )
    small = LandingCaps(file_bytes=100, sheet_rows=2, parquet_bytes=100)
    put(tmp_path / "b", "public/b/spells_2014.csv", spell_rows(3))
    rows = spell_rows(3)
    buf = io.BytesIO()
    rows.write_parquet(buf)
    put(tmp_path / "p", "public/p/spells_2014.parquet", buf.getvalue())
    with pytest.raises(LandingError, match=r"bytes is over the cap of 100 \(OUTCOMES_MAX_FILE"):
        read_text(discover(tmp_path / "b")[0], caps=small)
    with pytest.raises(LandingError, match="uncompressed is over the cap of 100"):
        read_text(discover(tmp_path / "p")[0], caps=LandingCaps(parquet_bytes=100))
    # the sheet caps are a spreadsheet's: CSV and Parquet are bounded by their bytes
    long = LandingCaps(sheet_rows=2)
    buf = io.BytesIO()
    rows.write_excel(buf)
    put(tmp_path / "x", "public/x/spells_2014.xlsx", buf.getvalue())
    with pytest.raises(LandingError, match="4 rows by 13 columns is over the cap of 2 by 200"):
        read_text(discover(tmp_path / "x")[0], caps=long)
    assert read_text(discover(tmp_path / "x")[0], caps=LandingCaps(sheet_rows=4)).rows.height == 3
    for landing in ("b", "p"):
        assert read_text(discover(tmp_path / landing)[0], caps=long).rows.height == 3


def test_caps_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    from outcomes.config import LandingCaps

    monkeypatch.setenv("OUTCOMES_MAX_SHEET_ROWS", "5")
    assert LandingCaps.from_env() == LandingCaps(sheet_rows=5)


def test_discover_takes_the_contract_file_names_and_nothing_else(tmp_path: Path) -> None:
    names = {
        "public/DHS/spells_2020.csv": ("spells", "DHS", 2020),
        "public/DOL/Wages_2021.PARQUET": ("wages", "DOL", 2021),  # folder and stem any case
        "nonprofit/p.1/services_2019.xlsx": ("services", "p.1", 2019),
        "nonprofit/P1/surveys_2019.csv": ("client_surveys", "P1", 2019),
        "partnership_surveys/surveys_2022.csv": ("partnership_surveys", "", 2022),
        "public/DHS/surveys_2020.csv": None,  # no public surveys
        "nonprofit/services_2020.csv": None,  # no partner folder
        "partnership_surveys/x/surveys_2020.csv": None,  # no organisation there
        "public/DHS/spells_2020.json": None,
        "public/DHS/old/spells_2020.csv": None,
        "reference/counties.csv": None,
    }
    for rel in names:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("record_id\n")
    found = {f.relative: (f.source.name, f.org_id, f.year) for f in discover(tmp_path)}
    assert found == {rel: what for rel, what in names.items() if what}
