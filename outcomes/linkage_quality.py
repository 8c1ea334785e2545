"""Linkage quality against a known truth: pairwise precision and recall per source pair.

Used by the tests and the benchmarks on generated data, where every record's true
person is known. Pairs are counted without listing them (per group, n choose 2),
so a million records cost a few group-bys.
"""

from __future__ import annotations

import polars as pl

RECORD = ["source", "org_id", "year", "record_id"]


def _pairs(df: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Record pairs sharing `by`, per unordered source pair."""
    counts = df.group_by(*by, "source").len("n")
    same = counts.select(
        *by, pl.concat_str("source", "source", separator="-").alias("source_pair"),
        (pl.col("n") * (pl.col("n") - 1) // 2).alias("pairs"),
    )  # fmt: skip
    cross = (
        counts.join(counts, on=by, suffix="_r")
        .filter(pl.col("source") < pl.col("source_r"))
        .select(
            *by, pl.concat_str("source", "source_r", separator="-").alias("source_pair"),
            (pl.col("n") * pl.col("n_r")).alias("pairs"),
        )
    )  # fmt: skip
    return pl.concat([same, cross]).group_by("source_pair").agg(pl.col("pairs").sum())


def pairwise_quality(links: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """Precision and recall per source pair and overall.

    `links`: record columns and person_key; `truth`: record columns and true_person_id.
    """
    df = links.select(*RECORD, "person_key").join(
        truth.select(*RECORD, "true_person_id"), on=RECORD
    )
    tp = _pairs(df, ["person_key", "true_person_id"]).rename({"pairs": "true_positive"})
    predicted = _pairs(df, ["person_key"]).rename({"pairs": "predicted"})
    actual = _pairs(df, ["true_person_id"]).rename({"pairs": "actual"})
    out = (
        actual.join(predicted, on="source_pair", how="full", coalesce=True)
        .join(tp, on="source_pair", how="full", coalesce=True)
        .fill_null(0)
    )
    total = out.select(pl.lit("overall").alias("source_pair"), pl.exclude("source_pair").sum())
    return pl.concat([out.sort("source_pair"), total]).with_columns(
        (pl.col("true_positive") / pl.col("predicted")).alias("precision"),
        (pl.col("true_positive") / pl.col("actual")).alias("recall"),
    )
