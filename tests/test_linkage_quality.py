"""Quality measures against a known truth, on tables small enough to check by hand."""

import datetime as dt

import polars as pl

from outcomes.link import RECORD_COLUMNS
from outcomes.linkage_quality import linkable_truth, pairwise_quality


def _records(rows: list[tuple]) -> pl.DataFrame:
    cols = ["source", "record_id", "ssn", "id_space", "birth_date", "first", "last",
            "true_person_id"]  # fmt: skip
    df = pl.DataFrame(rows, schema=cols, orient="row")
    return df.with_columns(
        pl.lit("org").alias("org_id"),
        pl.lit(2020).alias("year"),
        pl.col("first").map_elements(lambda f: [f], return_dtype=pl.List(pl.String))
        .alias("first_forms"),
        pl.col("last").map_elements(lambda n: [n], return_dtype=pl.List(pl.String))
        .alias("last_parts"),
    )  # fmt: skip


def test_linkable_truth_joins_records_only_through_a_shared_identifier():
    d = dt.date
    recs = _records([
        ("spells", "1", "123456789", None, d(1980, 1, 5), "JOHN", "DOE", "A"),
        ("wages", "2", "123456789", None, None, "JOHN", "DOE", "A"),  # the same SSN
        ("services", "3", None, None, d(1980, 5, 1), "JOHN", "DOE", "A"),  # day and month swapped
        ("services", "4", None, None, None, "JOHN", "DOE", "A"),  # a name alone
        ("services", "5", None, "np|org|9", None, "ANN", "DOE", "B"),  # the same partner id
        ("services", "6", None, "np|org|9", None, "ANNE", "DOE", "B"),
        ("spells", "7", None, None, d(1990, 2, 3), "ZED", "DOE", "C"),  # same date, other name
        ("spells", "8", None, None, d(1990, 2, 3), "YAN", "ROE", "C"),
    ])  # fmt: skip
    shown = linkable_truth(recs, recs).sort("record_id")
    group = dict(zip(shown["record_id"], shown["true_person_id"], strict=True))
    assert group["1"] == group["2"] == group["3"]
    assert group["4"] != group["1"] and group["4"].startswith("A#")
    assert group["5"] == group["6"]
    assert group["7"] != group["8"]
    # pairwise: A has 6 true pairs, of which 3 are shown (1-2, 1-3, 2-3)
    truth_pairs = pairwise_quality(recs.select(*RECORD_COLUMNS, person_key="true_person_id"), recs)
    shown_pairs = pairwise_quality(recs.select(*RECORD_COLUMNS, person_key="true_person_id"), shown)
    actual = dict(zip(truth_pairs["source_pair"], truth_pairs["actual"], strict=True))
    seen = dict(zip(shown_pairs["source_pair"], shown_pairs["actual"], strict=True))
    assert actual["overall"] == 6 + 1 + 1 and seen["overall"] == 3 + 1
