"""Deterministic linkage: who is the same person, and keys that stay put across years."""

from __future__ import annotations

from datetime import date

import polars as pl

from outcomes.link import IDENTITY, link_year, resolve

D = date


def records(rows: list[tuple]) -> pl.LazyFrame:
    return pl.DataFrame(rows, schema=IDENTITY, orient="row").lazy()


ROWS = [
    # source, org, year, record, local id, first, last, birth, ssn
    ("spells", "dhs", 2019, "s1", "P1", "Ann", "Lee", D(1980, 1, 2), None),
    ("spells", "dhs", 2019, "s2", "P2", "Bob", "Ray", D(1970, 1, 2), "219099999"),
    ("spells", "dhs", 2019, "s3", "P3", "Cy", "Orr", D(1990, 5, 5), None),
    ("services", "np", 2020, "v1", "C1", "ann", "LEE", D(1980, 1, 2), None),
    ("wages", "dwd", 2020, "w1", None, None, None, None, "219099999"),
    ("spells", "dhs", 2020, "s4", "P3", "Cy", "Orr", D(1990, 5, 6), None),  # a typo
    ("spells", "dhs", 2020, "s5", "P9", "Ann", "Lee", D(1980, 1, 2), "219111111"),
]


def keys(links: pl.DataFrame) -> dict[str, str]:
    return dict(zip(links["record_id"], links["person_key"], strict=True))


def test_same_person_by_ssn_name_and_birth_date_or_local_id():
    y19, _ = link_year(records(ROWS).filter(pl.col("year") == 2019), pl.DataFrame(), "k", 2019)
    y20, merges = link_year(records(ROWS), y19, "k", 2020)
    k = keys(y19) | keys(y20)
    assert k["v1"] == k["s1"] == k["s5"]  # accents/case ignored; name + birth date
    assert k["w1"] == k["s2"]  # SSN
    assert k["s4"] == k["s3"]  # the agency's own person id
    assert len({k["s1"], k["s2"], k["s3"]}) == 3
    methods = dict(zip(y20["record_id"], y20["match_method"], strict=True))
    assert methods == {"v1": "name_birth_date", "w1": "ssn", "s4": "local_id",
                       "s5": "name_birth_date"}  # fmt: skip
    assert merges.is_empty()


def test_adding_a_year_keeps_earlier_keys_and_records_merges():
    base = [
        ("spells", "dhs", 2019, "a", "P1", "Ann", "Lee", D(1980, 1, 2), None),
        ("spells", "dhs", 2019, "b", "P2", "Ann", "Lee", D(1980, 2, 1), "219099999"),
    ]
    y19, _ = link_year(records(base), pl.DataFrame(), "k", 2019)
    assert y19["person_key"].n_unique() == 2
    # 2020: a record with P1's id and P2's SSN joins the two persons
    joiner = ("spells", "dhs", 2020, "c", "P1", "Ann", "Lee", None, "219099999")
    y20, merges = link_year(records([*base, joiner]), y19, "k", 2020)
    assert merges.height == 1 and merges["year"][0] == 2020
    survivor = merges["surviving_key"][0]
    assert survivor in y19["person_key"].to_list()
    assert keys(y20)["c"] == survivor
    resolved = resolve(y19, merges)
    assert resolved["person_key"].n_unique() == 1
    # re-linking 2019 alone still gives 2019 exactly the keys it had
    again, _ = link_year(records(base), pl.DataFrame(), "k", 2019)
    assert keys(again) == keys(y19)


def test_keys_depend_on_the_secret():
    a, _ = link_year(records(ROWS), pl.DataFrame(), "one", 2020)
    b, _ = link_year(records(ROWS), pl.DataFrame(), "two", 2020)
    assert set(a["person_key"]).isdisjoint(set(b["person_key"]))


def test_resolve_follows_chains_of_merges():
    merges = pl.DataFrame(
        {"retired_key": ["a", "b"], "surviving_key": ["b", "c"], "year": [2020, 2021]}
    )
    out = resolve(pl.DataFrame({"person_key": ["a", "b", "c", "d"]}), merges)
    assert out["person_key"].to_list() == ["c", "c", "c", "d"]
