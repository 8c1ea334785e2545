"""Indicator transforms against small tables worked out by hand (contract section 4).

Every expected number is derived in the comments from the rows above it; none is
computed by the code under test. Counties: C1 = 01001, C2 = 01003, C3 = 01005 (C3 never
has a record, so it must still get zero rows).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
import pytest

from outcomes import schema
from outcomes.indicators import (
    CELL_SCHEMA,
    GROUP_CELL_SCHEMA,
    INPUT_TABLES,
    REGISTRY,
    Inputs,
    LoadedYears,
    age_band,
    finalize,
    group_cells,
    indicator_panel,
    indicator_tables,
    person_cells,
)

C1, C2, C3, C4 = "01001", "01003", "01005", "01007"
COUNTIES = [C1, C2, C3]
Y = 2021
YEARS = frozenset({2020, 2021, 2022})
LOADED = LoadedYears(spells=YEARS, services=YEARS, wages=YEARS, client_surveys=YEARS)


# ---------------------------------------------------------------- builders


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def spells(rows) -> pl.DataFrame:
    """(record_id, person_key, program, start, end, county[, sex, birth_year]) -> LINKED_SPELLS."""
    records = []
    for record_id, person, program, start, end, county, *demo in rows:
        sex, birth_year = demo or ("F", 1990)
        public = program in schema.PROGRAMS["spells"]
        records.append(
            {
                "person_key": person,
                "sector": "PUBLIC" if public else "NONPROFIT",
                "org_id": "org",
                "program": program,
                "start_date": _date(start),
                "end_date": _date(end),
                "county_fips": county,
                "birth_year": birth_year,
                "sex": sex,
                "year": _date(start).year,
                "source": "spells" if public else "services",
                "record_id": record_id,
            }
        )
    return pl.DataFrame(records, schema=schema.LINKED_SPELLS.schema)


def wages(rows) -> pl.DataFrame:
    """(person_key, year, quarter, employer_id, wages) -> QUARTERLY_WAGES."""
    return pl.DataFrame(rows, schema=schema.QUARTERLY_WAGES.schema, orient="row")


def surveys(rows) -> pl.DataFrame:
    """(response_id, person_key, survey_date, wave, housing_stable, county) -> LINKED_SURVEYS."""
    records = [
        {
            "response_id": rid,
            "person_key": person,
            "org_id": "npo",
            "county_fips": county,
            "survey_date": _date(day),
            "wave": wave,
            "housing_stable": stable,
            "year": _date(day).year,
        }
        for rid, person, day, wave, stable, county in rows
    ]
    return pl.DataFrame(records, schema=schema.LINKED_SURVEYS.schema)


# Population of 2021: C1 1000 + 3000 + 500 = 4500, C2 500 + 1500 + 250 = 2250,
# C3 200 + 600 + 100 = 900; a 2020 row for C1 that must be ignored in 2021.
POPULATION = pl.DataFrame(
    [
        (C1, 2021, "0-17", 1000),
        (C1, 2021, "18-64", 3000),
        (C1, 2021, "65+", 500),
        (C2, 2021, "0-17", 500),
        (C2, 2021, "18-64", 1500),
        (C2, 2021, "65+", 250),
        (C3, 2021, "0-17", 200),
        (C3, 2021, "18-64", 600),
        (C3, 2021, "65+", 100),
        (C1, 2020, "0-17", 9999),
    ],
    schema=schema.POPULATION,
    orient="row",
)


def run(spell_rows=(), wage_rows=(), survey_rows=(), loaded=LOADED, year=Y, counties=COUNTIES):
    return person_cells(
        year,
        spells(spell_rows),
        wages(wage_rows),
        surveys(survey_rows),
        POPULATION,
        counties,
        loaded,
    )


def run_groups(spell_rows=(), wage_rows=(), survey_rows=(), loaded=LOADED, year=Y):
    return group_cells(
        year,
        spells(spell_rows),
        wages(wage_rows),
        surveys(survey_rows),
        POPULATION,
        COUNTIES,
        loaded,
    )


def by_county(cells: pl.DataFrame, indicator_id: str) -> dict[str, tuple[int, int]]:
    rows = cells.filter(pl.col("indicator_id") == indicator_id)
    return {r["county_fips"]: (r["numerator"], r["denominator"]) for r in rows.to_dicts()}


def provisional(cells: pl.DataFrame, indicator_id: str) -> set[bool]:
    return set(cells.filter(pl.col("indicator_id") == indicator_id)["provisional"])


# ---------------------------------------------------------------- scenarios

REACH = [
    # P1: two public spells active in 2021; MEDICAID s2 starts later -> county C2.
    ("s1", "P1", "SNAP", "2020-03-01", "2021-02-01", C1),
    ("s2", "P1", "MEDICAID", "2021-06-01", None, C2),
    ("n1", "P1", "HOUSING", "2021-07-01", None, C3),  # nonprofit active -> numerator
    # P2: same start date in C1 (s4) and C2 (s3): tie -> smallest record_id s3 -> C2.
    ("s4", "P2", "TANF", "2021-05-01", None, C1),
    ("s3", "P2", "SNAP", "2021-05-01", "2021-12-31", C2),
    # P3: SNAP ended 31 Dec 2020 -> not active in 2021, not in the denominator.
    ("s5", "P3", "SNAP", "2019-01-01", "2020-12-31", C1),
    ("n2", "P3", "FOOD", "2021-01-01", None, C1),
    # P4: SNAP in C1; enrollment ending 1 Jan 2021 is still active -> numerator.
    ("s6", "P4", "SNAP", "2021-01-01", None, C1),
    ("n3", "P4", "WORKFORCE", "2020-06-01", "2021-01-01", C2),
    # P5: foster care is not SNAP/TANF/MEDICAID -> not in the denominator.
    ("s7", "P5", "FOSTER_CARE", "2021-02-01", None, C1),
    ("n4", "P5", "HOUSING", "2021-02-01", None, C1),
    # P6: SNAP starts in 2022 -> not active in 2021.
    ("s8", "P6", "SNAP", "2022-01-01", None, C1),
    ("n5", "P6", "HOUSING", "2021-02-01", None, C1),
    # P7: MEDICAID starting 31 Dec 2021 is active; enrollment ended in 2020 -> no.
    ("s9", "P7", "MEDICAID", "2021-12-31", None, C1),
    ("n6", "P7", "HOUSING", "2020-01-01", "2020-12-31", C1),
    # P8: SNAP in C2; enrollment starts 2022 -> no.
    ("s10", "P8", "SNAP", "2021-03-01", None, C2),
    ("n7", "P8", "HOUSING", "2022-01-01", None, C1),
]

FOSTER = [
    ("f1", "K1", "FOSTER_CARE", "2021-02-01", "2021-05-01", C1),  # K1 enters twice:
    ("f2", "K1", "FOSTER_CARE", "2021-09-01", None, C1),  # two spells, both count
    ("f3", "K2", "FOSTER_CARE", "2021-03-01", None, C2),
    ("f4", "K3", "FOSTER_CARE", "2020-11-01", None, C1),  # active in 2021, entered 2020
    ("f5", "K4", "FOSTER_CARE", "2022-01-01", None, C2),  # enters 2022
]

SNAP = [
    ("a1", "S1", "SNAP", "2020-01-01", "2021-04-30", C1),  # S1 twice: latest start a2 -> C2
    ("a2", "S1", "SNAP", "2021-03-01", None, C2),
    ("a3", "S2", "SNAP", "2021-06-01", "2021-08-01", C1),
    ("a4", "S3", "TANF", "2021-01-01", None, C1),  # not SNAP
    ("a5", "S4", "SNAP", "2019-05-01", "2020-06-30", C3),  # not active in 2021
]

EMPLOYMENT = [
    # E1 exits Q1 2021 in C1 and Q3 2021 in C2: latest exit w2 -> C2, target Q1 2022.
    ("w1", "E1", "WORKFORCE", "2020-09-01", "2021-02-15", C1),
    ("w2", "E1", "WORKFORCE", "2021-03-01", "2021-08-10", C2),
    # E2 exits Q2 2021 in C1 -> target Q4 2021.
    ("w3", "E2", "WORKFORCE", "2021-01-10", "2021-05-20", C1),
    # E3 exits twice on 30 Nov 2021: tie -> smallest record_id w5 -> C2; target Q2 2022.
    ("w6", "E3", "WORKFORCE", "2021-06-01", "2021-11-30", C1),
    ("w5", "E3", "WORKFORCE", "2021-07-01", "2021-11-30", C2),
    ("w7", "E4", "HOUSING", "2021-01-01", "2021-06-30", C1),  # not workforce
    ("w8", "E5", "WORKFORCE", "2021-01-01", "2022-01-15", C1),  # exits in 2022
    ("w9", "E6", "WORKFORCE", "2021-01-01", None, C1),  # no exit
    # E7: the latest exit (w10, Oct, C2 -> target Q2 2022) is not the latest start
    # (w11, exit Jul, C1 -> target Q1 2022, no wages then).
    ("w10", "E7", "WORKFORCE", "2020-01-01", "2021-10-01", C2),
    ("w11", "E7", "WORKFORCE", "2021-06-01", "2021-07-01", C1),
]
EMPLOYMENT_WAGES = [
    ("E1", 2022, 1, "emp1", 0.0),  # summed over employers: 0 + 100 > 0 -> paid
    ("E1", 2022, 1, "emp2", 100.0),
    ("E2", 2021, 4, "emp1", 0.0),  # 0 + 0 -> not paid in the target quarter
    ("E2", 2021, 4, "emp2", 0.0),
    ("E2", 2021, 3, "emp1", 500.0),  # wrong quarter
    ("E2", 2022, 4, "emp1", 500.0),  # right quarter, wrong year
    ("E3", 2022, 2, "emp3", 50.0),  # paid
    ("E7", 2022, 2, "emp1", 10.0),  # paid
]

TANF = [
    # T1 ends 31 Mar (C1) and 30 Jun 2021 (C2): latest end t2 -> C2. t3 starts
    # 2022-06-30 = 30 Jun 2021 + 365 days (no 29 Feb between) -> returns. From the
    # earlier end (31 Mar) it would be 456 days: only the latest end counts.
    ("t1", "T1", "TANF", "2020-05-01", "2021-03-31", C1),
    ("t2", "T1", "TANF", "2021-04-15", "2021-06-30", C2),
    ("t3", "T1", "TANF", "2022-06-30", None, C1),
    # T2 ends 1 Sep 2021; next starts 2 Sep 2022 = 366 days later -> no.
    ("t4", "T2", "TANF", "2021-01-01", "2021-09-01", C1),
    ("t5", "T2", "TANF", "2022-09-02", None, C1),
    # T3 ends 31 Dec 2021; a TANF spell starting the same day (0 days) and a SNAP
    # spell 5 days later do not count -> no.
    ("t6", "T3", "TANF", "2021-02-01", "2021-12-31", C1),
    ("t7", "T3", "TANF", "2021-12-31", None, C1),
    ("t8", "T3", "SNAP", "2022-01-05", None, C1),
    # T4 ends 10 Oct 2021; next starts 11 Oct 2021 (1 day) and ends in 2022 -> yes.
    ("t9", "T4", "TANF", "2021-03-01", "2021-10-10", C1),
    ("t10", "T4", "TANF", "2021-10-11", "2022-03-01", C1),
    # T5 ended in 2020: not in the 2021 denominator.
    ("t11", "T5", "TANF", "2020-01-01", "2020-12-31", C1),
    ("t12", "T5", "TANF", "2021-01-05", None, C1),
    # T6: latest end t13 (15 Nov 2021, C2) is not the latest start (t14, ends 1 Jun, C1);
    # t15 starts 2022-11-14 = 364 days after 15 Nov 2021 (531 after 1 Jun) -> yes, C2.
    ("t13", "T6", "TANF", "2019-01-01", "2021-11-15", C2),
    ("t14", "T6", "TANF", "2021-05-01", "2021-06-01", C1),
    ("t15", "T6", "TANF", "2022-11-14", None, C1),
]

HOUSING = [
    # H1: latest 12-month response r2 (Sep) in C2 says stable -> numerator, C2.
    ("r1", "H1", "2021-03-01", "FOLLOWUP_12M", False, C1),
    ("r2", "H1", "2021-09-01", "FOLLOWUP_12M", True, C2),
    # H2: two responses the same day: smallest response_id r3 (C2, not stable).
    ("r4", "H2", "2021-05-05", "FOLLOWUP_12M", True, C1),
    ("r3", "H2", "2021-05-05", "FOLLOWUP_12M", False, C2),
    # H3: the later response has no housing answer; latest *such* response r6 -> C1, yes.
    ("r5", "H3", "2021-10-01", "FOLLOWUP_12M", None, C2),
    ("r6", "H3", "2021-04-01", "FOLLOWUP_12M", True, C1),
    ("r7", "H4", "2021-06-01", "FOLLOWUP_6M", True, C1),  # wrong wave
    ("r8", "H5", "2020-12-31", "FOLLOWUP_12M", True, C1),  # 2020
    ("r9", "H6", "2021-02-01", "FOLLOWUP_12M", False, C1),  # C1, not stable
]


# ---------------------------------------------------------------- registry


def test_registry_holds_exactly_the_six_contract_indicators():
    assert {i: (s.kind, s.multiplier, s.by_group) for i, s in REGISTRY.items()} == {
        "cross_sector_reach": ("proportion", 1.0, True),
        "foster_care_entry_rate": ("rate", 1000.0, False),
        "snap_participation_per_1000": ("rate", 1000.0, False),
        "employment_q2_after_exit": ("proportion", 1.0, True),
        "tanf_return_12m": ("proportion", 1.0, True),
        "housing_stability_12m": ("proportion", 1.0, True),
    }
    assert REGISTRY["foster_care_entry_rate"].population_ages == ("0-17",)
    assert set(REGISTRY["snap_participation_per_1000"].population_ages) == set(schema.AGE_GROUPS)
    assert all(s.description for s in REGISTRY.values())


def test_registry_rejects_specs_the_generic_code_cannot_honour():
    snap, reach = REGISTRY["snap_participation_per_1000"], REGISTRY["cross_sector_reach"]
    with pytest.raises(ValueError, match="rate"):
        dataclasses.replace(snap, by_group=True)
    with pytest.raises(ValueError, match="population"):
        dataclasses.replace(reach, population_ages=("0-17",))
    with pytest.raises(ValueError, match="sources"):
        dataclasses.replace(snap, sources=("spells",))  # a rate reads the population
    with pytest.raises(ValueError, match="sources"):
        dataclasses.replace(reach, sources=("spells", "ledger"))


@pytest.fixture
def every_indicator_inputs() -> tuple[Inputs, int]:
    """Inputs in which every indicator of Y has units, and hits that need each source."""
    rows = [
        ("s1", "p1", "SNAP", "2021-01-05", None, C1),
        ("s2", "p2", "TANF", "2020-06-01", "2021-02-01", C2),
        ("s3", "p2", "TANF", "2021-05-01", None, C2),
        ("s4", "p3", "FOSTER_CARE", "2021-04-01", None, C1, "M", 2012),
        ("e1", "p1", "WORKFORCE", "2020-09-01", "2021-03-15", C1),
    ]
    survey = [("r1", "p1", "2021-10-01", "FOLLOWUP_12M", True, C1)]
    inp = Inputs.of(
        spells(rows), wages([("p1", 2021, 3, "emp", 900.0)]), surveys(survey), POPULATION,
        COUNTIES, LOADED,
    )  # fmt: skip
    return inp, Y


def test_each_indicator_reads_only_the_sources_it_declares(every_indicator_inputs):
    """Emptying every input an indicator does not declare leaves its units unchanged, and
    emptying one it declares changes them: the declared sources are the true ones."""
    inp, year = every_indicator_inputs
    fields = [f.name for f in dataclasses.fields(inp) if f.name in INPUT_TABLES]

    def emptied(names):
        return dataclasses.replace(inp, **{n: getattr(inp, n).clear() for n in names})

    for ind in REGISTRY.values():
        units = ind.units(inp, year).collect().sort(pl.all())
        assert units.height > 0, ind.indicator_id
        others = [f for f in fields if f not in ind.sources]
        assert ind.units(emptied(others), year).collect().sort(pl.all()).equals(units)
        for source in ind.sources:
            if source != "population":  # rates read it in their cells, not their units
                changed = ind.units(emptied([source]), year).collect()
                assert not changed.sort(pl.all()).equals(units), (ind.indicator_id, source)


# ---------------------------------------------------------------- each indicator


def test_cross_sector_reach():
    # C1: P4 (yes), P7 (no) -> 1/2. C2: P1 (yes), P2 (no), P8 (no) -> 1/3. C3: 0/0.
    # ALL: 2/5. P1 counts once although two of its spells are active.
    assert by_county(run(REACH), "cross_sector_reach") == {
        C1: (1, 2),
        C2: (1, 3),
        C3: (0, 0),
        "ALL": (2, 5),
    }


def test_foster_care_entry_rate_counts_spells_over_child_population():
    # C1: f1 + f2 = 2 spells / 1000 children; C2: f3 = 1 / 500; C3: 0 / 200.
    # ALL: 3 / 1700 (the 2020 population row of C1 is ignored).
    assert by_county(run(FOSTER), "foster_care_entry_rate") == {
        C1: (2, 1000),
        C2: (1, 500),
        C3: (0, 200),
        "ALL": (3, 1700),
    }


def test_snap_counts_each_person_once_over_all_ages():
    # S1 only in C2 (latest start), S2 in C1; population all ages 4500 / 2250 / 900.
    assert by_county(run(SNAP), "snap_participation_per_1000") == {
        C1: (1, 4500),
        C2: (1, 2250),
        C3: (0, 900),
        "ALL": (2, 7650),
    }


def test_employment_q2_after_exit():
    # C1: E2 (not paid in Q4 2021) -> 0/1.
    # C2: E1 (paid Q1 2022), E3 (paid Q2 2022), E7 (paid Q2 2022) -> 3/3. ALL 3/4.
    assert by_county(run(EMPLOYMENT, EMPLOYMENT_WAGES), "employment_q2_after_exit") == {
        C1: (0, 1),
        C2: (3, 3),
        C3: (0, 0),
        "ALL": (3, 4),
    }


@pytest.mark.parametrize(
    ("exit_date", "paid", "expected"),
    [
        ("2020-08-15", (2021, 1), 1),  # Q3 2020 -> Q1 2021 (contract's example)
        ("2020-12-31", (2021, 2), 1),  # Q4 2020 -> Q2 2021
        ("2020-01-01", (2020, 3), 1),  # Q1 2020 -> Q3 2020
        ("2020-06-30", (2020, 4), 1),  # Q2 2020 -> Q4 2020
        ("2020-08-15", (2020, 4), 0),  # the first quarter after is not the second
        ("2020-08-15", (2021, 2), 0),  # nor is the third
    ],
)
def test_second_calendar_quarter_after_exit(exit_date, paid, expected):
    rows = [("w", "E", "WORKFORCE", "2020-01-01", exit_date, C1)]
    cells = run(rows, [("E", *paid, "emp", 1.0)], year=2020)
    assert by_county(cells, "employment_q2_after_exit")[C1] == (expected, 1)


@pytest.mark.parametrize(
    ("wage_years", "expected"),
    [({2021}, True), ({2021, 2022}, False), ({2022}, True), (set(), True)],
)
def test_employment_provisional_until_wages_of_y_and_next_year_are_loaded(wage_years, expected):
    loaded = LoadedYears(spells=YEARS, services=YEARS, wages=frozenset(wage_years))
    assert provisional(run(EMPLOYMENT, loaded=loaded), "employment_q2_after_exit") == {expected}


def test_tanf_return_12m():
    # C1: T2 (366 days), T3 (0 days / SNAP), T4 (1 day) -> 1/3.
    # C2: T1 (365 days), T6 (364 days) -> 2/2. ALL 3/5.
    assert by_county(run(TANF), "tanf_return_12m") == {
        C1: (1, 3),
        C2: (2, 2),
        C3: (0, 0),
        "ALL": (3, 5),
    }


def test_tanf_provisional_until_next_year_spells_are_loaded():
    early = LoadedYears(spells=frozenset({2020, 2021}), wages=YEARS)
    assert provisional(run(TANF, loaded=early), "tanf_return_12m") == {True}
    assert provisional(run(TANF), "tanf_return_12m") == {False}
    # the other indicators are never provisional
    others = run(TANF, loaded=early).filter(
        ~pl.col("indicator_id").is_in(["tanf_return_12m", "employment_q2_after_exit"])
    )
    assert not others["provisional"].any()


def test_housing_stability_12m():
    # C1: H3 (yes), H6 (no) -> 1/2. C2: H1 (yes), H2 (no) -> 1/2. ALL 2/4.
    assert by_county(run(survey_rows=HOUSING), "housing_stability_12m") == {
        C1: (1, 2),
        C2: (1, 2),
        C3: (0, 0),
        "ALL": (2, 4),
    }


# ---------------------------------------------------------------- shape of the cells


def test_every_indicator_has_every_county_plus_all_and_all_is_the_sum():
    cells = run(REACH + FOSTER + SNAP + EMPLOYMENT + TANF, EMPLOYMENT_WAGES, HOUSING)
    assert dict(cells.schema) == CELL_SCHEMA
    assert cells.height == len(REGISTRY) * 4
    for indicator_id in REGISTRY:
        rows = by_county(cells, indicator_id)
        assert set(rows) == {C1, C2, C3, "ALL"}
        counties = [rows[c] for c in COUNTIES]
        assert rows["ALL"] == tuple(map(sum, zip(*counties, strict=True)))
    # sorted by indicator_id, then county with ALL last
    assert cells["indicator_id"].to_list() == sorted(cells["indicator_id"].to_list())
    assert cells["county_fips"].to_list()[:4] == [C1, C2, C3, "ALL"]
    assert cells["year"].unique().to_list() == [Y]


def test_units_outside_the_reference_counties_are_left_out_everywhere():
    rows = [
        ("x1", "Z1", "SNAP", "2021-01-01", None, "99999"),
        ("x2", "Z2", "SNAP", "2021-01-01", None, C1),
    ]
    assert by_county(run(rows), "snap_participation_per_1000") == {
        C1: (1, 4500),
        C2: (0, 2250),
        C3: (0, 900),
        "ALL": (1, 7650),
    }


def test_rates_without_population_for_the_year_have_zero_denominators():
    cells = run(FOSTER, year=2022)  # f5 enters in 2022 in C2; no 2022 population rows
    assert by_county(cells, "foster_care_entry_rate") == {
        C1: (0, 0),
        C2: (1, 0),
        C3: (0, 0),
        "ALL": (1, 0),
    }
    published = finalize(cells)[0].filter(pl.col("indicator_id") == "foster_care_entry_rate")
    assert published["numerator"].to_list() == [0, 0, 0, 0]  # zero denominator -> 0
    assert published["value"].null_count() == 4


def test_lazy_inputs_and_a_counties_table_give_the_same_cells():
    counties = pl.DataFrame({"county_fips": [C3, C1, C2], "county_name": ["c", "a", "b"]})
    lazy = person_cells(
        Y,
        spells(REACH + TANF).lazy(),
        wages([]).lazy(),
        surveys(HOUSING).lazy(),
        POPULATION.lazy(),
        counties.lazy(),
        LOADED,
    )
    assert lazy.equals(run(REACH + TANF, survey_rows=HOUSING))


# ---------------------------------------------------------------- groups

GROUPED = [
    # E1's exit record has no sex/birth year; its other records (any year, any sector):
    # M 1990, M 1990, F 1991 -> most frequent M and 1990 -> age 31 -> 25-44.
    ("w1", "E1", "WORKFORCE", "2021-01-01", "2021-08-10", C1, None, None),
    ("x1", "E1", "SNAP", "2019-01-01", None, C1, "M", 1990),
    ("x2", "E1", "HOUSING", "2019-01-01", None, C1, "M", 1990),
    ("x3", "E1", "MEDICAID", "2019-01-01", None, C1, "F", 1991),
    # E2: F once and M once -> tie -> smallest F; 2000 vs 1999 -> 1999 -> age 22 -> 18-24.
    ("w2", "E2", "WORKFORCE", "2021-01-01", "2021-05-20", C1, None, None),
    ("x4", "E2", "SNAP", "2019-01-01", None, C1, "M", 2000),
    ("x5", "E2", "MEDICAID", "2019-01-01", None, C1, "F", 1999),
    # E3: the exit record itself says X, 2004 (age 17 -> 0-17) and wins over M, 1980.
    ("w3", "E3", "WORKFORCE", "2021-01-01", "2021-11-30", C2, "X", 2004),
    ("x6", "E3", "SNAP", "2019-01-01", None, C2, "M", 1980),
    ("x7", "E3", "MEDICAID", "2019-01-01", None, C2, "M", 1980),
    # E4: nothing anywhere -> UNKNOWN sex and age band.
    ("w4", "E4", "WORKFORCE", "2021-01-01", "2021-03-01", C2, None, None),
]
GROUPED_WAGES = [
    ("E1", 2022, 1, "e", 100.0),  # Q3 exit -> Q1 2022: paid
    ("E2", 2021, 4, "e", 0.0),  # Q2 exit -> Q4 2021: not paid
    ("E3", 2022, 2, "e", 50.0),  # Q4 exit -> Q2 2022: paid
    ("E4", 2021, 3, "e", 10.0),  # Q1 exit -> Q3 2021: paid
]


def group_table(cells, indicator_id, group_by):
    rows = cells.filter(pl.col("indicator_id") == indicator_id, pl.col("group_by") == group_by)
    return {
        (r["group_value"], r["county_fips"]): (r["numerator"], r["denominator"])
        for r in rows.to_dicts()
    }


def test_groups_use_the_denominator_record_then_the_modal_value_then_unknown():
    cells = run_groups(GROUPED, GROUPED_WAGES)
    assert dict(cells.schema) == GROUP_CELL_SCHEMA
    sex = group_table(cells, "employment_q2_after_exit", "sex")
    nonzero = {k: v for k, v in sex.items() if v != (0, 0)}
    assert nonzero == {
        ("M", C1): (1, 1),
        ("M", "ALL"): (1, 1),  # E1
        ("F", C1): (0, 1),
        ("F", "ALL"): (0, 1),  # E2
        ("X", C2): (1, 1),
        ("X", "ALL"): (1, 1),  # E3
        ("UNKNOWN", C2): (1, 1),
        ("UNKNOWN", "ALL"): (1, 1),  # E4
    }
    # F, M, X, U and UNKNOWN (present in the data) x (3 counties + ALL)
    assert len(sex) == 5 * 4
    ages = group_table(cells, "employment_q2_after_exit", "age_band")
    assert {k: v for k, v in ages.items() if v != (0, 0)} == {
        ("25-44", C1): (1, 1),
        ("25-44", "ALL"): (1, 1),
        ("18-24", C1): (0, 1),
        ("18-24", "ALL"): (0, 1),
        ("0-17", C2): (1, 1),
        ("0-17", "ALL"): (1, 1),
        ("UNKNOWN", C2): (1, 1),
        ("UNKNOWN", "ALL"): (1, 1),
    }
    assert len(ages) == 6 * 4


def test_groups_cover_the_fixed_values_and_only_proportions():
    cells = run_groups(GROUPED, GROUPED_WAGES)
    assert set(cells["indicator_id"]) == {i for i, s in REGISTRY.items() if s.kind == "proportion"}
    # no TANF spell ends in 2021: only the fixed values, all zero, no UNKNOWN
    tanf = cells.filter(pl.col("indicator_id") == "tanf_return_12m")
    assert tanf.height == (4 + 5) * 4
    assert "UNKNOWN" not in tanf["group_value"].to_list()
    assert tanf["denominator"].sum() == 0


def test_group_all_rows_are_the_sum_of_the_counties_within_each_group_value():
    cells = run_groups(REACH + GROUPED, GROUPED_WAGES)
    keys = ["indicator_id", "group_by", "group_value"]
    counties = (
        cells.filter(pl.col("county_fips") != "ALL")
        .group_by(keys)
        .agg(pl.col("numerator", "denominator").sum())
    )
    totals = cells.filter(pl.col("county_fips") == "ALL").select(*keys, "numerator", "denominator")
    assert counties.sort(keys).equals(totals.sort(keys))


def test_age_band_boundaries_by_age_on_31_december():
    births = [2004, 2003, 1997, 1996, 1977, 1976, 1957, 1956, 2022, None]
    # ages in 2021: 17, 18, 24, 25, 44, 45, 64, 65, -1 (born later), unknown
    bands = pl.DataFrame({"birth_year": births}, schema={"birth_year": pl.Int64}).select(
        age_band(2021)
    )
    assert bands.to_series().to_list() == [
        "0-17",
        "18-24",
        "18-24",
        "25-44",
        "25-44",
        "45-64",
        "45-64",
        "65+",
        "0-17",
        "UNKNOWN",
    ]


# ---------------------------------------------------------------- finalize


def cells(indicator_id, rows, groups=None):
    """(county, numerator, denominator) rows of one indicator-year as cells."""
    frame = pl.DataFrame(
        [(indicator_id, Y, c, n, d, False) for c, n, d in rows],
        schema=CELL_SCHEMA,
        orient="row",
    )
    if groups:
        frame = frame.with_columns(group_by=pl.lit(groups[0]), group_value=pl.lit(groups[1]))
    return frame


def suppression(published) -> dict[str, str | None]:
    return dict(zip(published["county_fips"], published["suppression"], strict=True))


PROP = "cross_sector_reach"
RATE = "foster_care_entry_rate"


def county_table(frame, min_cell=11):
    return finalize(frame, min_cell=min_cell)[0]


def test_values_and_intervals_without_suppression():
    frame = pl.concat(
        [
            cells(PROP, [(C1, 8, 10), (C2, 0, 0), ("ALL", 8, 10)]),
            cells(RATE, [(C1, 5, 1000), (C2, 0, 0), ("ALL", 5, 1000)]),
        ]
    )
    out = county_table(frame, min_cell=2).filter(pl.col("county_fips") == C1)
    prop, rate = out.row(0, named=True), out.row(1, named=True)
    assert (prop["indicator_id"], rate["indicator_id"]) == (PROP, RATE)
    # Wilson 8/10: 0.4902 .. 0.9433 (see test_stats); value 8/10
    assert prop["value"] == pytest.approx(0.8)
    assert (prop["ci_low"], prop["ci_high"]) == pytest.approx((0.49016, 0.94332), abs=1e-5)
    # rate 5/1000 x 1000 = 5.0; Garwood for x=5: 1.6235 .. 11.6683, x 1000/1000
    assert rate["value"] == pytest.approx(5.0)
    assert (rate["ci_low"], rate["ci_high"]) == pytest.approx((1.62349, 11.66833), abs=1e-5)


def test_zero_denominator_gives_zero_numerator_and_null_value():
    # C1 has 7 entries but no population: shown 0/0, and ALL counts them out (40)
    out = county_table(cells(RATE, [(C1, 7, 0), (C2, 40, 1000), ("ALL", 47, 1000)]))
    row = out.filter(pl.col("county_fips") == C1).row(0, named=True)
    assert (row["numerator"], row["denominator"]) == (0, 0)
    assert row["value"] is None and row["ci_low"] is None and row["ci_high"] is None
    assert row["suppression"] is None
    assert out.filter(pl.col("county_fips") == "ALL")["numerator"].to_list() == [40]


def test_finalize_schema_order_and_unknown_indicators():
    county, groups = finalize(cells(PROP, [("ALL", 30, 60), (C2, 15, 30), (C1, 15, 30)]))
    assert dict(county.schema) == schema.OUTCOME_INDICATORS.schema
    assert dict(groups.schema) == schema.OUTCOME_INDICATORS_BY_GROUP.schema
    assert county["county_fips"].to_list() == [C1, C2, "ALL"]
    with pytest.raises(ValueError, match="not_an_indicator"):
        finalize(cells("not_an_indicator", [(C1, 1, 2)]))


def test_indicator_panel_keeps_unsuppressed_county_values():
    frame = cells(PROP, [(C1, 3, 4), (C2, 0, 0), (C3, 30, 60), ("ALL", 33, 64)])
    panel = indicator_panel(frame)
    assert dict(panel.schema) == schema.INDICATOR_PANEL.schema
    assert panel["county_fips"].to_list() == [C1, C2, C3]  # ALL is not a unit
    assert panel["numerator"].to_list() == [3, 0, 30]
    assert panel["value"].to_list() == [0.75, None, 0.5]


def test_indicator_tables_of_one_year():
    tables = indicator_tables(
        Y,
        spells(REACH + GROUPED),
        wages(GROUPED_WAGES),
        surveys(HOUSING),
        POPULATION,
        COUNTIES,
        LOADED,
    )
    assert tables.outcome_indicators.height == len(REGISTRY) * 4
    assert tables.indicator_panel.height == len(REGISTRY) * 3
    by_group = tables.outcome_indicators_by_group
    assert set(by_group["group_by"]) == {"sex", "age_band"}
    # every count here is below 11: every nonzero county cell is suppressed
    assert by_group.filter(pl.col("suppression").is_null())["numerator"].max() == 0


def test_each_breakdown_adds_up_to_the_county_cells():
    # every person lands in exactly one sex and one age band, so summing a breakdown
    # over its group values gives back the person_cells of that county
    rows, wage_rows = REACH + EMPLOYMENT + TANF + GROUPED, EMPLOYMENT_WAGES + GROUPED_WAGES
    groups = run_groups(rows, wage_rows, HOUSING)
    totals = groups.group_by("indicator_id", "group_by", "county_fips").agg(
        pl.col("numerator", "denominator").sum()
    )
    county = run(rows, wage_rows, HOUSING)
    joined = totals.join(county, on=["indicator_id", "county_fips"], how="left")
    assert joined.height == 4 * 2 * 4  # 4 proportions x 2 breakdowns x (3 counties + ALL)
    assert (joined["numerator"] == joined["numerator_right"]).all()
    assert (joined["denominator"] == joined["denominator_right"]).all()
    assert joined["denominator"].sum() > 0
