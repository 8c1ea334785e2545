"""Stage 3, link: decide which records are the same person, and give each a person_key.

First version, deterministic: records are the same person when they share an
agency or partner's own person id, a valid SSN, or an exact normalised name and
birth date. Persons are the connected components of that graph.

A person's key is HMAC-SHA256 of its *anchor*: the identifier with the earliest
first year, then the smallest text. Adding a later year can only add records
(whose identifiers first appear in that year) or join components, so every
earlier record keeps its key unless new evidence joins two persons; then the
earliest anchor survives and the other key is retired in person_key_merges.
"""

from __future__ import annotations

import hashlib
import hmac

import polars as pl

# identity columns read from the staged sources (restricted zone only)
IDENTITY = {
    "source": pl.String(),
    "org_id": pl.String(),
    "year": pl.Int64(),
    "record_id": pl.String(),
    "local_id": pl.String(),
    "first_name": pl.String(),
    "last_name": pl.String(),
    "birth_date": pl.Date(),
    "ssn": pl.String(),
}
# strongest evidence first: what record_links.match_method reports
EVIDENCE = ("ssn", "name_birth_date", "local_id")
MAX_ROUNDS = 100
KEY_HEX_CHARS = 32  # 128 bits of the HMAC: ample against collisions, short to read


def normalise_name(c: pl.Expr) -> pl.Expr:
    """Upper case A-Z only: accents, spaces, hyphens and apostrophes do not split persons."""
    return (
        c.str.normalize("NFKD")
        .str.replace_all(r"\p{M}", "")
        .str.to_uppercase()
        .str.replace_all(r"[^A-Z]", "")
    )


def anchors(records: pl.LazyFrame) -> pl.LazyFrame:
    """One row per (record, identifier) with the kind of evidence it is."""
    rec = records.with_columns(
        pl.concat_str(["source", "org_id", "record_id"], separator="|").alias("rec"),
        normalise_name(pl.col("first_name")).alias("_first"),
        normalise_name(pl.col("last_name")).alias("_last"),
    )
    sector = (
        pl.when(pl.col("source") == "services")
        .then(pl.lit("nonprofit"))
        .otherwise(pl.lit("public"))
    )
    kinds = {
        "local_id": pl.concat_str([sector, pl.col("org_id"), pl.col("local_id")], separator="|"),
        "ssn": pl.concat_str([pl.lit("ssn"), pl.col("ssn")], separator="|"),
        "name_birth_date": pl.when((pl.col("_first") != "") & (pl.col("_last") != "")).then(
            pl.concat_str(
                [
                    pl.lit("nbd"),
                    pl.col("_first"),
                    pl.col("_last"),
                    pl.col("birth_date").cast(pl.String),
                ],
                separator="|",
            )
        ),
    }
    return pl.concat(
        [
            rec.select("rec", "year", expr.alias("anchor"), pl.lit(kind).alias("kind"))
            for kind, expr in kinds.items()
        ]
    ).drop_nulls("anchor")


def components(edges: pl.DataFrame) -> pl.DataFrame:
    """Connected components of the record-anchor graph by min-label propagation.

    `edges` has rec and anchor_rank (an integer order of anchors); returns rec and
    label = the smallest anchor_rank reachable from the record.
    """
    label = edges.group_by("rec").agg(pl.col("anchor_rank").min().alias("label"))
    for _ in range(MAX_ROUNDS):
        by_anchor = edges.join(label, on="rec").group_by("anchor_rank").agg(pl.col("label").min())
        new = edges.join(by_anchor, on="anchor_rank").group_by("rec").agg(pl.col("label").min())
        changed = (
            new.join(label, on="rec", suffix="_old")
            .filter(pl.col("label") != pl.col("label_old"))
            .height
        )
        label = new
        if not changed:
            return label
    raise RuntimeError(f"linkage did not converge in {MAX_ROUNDS} rounds")


def person_keys(anchor_text: pl.Series, secret: str) -> pl.Series:
    """HMAC-SHA256 under the linkage secret: keys cannot be recomputed without it."""
    k = secret.encode("utf-8")
    return pl.Series(
        [
            hmac.new(k, a.encode("utf-8"), hashlib.sha256).hexdigest()[:KEY_HEX_CHARS]
            for a in anchor_text.to_list()
        ],
        dtype=pl.String,
    )


