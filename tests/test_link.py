"""Linkage: normalisation, the Fellegi-Sunter scoring, incremental keys, review decisions.

The link logic is tested with the model's starting values (hand-set m and u) so that a
test says what the rules do, not what EM happened to learn; the trained model is
tested on generated data with known truth in test_linkage_quality.py.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from outcomes import linkage_model as lm
from outcomes.link import (
    MUST_LINK,
    MUST_NOT_LINK,
    YearRecords,
    empty_registry,
    link_year,
    redelivery_splits,
    resolve,
    variants_of,
)
from outcomes.normalise import identity_columns

D = date
KEY = "k" * 40
IDENTITY = {
    "source": pl.String, "org_id": pl.String, "year": pl.Int64, "record_id": pl.String,
    "local_id": pl.String, "first_name": pl.String, "last_name": pl.String,
    "birth_date": pl.Date, "ssn": pl.String, "sex": pl.String, "zip": pl.String,
    "county_fips": pl.String,
}  # fmt: skip


def fixed_model() -> lm.Model:
    """The model's starting values as they are: what the rules do, not what EM learnt."""
    tfs = {c: pl.DataFrame(schema={c: pl.String, f"tf_{c}": pl.Float64}) for c in lm.TF_COLUMNS}
    return lm.Model(lm.settings(), tfs, 0)


MODEL = fixed_model()


def records(rows: list[tuple]) -> pl.LazyFrame:
    return pl.DataFrame(rows, schema=IDENTITY, orient="row").lazy()


def rec(source, org, year, rid, local, first, last, birth, ssn=None, sex="F", zip_="53001",
        county="99001"):  # fmt: skip
    return (source, org, year, rid, local, first, last, birth, ssn, sex, zip_, county)


def keys(links: pl.DataFrame) -> dict[str, str]:
    return dict(zip(links["record_id"], links["person_key"], strict=True))


def link(rows, registry=None, year=2020, decisions=None, secret=KEY):
    known = empty_registry() if registry is None else registry
    return link_year(variants_of(records(rows)), known, MODEL, secret, year, decisions)


# ---------------------------------------------------------------- normalisation


def test_names_dates_codes_and_ssns_normalise_in_one_place():
    raw = pl.DataFrame(
        {
            "first_name": ["  josé ", "Bob", "Mary-Jane", None],
            "last_name": ["O'Brien", "De La Cruz-López", "van dyke", ""],
            "birth_date": [D(1980, 1, 2), None, D(1990, 3, 4), None],
            "sex": ["f", "U", "X", "M"],
            "zip": ["53001", "5300", "53001-1234", None],
            "ssn": ["219-09-9999", "123456789", "111111111", "000123456"],
            "county_fips": ["99001", "99001 ", "99002", "99003"],
        }
    )
    out = identity_columns(raw.lazy()).collect()
    assert out["first_name"].to_list() == ["JOSE", "BOB", "MARYJANE", None]
    assert out["last_name"].to_list() == ["OBRIEN", "DELACRUZLOPEZ", "VANDYKE", None]
    assert out["last_parts"].to_list()[1] == ["CRUZ", "LOPEZ"]
    assert out["last_parts"].to_list()[2] == ["DYKE"]
    assert "ROBERT" in out["first_forms"].to_list()[1]  # the shipped nickname table
    assert out["sex"].to_list() == ["F", None, "X", "M"]
    assert out["zip"].to_list() == ["53001", None, None, None]
    # the contract's SSN rule: placeholders and never-issued numbers are never a key
    assert out["ssn"].to_list() == ["219099999", None, None, None]
    assert out["county_fips"].to_list()[1] == "99001"


# ---------------------------------------------------------------- who is the same person


