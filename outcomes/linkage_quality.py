"""Linkage quality against a known truth: pairwise precision and recall per source pair.

Used by the tests and the benchmarks on generated data, where every record's true
person is known. Pairs are counted without listing them (per group, n choose 2),
so a million records cost a few group-bys.
"""

from __future__ import annotations

import polars as pl

from outcomes.link import RECORD_COLUMNS, components


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
    df = links.select(*RECORD_COLUMNS, "person_key").join(
        truth.select(*RECORD_COLUMNS, "true_person_id"), on=RECORD_COLUMNS
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


def linkable_truth(identities: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """The truth as the records can show it: each true person split into the groups of
    records that a shared identifier connects (a valid SSN, the same agency or partner id,
    or a birth date, day and month in either order, with a first-name form or a surname
    part). Records of one person that no such chain connects, such as a wage row and a
    nonprofit enrollment with neither SSN nor birth date, stay apart: only names, sex and
    an address say they are one person, and for common names that is not evidence enough.

    `identities`: record columns with the normalised identity (outcomes.link.normalised);
    returns record columns and true_person_id, the group's id, for `pairwise_quality`.
    """
    r = (
        identities.select(
            *RECORD_COLUMNS, "ssn", "id_space", "birth_date", "first_forms", "last_parts"
        )
        .join(truth.select(*RECORD_COLUMNS, "true_person_id"), on=RECORD_COLUMNS)
        .with_row_index("node")
        .with_columns(pl.col("node").cast(pl.Int64))
    )
    dob = pl.col("birth_date")
    dob_any_order = pl.when(dob.dt.day() < dob.dt.month()).then(dob.dt.strftime("%Y-%d-%m"))
    dob_text = dob_any_order.otherwise(dob.dt.strftime("%Y-%m-%d"))
    evidence = pl.concat(
        [
            r.select("node", "true_person_id", k=pl.lit("ssn|") + pl.col("ssn")),
            r.select("node", "true_person_id", k=pl.lit("id|") + pl.col("id_space")),
            r.explode("first_forms").select(
                "node", "true_person_id", k=pl.lit("first|") + dob_text + pl.col("first_forms")
            ),
            r.explode("last_parts").select(
                "node", "true_person_id", k=pl.lit("last|") + dob_text + pl.col("last_parts")
            ),
        ]
    ).drop_nulls("k")
    # a bipartite graph: records and the identifiers they carry, within one true person
    ids = (
        evidence.select("true_person_id", "k")
        .unique()
        .sort("true_person_id", "k")
        .with_row_index("id")
        .with_columns((pl.col("id").cast(pl.Int64) + r.height).alias("id"))
    )
    edges = pl.concat(
        [
            evidence.join(ids, on=["true_person_id", "k"]).select(a="node", b="id"),
            r.select(a="node", b="node"),
        ]
    )
    groups = components(edges).filter(pl.col("node") < r.height)
    group = pl.concat_str("true_person_id", pl.col("label").cast(pl.String), separator="#")
    return r.join(groups, on="node").select(*RECORD_COLUMNS, true_person_id=group)