def link(records: pl.LazyFrame, secret: str) -> pl.DataFrame:
    """Person key and match method of every record given (all loaded years up to now)."""
    edges = anchors(records).collect()
    ranks = (
        edges.group_by("anchor", "kind")
        .agg(pl.col("year").min().alias("first_year"), pl.col("rec").n_unique().alias("n"))
        .sort("first_year", "anchor")
        .with_row_index("anchor_rank")
    )
    labelled = components(edges.join(ranks.select("anchor", "anchor_rank"), on="anchor"))
    keyed_labels = labelled.select(pl.col("label").unique()).join(
        ranks.select(pl.col("anchor_rank").alias("label"), "anchor"), on="label"
    )
    keyed_labels = keyed_labels.with_columns(
        person_keys(keyed_labels.get_column("anchor"), secret).alias("person_key")
    )
    method = (
        edges.join(ranks.select("anchor", "n"), on="anchor")
        .filter(pl.col("n") > 1)
        .with_columns(
            pl.col("kind")
            .replace_strict({k: i for i, k in enumerate(EVIDENCE)}, return_dtype=pl.Int8)
            .alias("strength")
        )
        .group_by("rec")
        .agg(pl.col("kind").sort_by("strength").first().alias("match_method"))
    )
    return (
        labelled.join(keyed_labels.select("label", "person_key"), on="label")
        .join(method, on="rec", how="left")
        .select(
            "rec",
            "person_key",
            pl.lit(1.0).alias("match_probability"),
            pl.col("match_method").fill_null("single_record"),
        )
    )


def link_year(
    records: pl.LazyFrame, previous: pl.DataFrame, secret: str, year: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """RECORD_LINKS rows of `year` and the PERSON_KEY_MERGES its evidence causes.

    `records` holds the identities of every loaded year up to `year`; `previous`
    the earlier years' record_links with keys resolved through earlier merges.
    """
    linked = link(records, secret)
    rec = (
        records.filter(pl.col("year") == year)
        .select(
            "source",
            "org_id",
            "year",
            "record_id",
            pl.concat_str(["source", "org_id", "record_id"], separator="|").alias("rec"),
        )
        .collect()
    )
    links = rec.join(linked, on="rec").drop("rec").sort("source", "org_id", "record_id")
    return links, _merges(linked, previous, year)


def resolve(keys: pl.DataFrame, merges: pl.DataFrame, column: str = "person_key") -> pl.DataFrame:
    """Replace retired keys by their surviving keys, following chains of merges."""
    if merges.is_empty():
        return keys
    step = merges.select("retired_key", "surviving_key").unique("retired_key")
    for _ in range(MAX_ROUNDS):
        nxt = step.join(
            step.rename({"retired_key": "surviving_key", "surviving_key": "further"}),
            on="surviving_key",
            how="left",
        )
        if nxt.get_column("further").null_count() == nxt.height:
            break
        step = nxt.select(
            "retired_key", pl.coalesce("further", "surviving_key").alias("surviving_key")
        )
    return (
        keys.join(step, left_on=column, right_on="retired_key", how="left")
        .with_columns(pl.coalesce("surviving_key", column).alias(column))
        .drop("surviving_key")
    )


def _merges(current: pl.DataFrame, previous: pl.DataFrame, year: int) -> pl.DataFrame:
    """Earlier keys that this year's evidence joined to another person."""
    if previous.is_empty():
        return pl.DataFrame(
            schema={"retired_key": pl.String, "surviving_key": pl.String, "year": pl.Int64}
        )
    prev = previous.select(
        pl.concat_str(["source", "org_id", "record_id"], separator="|").alias("rec"),
        pl.col("person_key").alias("old_key"),
    )
    return (
        prev.join(current.select("rec", "person_key"), on="rec")
        .filter(pl.col("old_key") != pl.col("person_key"))
        .select(
            pl.col("old_key").alias("retired_key"),
            pl.col("person_key").alias("surviving_key"),
            pl.lit(year, pl.Int64).alias("year"),
        )
        .unique()
        .sort("retired_key")
    )