def test_same_person_despite_nicknames_typos_swaps_and_one_agency_id():
    rows = [
        rec("spells", "dhs", 2020, "s1", "P1", "Robert", "Lee", D(1980, 1, 2), "219099999", "M"),
        rec("services", "np", 2020, "v1", "C1", "bob", "LEE", D(1980, 1, 2), None, "M"),
        rec("services", "np", 2020, "v2", "C2", "Robert", "Lee", D(1980, 2, 1), None, "M"),
        rec("spells", "dhs", 2020, "s2", "P1", "Robrt", "Le", None, None, "M"),  # same id
        rec("wages", "dwd", 2020, "w1", None, None, None, None, "219099999", None, None, None),
        rec("services", "np", 2020, "v3", "C3", "Lee", "Robert", D(1980, 1, 2), None, "M"),
    ]
    k = keys(link(rows).links)
    assert len({k[r] for r in ("s1", "v1", "v2", "s2", "w1", "v3")}) == 1


def test_twins_household_members_and_placeholder_ssns_stay_apart():
    rows = [
        rec("spells", "dhs", 2020, "t1", "P1", "Anna", "Berg", D(2010, 5, 5), "219099991"),
        # twins' SSNs are often consecutive: one digit apart, not a transposition
        rec("spells", "dhs", 2020, "t2", "P2", "Emma", "Berg", D(2010, 5, 5), "219099992"),
        rec("spells", "dhs", 2020, "h1", "P3", "Karl", "Berg", D(1975, 2, 3), "219099993", "M"),
        rec("services", "np", 2020, "p1", "C1", "Ida", "Moss", D(1990, 1, 1), "123456789"),
        rec("services", "np", 2020, "p2", "C2", "Eva", "Lund", D(1991, 7, 9), "123456789"),
    ]
    k = keys(link(rows).links)
    assert len(set(k.values())) == 5


def test_wage_rows_join_on_ssn_unless_their_names_disagree():
    rows = [
        rec("spells", "dhs", 2020, "s1", "P1", "Maria", "Lopez", D(1980, 1, 2), "219099999"),
        rec("wages", "dwd", 2020, "w1", None, "Maria", "Lopes", None, "219099999", None, None,
            None),
        rec("wages", "dwd", 2020, "w2", None, None, None, None, "219099999", None, None, None),
        rec("wages", "dwd", 2020, "w3", None, "Tom", "Hughes", None, "219099999", None, None,
            None),
    ]  # fmt: skip
    result = link(rows)
    k = keys(result.links)
    assert k["w1"] == k["w2"] == k["s1"]
    assert k["w3"] != k["s1"]
    assert result.stats["guarded_pairs"] >= 1


# ---------------------------------------------------------------- keys that stay put


def test_adding_a_year_keeps_earlier_keys_and_records_merges():
    y19_rows = [
        rec("spells", "dhs", 2019, "a", "P1", "Ann", "Lee", D(1980, 1, 2)),
        rec("spells", "dhs", 2019, "b", "P2", "Ann", "Lee", D(1950, 6, 7), "219099999"),
    ]
    y19 = link(y19_rows, year=2019)
    assert y19.links["person_key"].n_unique() == 2
    # 2020: a record with P1's id and P2's SSN joins the two persons
    joiner = rec("spells", "dhs", 2020, "c", "P1", "Ann", "Lee", None, "219099999")
    y20 = link([joiner], y19.registry)
    assert y20.merges.height == 1 and y20.merges["year"][0] == 2020
    survivor = y20.merges["surviving_key"][0]
    assert survivor in y19.links["person_key"].to_list()
    assert keys(y20.links)["c"] == survivor
    assert resolve(y19.links, y20.merges)["person_key"].n_unique() == 1
    # re-linking 2019 gives 2019 exactly the keys it had, and no new merge
    again = link(y19_rows, y20.registry, year=2019)
    assert (
        resolve(again.links, y20.merges)["person_key"].to_list()
        == resolve(y19.links, y20.merges)["person_key"].to_list()
    )
    assert again.merges.is_empty()


