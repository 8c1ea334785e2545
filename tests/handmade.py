"""A small landing zone written by hand from the contract alone.

Different counties, years, agencies and partners than the generator uses, every
format, a mapping.yaml, and numbers small enough to check indicators by hand:

- hra (public, SNAP): 30 persons S01-S30 start SNAP 2014-02-01 in 36001, open-ended
  (csv with BOM, plus one identical duplicate row and one row with a future birth
  date). In 2015 (parquet) S01-S12 start a new SNAP spell in 36003.
- dcfs (public, FOSTER_CARE): 15 children enter care in 36005 in 2014 (xlsx).
- cbo (nonprofit, own format via mapping.yaml, US dates): S01-S20 enrol in HOUSING
  in 36001 on 2014-03-15 under other client ids, linked by name and birth date
  (half also by SSN); 5 other clients.
- dol (wages): 25 valid rows for S01-S25 in 2014 Q3, one row with a placeholder SSN.

Population: every county-year has 1000 per age group in 36001, 2000 in 36003,
3000 in 36005.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

COUNTIES = ["36001", "36003", "36005"]
YEARS = (2014, 2015)
POP_PER_AGE_GROUP = {"36001": 1000, "36003": 2000, "36005": 3000}
FIRST = ["Ann", "Ben", "Cat", "Dan", "Eve", "Fay", "Gus", "Hal", "Ivy", "Jon", "Kim", "Lou",
         "May", "Ned", "Oda", "Pat", "Quin", "Roy", "Sue", "Tom", "Uma", "Vic", "Wes", "Xia",
         "Yul", "Zed", "Abe", "Bea", "Cal", "Dee"]  # fmt: skip


def _csv(path: Path, df: pl.DataFrame, bom: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + df.write_csv().encode("utf-8"))


def snap_persons() -> pl.DataFrame:
    n = len(FIRST)
    return pl.DataFrame(
        {
            "person_id": [f"S{i:02d}" for i in range(1, n + 1)],
            "first_name": FIRST,
            "last_name": ["Lee"] * n,
            "birth_date": [date(1980 + i % 20, 1 + i % 12, 1 + i % 28) for i in range(n)],
            "sex": ["F", "M"] * (n // 2),
            "ssn": [f"219{i:02d}{1000 + i}" for i in range(11, 11 + n)],
        }
    )


def write_handmade(root: Path) -> Path:
    """Write the landing zone under root/landing and return that folder."""
    land = root / "landing"
    _csv(
        land / "reference/counties.csv",
        pl.DataFrame(
            {"county_fips": COUNTIES, "county_name": ["Albany", "Allegany", "Bronx"],
             "state_abbr": ["NY"] * 3}
        ),
    )  # fmt: skip
    pop = pl.DataFrame(
        [(c, y, g, p) for c, p in POP_PER_AGE_GROUP.items() for y in YEARS
         for g in ("0-17", "18-64", "65+")],
        schema=["county_fips", "year", "age_group", "population"], orient="row",
    )  # fmt: skip
    _csv(land / "reference/population.csv", pop)
    _csv(
        land / "reference/partnerships.csv",
        pl.DataFrame(
            {"partnership_id": ["P1"], "agency_id": ["hra"], "partner_id": ["cbo"],
             "county_fips": ["36001"], "start_year": [2015], "end_year": [None]},
            schema_overrides={"end_year": pl.Int64},
        ),
    )  # fmt: skip
    people = snap_persons()
    snap = people.with_columns(
        pl.format("R{}", pl.col("person_id")).alias("record_id"),
        pl.col("birth_date").dt.strftime("%Y-%m-%d"),
        pl.lit("12207").alias("zip"),
        pl.lit("36001").alias("county_fips"),
        pl.lit("SNAP").alias("program"),
        pl.lit("2014-02-01").alias("start_date"),
        pl.lit("").alias("end_date"),
        pl.lit("120.5").alias("monthly_benefit"),
    )
    future = snap.head(1).with_columns(
        pl.lit("R99").alias("record_id"), pl.lit("2099-01-01").alias("birth_date")
    )
    # line 1 and line 2 are identical (collapsed), line 32 has a future birth date
    _csv(
        land / "public/hra/spells_2014.csv",
        pl.concat([snap.head(1), snap, future]),
        bom=True,
    )
    spells_2015 = (
        snap.head(12)
        .with_columns(
            pl.format("N{}", pl.col("person_id")).alias("record_id"),
            pl.lit("36003").alias("county_fips"),
            pl.lit(date(2015, 6, 1)).alias("start_date"),
            pl.lit(None, pl.Date).alias("end_date"),
            pl.col("birth_date").str.to_date(),
            pl.col("monthly_benefit").cast(pl.Float64),
        )
        .select(pl.all().reverse())  # another column order
    )
    spells_2015.write_parquet(land / "public/hra/spells_2015.parquet")
    children = pl.DataFrame(
        {
            "record_id": [f"F{i}" for i in range(15)],
            "person_id": [f"K{i}" for i in range(15)],
            "first_name": FIRST[:15],
            "last_name": ["Ray"] * 15,
            "birth_date": [date(2010, 1 + i % 12, 2) for i in range(15)],
            "sex": ["U"] * 15,
            "county_fips": ["36005"] * 15,
            "program": ["FOSTER_CARE"] * 15,
            "start_date": [date(2014, 5, 1 + i) for i in range(15)],
        }
    )
    (land / "public/dcfs").mkdir(parents=True)
    children.write_excel(land / "public/dcfs/spells_2014.xlsx")
    # a partner with its own export: its column names, labels and US dates
    (land / "nonprofit/cbo").mkdir(parents=True)
    (land / "nonprofit/cbo/mapping.yaml").write_text(
        'columns: {record_id: "Case #", client_id: "Client", first_name: "First Name", '
        'last_name: "Last Name", birth_date: "DOB", enroll_date: "Start", '
        'county_fips: "County", program: "Service"}\n'
        'values: {program: {"Job Training": WORKFORCE, "Housing Help": HOUSING}}\n'
        'date_format: "%m/%d/%Y"\n'
    )
    others = pl.DataFrame(
        {"first_name": ["Zoe", "Yan", "Xu", "Wil", "Val"], "last_name": ["Orr"] * 5,
         "birth_date": [date(1990, 1, d) for d in range(1, 6)], "ssn": [None] * 5}
    )  # fmt: skip
    clients = pl.concat(
        [
            people.head(20).select(
                "first_name", "last_name", "birth_date",
                pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.col("ssn")).alias("ssn"),
            ),
            others,
        ]
    )  # fmt: skip
    services = clients.select(
        pl.format("C{}", pl.int_range(pl.len())).alias("Case #"),
        pl.format("K{}", pl.int_range(pl.len())).alias("Client"),
        pl.col("first_name").alias("First Name"),
        pl.col("last_name").alias("Last Name"),
        pl.col("birth_date").dt.strftime("%m/%d/%Y").alias("DOB"),
        pl.col("ssn").str.slice(0, 3) + "-" + pl.col("ssn").str.slice(3, 2) + "-"
        + pl.col("ssn").str.slice(5),
        pl.lit("36001").alias("County"),
        pl.lit("Housing Help").alias("Service"),
        pl.lit("03/15/2014").alias("Start"),
        pl.lit("extra column").alias("Notes"),
    )  # fmt: skip
    _csv(land / "nonprofit/cbo/services_2014.csv", services)
    wages = people.head(25).select(
        pl.format("W{}", pl.col("person_id")).alias("record_id"),
        "ssn",
        pl.lit("E1").alias("employer_id"),
        pl.lit("2014").alias("year"),
        pl.lit("3").alias("quarter"),
        pl.lit("5000").alias("wages"),
    )
    placeholder = wages.head(1).with_columns(
        pl.lit("WBAD").alias("record_id"), pl.lit("123-45-6789").alias("ssn")
    )
    _csv(land / "public/dol/wages_2014.csv", pl.concat([wages, placeholder]))
    surveys = pl.DataFrame(
        {"response_id": ["Q1", "Q2"], "client_id": ["K1", "K3"],
         "survey_date": [date(2015, 3, 20), date(2015, 5, 2)],
         "wave": ["FOLLOWUP_12M", "FOLLOWUP_12M"], "housing_stable": ["yes", "N"]}
    )  # fmt: skip
    surveys.write_excel(land / "nonprofit/cbo/surveys_2015.xlsx")
    (land / "partnership_surveys").mkdir(parents=True)
    pl.DataFrame(
        {"response_id": ["A", "B"], "partnership_id": ["P1", "P1"],
         "respondent_role": ["AGENCY", "NONPROFIT"], "roles_clarity": [4, 5],
         "leadership_relationships": [4, 4], "sustained_commitment": [3, 5],
         "openness_to_disruption": [4, 4], "shared_vision": [5, 5],
         "trust_transparency": [4, 4]}
    ).write_parquet(land / "partnership_surveys/surveys_2015.parquet")  # fmt: skip
    return land
