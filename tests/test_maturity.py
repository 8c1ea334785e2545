"""Partnership maturity against hand-computed means, indexes and stage boundaries."""

from __future__ import annotations

import polars as pl
import pytest

from outcomes import schema
from outcomes.maturity import MIN_RESPONSES, partnership_maturity, value_curve_stage

ITEMS = list(schema.ACCELERANTS)
SURVEY = {
    "response_id": pl.String,
    "partnership_id": pl.String,
    "respondent_role": pl.String,
    **dict.fromkeys(ITEMS, pl.Int64),
    "year": pl.Int64,
}


def responses(partnership, answers, year=2021):
    """One response per row of `answers` (six accelerant ratings, None = blank)."""
    return pl.DataFrame(
        [
            (f"{partnership}-{i}", partnership, "AGENCY", *row, year)
            for i, row in enumerate(answers)
        ],
        schema=SURVEY,
        orient="row",
    )


def by_item(*columns):
    """Responses given column-wise: columns[j] holds every response's rating of item j."""
    return [tuple(col[i] for col in columns) for i in range(len(columns[0]))]


def means(frame, year):
    """The arithmetic, unsuppressed: these tests have fewer than 5 responses."""
    return partnership_maturity(frame, year, min_responses=1)


def one(frame, partnership="P"):
    return frame.filter(pl.col("partnership_id") == partnership).row(0, named=True)


def test_means_ignore_blanks_and_index_is_unrounded():
    answers = [
        (4, 3, 5, 2, 4, None),
        (2, 3, None, 2, 5, None),
        (3, 3, 4, 2, None, None),
    ]
    # means: 9/3 = 3, 9/3 = 3, 9/2 = 4.5, 6/3 = 2, 9/2 = 4.5, none -> null
    # index over the five means that exist: (3 + 3 + 4.5 + 2 + 4.5) / 5 = 3.4
    #   -> 100 x (3.4 - 1) / 4 = 60 -> integrative (60 is not below 60)
    row = one(means(responses("P", answers), 2021))
    assert row["n_responses"] == 3
    assert [row[i] for i in ITEMS] == [3.0, 3.0, 4.5, 2.0, 4.5, None]
    assert row["maturity_index"] == pytest.approx(60.0)
    assert row["value_curve_stage"] == "integrative"


def test_unrounded_index():
    # items: 1 and 2 -> 1.5 each; mean of six 1.5 -> 100 x 0.5 / 4 = 12.5
    # one item 1,1,2 -> 4/3: means (4/3, 1, 1, 1, 1, 1) -> mean 19/18
    #   -> 100 x (1/18) / 4 = 1.3888...
    row = one(means(responses("P", [(1,) * 6, (1,) * 6, (2, 1, 1, 1, 1, 1)]), 2021))
    assert row["maturity_index"] == pytest.approx(100 / 72, rel=1e-12)
    assert row["value_curve_stage"] == "regulative"


@pytest.mark.parametrize(
    ("columns", "index", "stage"),
    [
        # every item rated 3,3,3,2,2 -> means 2.6 -> 100 x 1.6 / 4 = 40
        ([(3, 3, 3, 2, 2)] * 6, 40.0, "collaborative"),
        # items sum 13 x 5 + 12 = 77 over 30 ratings -> mean 77/30 -> 39.1667
        ([(3, 3, 3, 2, 2)] * 5 + [(3, 3, 2, 2, 2)], 2500 * (77 / 30 - 1) / 100, "regulative"),
        # 4,4,3,3,3 -> 3.4 -> 60
        ([(4, 4, 3, 3, 3)] * 6, 60.0, "integrative"),
        # 4,4,3,3,3 x 5 and 4,3,3,3,3 -> (17 x 5 + 16) / 30 = 101/30 -> 59.1667
        ([(4, 4, 3, 3, 3)] * 5 + [(4, 3, 3, 3, 3)], 25 * (101 / 30 - 1), "collaborative"),
        # 5,4,4,4,4 -> 4.2 -> 80
        ([(5, 4, 4, 4, 4)] * 6, 80.0, "generative"),
        # (21 x 5 + 20) / 30 = 125/30 -> 79.1667
        ([(5, 4, 4, 4, 4)] * 5 + [(4, 4, 4, 4, 4)], 25 * (125 / 30 - 1), "integrative"),
        ([(1,)] * 6, 0.0, "regulative"),
        ([(5,)] * 6, 100.0, "generative"),
    ],
)
def test_stage_boundaries(columns, index, stage):
    row = one(means(responses("P", by_item(*columns)), 2021))
    assert row["maturity_index"] == pytest.approx(index, abs=1e-9)
    assert row["value_curve_stage"] == stage


def test_float_noise_does_not_move_a_boundary():
    # item sums over 5 responses 21, 9, 16, 9, 13, 10 -> means 4.2, 1.8, 3.2, 1.8, 2.6, 2.0
    # -> exactly 2.6 -> index 40, which floating point computes as 39.99999999999999
    columns = [
        (5, 4, 4, 4, 4),
        (1, 2, 2, 2, 2),
        (4, 3, 3, 3, 3),
        (1, 2, 2, 2, 2),
        (3, 3, 3, 2, 2),
        (2, 2, 2, 2, 2),
    ]
    row = one(means(responses("P", by_item(*columns)), 2021))
    assert row["maturity_index"] == pytest.approx(40.0, abs=1e-9)
    assert row["value_curve_stage"] == "collaborative"
    stages = pl.select(value_curve_stage(pl.lit(pl.Series([39.99999999999999, 39.9999]))))
    assert stages.to_series().to_list() == ["collaborative", "regulative"]


def test_no_answers_at_all_gives_null_index_and_stage():
    row = one(means(responses("P", [(None,) * 6, (None,) * 6]), 2021))
    assert row["n_responses"] == 2
    assert row["maturity_index"] is None and row["value_curve_stage"] is None


def test_per_partnership_and_year_with_contract_schema():
    frame = pl.concat(
        [
            responses("B", [(5,) * 6]),
            responses("A", [(1,) * 6, (3,) * 6]),  # means 2 -> 25
            responses("A", [(5,) * 6], year=2020),  # another year: ignored
        ]
    )
    out = means(frame.lazy(), 2021)
    assert dict(out.schema) == schema.PARTNERSHIP_MATURITY.schema
    assert out["partnership_id"].to_list() == ["A", "B"]
    assert out["year"].to_list() == [2021, 2021]
    assert out["n_responses"].to_list() == [2, 1]
    assert out["maturity_index"].to_list() == [25.0, 100.0]
    assert means(frame, 2019).height == 0


def test_fewer_than_five_responses_publish_the_count_only():
    frame = pl.concat(
        [
            responses("FEW", [(5, 4, 3, 2, 1, 5)] * (MIN_RESPONSES - 1)),
            responses("ENOUGH", [(4,) * 6] * MIN_RESPONSES),
        ]
    )
    out = partnership_maturity(frame, 2021)
    few, enough = one(out, "FEW"), one(out, "ENOUGH")
    assert few["n_responses"] == 4 and few["suppression"] == "primary"
    hidden = [*ITEMS, "maturity_index", "value_curve_stage"]
    assert all(few[c] is None for c in hidden), few
    # five responses: everything shown, 4 on every item -> index 75, integrative
    assert enough["suppression"] is None and enough["n_responses"] == 5
    assert enough["maturity_index"] == pytest.approx(75.0)
    assert enough["value_curve_stage"] == "integrative"