def test_same_input_same_keys_and_keys_depend_on_the_secret():
    rows = [rec("spells", "dhs", 2020, "a", "P1", "Ann", "Lee", D(1980, 1, 2))]
    assert keys(link(rows).links) == keys(link(rows).links)
    assert keys(link(rows, secret="x" * 40).links)["a"] != keys(link(rows).links)["a"]


def test_redelivered_file_relinks_changed_records_only():
    base = [
        rec("spells", "dhs", 2019, "a", "P1", "Ann", "Lee", D(1980, 1, 2)),
        rec("spells", "dhs", 2019, "b", "P2", "Bo", "Ek", D(1960, 3, 3), "219099999", "M"),
    ]
    first = link(base, year=2019)
    # the re-delivered file corrects b: a different person altogether, new agency id
    fixed = [base[0], rec("spells", "dhs", 2019, "b", "P7", "Cleo", "Ward", D(2001, 9, 9))]
    again = link(fixed, first.registry, year=2019)
    assert keys(again.links)["a"] == keys(first.links)["a"]
    splits = redelivery_splits(first.links, again.links, again.merges, 2019)
    assert splits.select("old_key", "new_key").rows() == [
        (keys(first.links)["b"], keys(again.links)["b"])
    ]
    assert splits["reason"].to_list() == ["re-delivered file"]


def test_reviewer_decisions_are_honoured_and_recorded():
    rows = [
        rec("spells", "dhs", 2020, "a", "P1", "Ann", "Lee", D(1980, 1, 2)),
        rec("services", "np", 2020, "b", "C1", "Ann", "Lee", D(1980, 1, 2)),
        rec("services", "np", 2020, "c", "C2", "Zoe", "Kim", D(1999, 9, 9)),
    ]
    assert keys(link(rows).links)["a"] == keys(link(rows).links)["b"]
    decisions = pl.DataFrame(
        {
            "record_a": ["spells/dhs/a", "spells/dhs/a"],
            "record_b": ["services/np/b", "services/np/c"],
            "decision": [MUST_NOT_LINK, MUST_LINK],
        }
    )
    out = link(rows, decisions=decisions)
    k = keys(out.links)
    assert k["a"] != k["b"] and k["a"] == k["c"]
    assert out.stats["decisions"] == 2


def test_a_reviewer_separating_known_records_is_a_recorded_split():
    rows = [
        rec("spells", "dhs", 2019, "a", "P1", "Ann", "Lee", D(1980, 1, 2)),
        rec("services", "np", 2019, "b", "C1", "Ann", "Lee", D(1980, 1, 2)),
    ]
    y19 = link(rows, year=2019)
    old = keys(y19.links)
    assert old["a"] == old["b"]
    decisions = pl.DataFrame(
        {"record_a": ["spells/dhs/a"], "record_b": ["services/np/b"], "decision": [MUST_NOT_LINK]}
    )
    y20 = link([rec("spells", "dhs", 2020, "c", "P1", "Ann", "Lee", D(1980, 1, 2))],
               y19.registry, decisions=decisions)  # fmt: skip
    assert y20.splits.select("old_key", "year", "reason").rows() == [
        (old["a"], 2020, "reviewer decision")
    ]
    registry = dict(zip(y20.registry["record"], y20.registry["person_key"], strict=True))
    assert registry["services/np/b"] == y20.splits["new_key"][0] != registry["spells/dhs/a"]
    assert keys(y20.links)["c"] == old["a"]


def test_resolve_follows_chains_of_merges():
    merges = pl.DataFrame(
        {"retired_key": ["a", "b"], "surviving_key": ["b", "c"], "year": [2020, 2021]}
    )
    out = resolve(pl.DataFrame({"person_key": ["a", "b", "c", "d"]}), merges)
    assert out["person_key"].to_list() == ["c", "c", "c", "d"]


def _strict_model() -> lm.Model:
    """A model under which no pair is probable: only ids and SSNs join records."""
    settings = {**lm.settings(), "probability_two_random_records_match": 1e-30}
    return lm.Model(settings, MODEL.term_frequencies, 0)


def _relink(by_year: dict[int, YearRecords], old: pl.DataFrame, model: lm.Model, reason: str):
    from outcomes.link import relink

    return relink(list(by_year), by_year.__getitem__, old, model, KEY, reason)


def _history(model: lm.Model) -> tuple[dict[int, YearRecords], pl.DataFrame]:
    by_year = {
        2020: variants_of(records([
            rec("spells", "dhs", 2020, "s1", "p1", "Robert", "Smith", D(1970, 3, 4), "123456789"),
            rec("services", "np", 2020, "e1", "c1", "Bob", "Smith", D(1970, 3, 4)),
        ])),
        2021: variants_of(records([
            rec("spells", "dhs", 2021, "s2", "p2", "Mary", "Jones", D(1985, 6, 7), "234567890"),
        ])),
    }  # fmt: skip
    registry, links = empty_registry(), []
    for year, recs in by_year.items():
        r = link_year(recs, registry, model, KEY, year)
        registry, links = r.registry, [*links, r.links]
    return by_year, pl.concat(links)


def test_relinking_with_the_same_model_changes_no_key():
    by_year, old = _history(MODEL)
    again = _relink(by_year, old, MODEL, "re-linked")
    assert keys(again.links) == keys(old)
    assert again.merges.is_empty() and again.splits.is_empty() and again.changed_records == 0
    assert set(again.registry["person_key"]) == set(old["person_key"])


def test_relinking_records_every_key_change_as_a_merge_or_split():
    by_year, old = _history(MODEL)
    assert keys(old)["s1"] == keys(old)["e1"]  # the nickname links them
    stricter = _relink(by_year, old, _strict_model(), "re-linked with model v2")
    new = keys(stricter.links)
    assert new["s2"] == keys(old)["s2"] and new["e1"] != new["s1"]
    # one record to a side: the earliest (services/np/e1 before spells/dhs/s1) keeps the key,
    # the other leaves it, and says so
    assert new["e1"] == keys(old)["e1"]
    assert stricter.splits.select("old_key", "new_key", "reason").rows() == [
        (keys(old)["s1"], new["s1"], "re-linked with model v2")
    ]
    assert stricter.merges.is_empty() and stricter.changed_records == 1
    # and back: the looser model joins them again, the key more records had surviving
    looser = _relink(by_year, stricter.links, MODEL, "re-linked with model v3")
    back = keys(looser.links)
    assert back["s1"] == back["e1"] and back["s2"] == new["s2"]
    assert looser.merges.height == 1 and looser.splits.is_empty()
    m = looser.merges.row(0, named=True)
    assert {m["retired_key"], m["surviving_key"]} == {new["s1"], new["e1"]}
    assert back["s1"] == m["surviving_key"]
    assert set(looser.registry["person_key"]) == set(back.values())


def test_a_rerun_keeps_the_review_queue_of_records_still_delivered() -> None:
    from outcomes.link import kept_review

    def review(pairs: list[tuple[str, str, float]]) -> pl.DataFrame:
        a, b, w = zip(*pairs, strict=True) if pairs else ([], [], [])
        return pl.DataFrame({"record_a": list(a), "record_b": list(b), "match_weight": list(w)})

    links = pl.DataFrame({"source": ["spells", "services"], "org_id": ["A", "P"],
                          "record_id": ["1", "9"]})  # fmt: skip
    before = review([("spells/A/1", "wages/W/5", 3.0),  # still delivered: kept
                     ("spells/A/2", "wages/W/6", 4.0),  # record 2 was re-delivered away
                     ("services/P/9", "spells/A/1", 2.0)])  # found again now: the new row wins
    found = review([("services/P/9", "spells/A/1", 2.5)])
    kept = kept_review(before, found, links)
    assert kept.rows() == [("services/P/9", "spells/A/1", 2.5), ("spells/A/1", "wages/W/5", 3.0)]
    assert kept_review(before.clear(), found, links).rows() == found.rows()
