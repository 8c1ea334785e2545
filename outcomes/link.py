"""Stage 3, link: which records are the same person, year by year, with keys that stay put.

The identity registry (restricted zone) holds every identity variant already
seen and the person it belongs to. Year y is linked incrementally:

1. its records are normalised (outcomes.normalise) and collapsed to variants;
   a variant already in the registry keeps its person, so a re-run or a
   re-delivered file leaves unchanged records alone;
2. new variants are scored by the Fellegi-Sunter model (outcomes.linkage_model)
   against the registry (`predict_between`) and among themselves
   (`predict_within`), never against the whole history of records;
3. edges are pairs at or above the match threshold, plus the same agency or
   partner id, plus a reviewer's must-link decisions; a reviewer's must-not-link
   removes an edge; a wage variant whose names disagree with the other side's
   (the name guard) does not link on its SSN alone;
4. persons are the connected components: a component with no known person is a
   new person (key: HMAC-SHA256 of its first variant under the linkage secret);
   with one, it joins it; with several, new evidence joins them: the person
   first seen earliest keeps its key and each other key goes to
   person_key_merges.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from outcomes.linkage_model import (
    MATCH_THRESHOLD,
    REVIEW_BAND,
    UNIQUE_ID,
    VARIANT_COLUMNS,
    Model,
    no_pairs,
    score,
)
from outcomes.normalise import identity_columns
from outcomes.schema import Table, Zone

MAX_ROUNDS = 100
RECORD_COLUMNS = ["source", "org_id", "year", "record_id"]  # what names one record
VARIANT_ROW = "variant_row"  # a record's variant: its row in YearRecords.variants
# what a person's identity is made of: a variant's columns but where it was seen
IDENTITY_FIELDS = [
    c for c in VARIANT_COLUMNS if c not in (UNIQUE_ID, "source", "id_space", "last_parts",
                                            "first_forms")
]  # fmt: skip
KEY_HEX_CHARS = 32  # 128 bits of the HMAC: ample against collisions, short to read
SECTOR_OF = {"spells": "public", "wages": "public", "services": "nonprofit"}
# what record_links.match_method says, strongest first
METHODS = ("reviewer", "local_id", "probabilistic", "ssn", "single_record")
MUST_LINK, MUST_NOT_LINK = "must_link", "must_not_link"

REGISTRY_SCHEMA: dict[str, pl.DataType] = {
    **VARIANT_COLUMNS,
    "person_key": pl.String(),
    "first_year": pl.Int64(),
    "record": pl.String(),  # one record that carries the variant: source/org_id/record_id
    "match_method": pl.String(),
    "match_probability": pl.Float64(),
}
IDENTITY_REGISTRY = Table(
    "identity_registry",
    Zone.RESTRICTED,
    REGISTRY_SCHEMA,
    by_year=False,
    description="Every identity variant seen and its person: what a new year is linked against.",
)
DECISIONS_SCHEMA = {"record_a": pl.String(), "record_b": pl.String(), "decision": pl.String()}
MERGES_SCHEMA = {"retired_key": pl.String(), "surviving_key": pl.String(), "year": pl.Int64()}
SPLITS_SCHEMA = {
    "old_key": pl.String(), "new_key": pl.String(), "year": pl.Int64(), "reason": pl.String(),
}  # fmt: skip


def record_ref(source: str = "source", org: str = "org_id", rid: str = "record_id") -> pl.Expr:
    """How a reviewer names a record: source/org_id/record_id."""
    return pl.concat_str([pl.col(source), pl.col(org), pl.col(rid)], separator="/")


def normalised(records: pl.LazyFrame) -> pl.LazyFrame:
    """Each record with its normalised identity, record reference and variant id
    (restricted zone only)."""
    normal = identity_columns(records).with_columns(
        pl.when(pl.col("local_id").is_not_null())
        .then(
            pl.concat_str(
                [pl.col("source").replace_strict(SECTOR_OF), pl.col("org_id"), pl.col("local_id")],
                separator="|",
            )
        )
        .alias("id_space"),
        record_ref().alias("record"),
    )
    parts = [
        pl.col(c).cast(pl.String).fill_null("")
        for c in VARIANT_COLUMNS
        if c not in (UNIQUE_ID, "last_parts", "first_forms")
    ]
    return normal.with_columns(pl.concat_str(parts, separator="|").alias(UNIQUE_ID))


@dataclass(frozen=True)
class YearRecords:
    """A year's records and the identity variants they carry: each distinct identity is
    held once, however many records show it (a person's wage rows are one variant), so
    a state-sized year fits in memory."""

    records: pl.DataFrame  # RECORD_COLUMNS and VARIANT_ROW, the row of its variant
    variants: pl.DataFrame  # VARIANT_COLUMNS and `record` (the first carrying it), by variant


def variants_of(records: pl.LazyFrame) -> YearRecords:
    """Read and normalise records once; collapse them to their identity variants."""
    full = normalised(records).collect()
    groups = (
        full.select(UNIQUE_ID, "record")
        .with_row_index("i")
        .group_by(UNIQUE_ID)
        .agg(pl.col("record").min(), pl.col("i"))
        .sort(UNIQUE_ID)
        .with_row_index(VARIANT_ROW)
    )
    variants = (
        full.select(c for c in VARIANT_COLUMNS if c != UNIQUE_ID)
        .gather(groups.get_column("i").list.first())
        .with_columns(groups.get_column(UNIQUE_ID), groups.get_column("record"))
        .select(*VARIANT_COLUMNS, "record")
    )
    row_of = groups.select(VARIANT_ROW, "i").explode("i").sort("i").get_column(VARIANT_ROW)
    return YearRecords(full.select(RECORD_COLUMNS).with_columns(row_of), variants)


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


def components(edges: pl.DataFrame) -> pl.DataFrame:
    """Connected components by min-label propagation over undirected edges a-b (integers).

    Returns node and label = the smallest node reachable from it.
    """
    both = pl.concat([edges.select("a", "b"), edges.select(a="b", b="a")]).unique()
    label = both.group_by("a").agg(pl.min("b")).select(
        pl.col("a").alias("node"), pl.min_horizontal("a", "b").alias("label")
    )
    for _ in range(MAX_ROUNDS):
        new = (
            both.join(label, left_on="b", right_on="node")
            .group_by("a")
            .agg(pl.col("label").min())
            .rename({"a": "node"})
            .join(label, on="node", suffix="_old")
            .select("node", pl.min_horizontal("label", "label_old").alias("label"))
        )
        if new.join(label, on="node", suffix="_old").filter(
            pl.col("label") != pl.col("label_old")
        ).is_empty():
            return new
        label = new
    raise RuntimeError(f"linkage did not converge in {MAX_ROUNDS} rounds")


@dataclass
class YearLinks:
    """What linking one year produced."""

    links: pl.DataFrame  # RECORD_LINKS rows of the year
    merges: pl.DataFrame  # person keys joined by this year's evidence
    splits: pl.DataFrame  # records separated from their key by a reviewer's decision
    registry: pl.DataFrame  # the registry after this year
    review: pl.DataFrame  # borderline pairs for clerical review
    pairs: pl.DataFrame  # every scored pair kept (match weights, for quality metadata)
    stats: dict[str, int] = field(default_factory=dict)


def _wage_pair() -> pl.Expr:
    return (pl.col("source_l") == "wages") | (pl.col("source_r") == "wages")


def _guarded() -> pl.Expr:
    """The name guard: a pair with a wage variant whose names disagree with the other side's
    does not link, however strong its SSN agreement."""
    return _wage_pair() & pl.col("names_disagree")


def _weak() -> pl.Expr:
    """Neither birth date nor SSN agrees: names and an address only."""
    return ~((pl.col("mw_birth_date") > 0) | (pl.col("mw_ssn") > 0))


def _mutual_best_weak(accepted: pl.DataFrame, person_of: pl.DataFrame) -> pl.DataFrame:
    """A weak link is kept only where each side is the other's best weak match, so that a
    record with a name and an address alone joins one person, never two household members
    with similar names (a best match shared by two persons is no link).

    `person_of`: variant and person (a known variant's person key; a new variant's identity).
    """
    weak = accepted.filter(_weak())
    if weak.is_empty():
        return accepted
    ends = pl.concat(
        [
            weak.select(v="variant_l", o="variant_r", w="match_weight"),
            weak.select(v="variant_r", o="variant_l", w="match_weight"),
        ]
    ).join(person_of.rename({UNIQUE_ID: "o"}), on="o", how="left")
    top = ends.filter(pl.col("w") == pl.col("w").max().over("v"))
    best = top.filter(pl.col("person").n_unique().over("v") == 1).select("v", "o")
    mutual = weak.join(
        best.select(variant_l="v", variant_r="o"), on=["variant_l", "variant_r"], how="semi"
    ).join(best.select(variant_r="v", variant_l="o"), on=["variant_l", "variant_r"], how="semi")
    return pl.concat([accepted.filter(~_weak()), mutual])


def _without_conflicting_weak(
    accepted: pl.DataFrame, new: pl.DataFrame, known: pl.DataFrame
) -> pl.DataFrame:
    """A weak link never joins two sides whose persons show different birth dates (or
    different SSNs): a name and an address must not bridge two persons that the strong
    identifiers keep apart, across years as within one."""
    weak = accepted.filter(_weak())
    if weak.is_empty():
        return accepted
    # each side's evidence: a known variant speaks for its whole person, a new one for itself
    # (only the persons these links touch are read: the cost stays that of the year)
    ends = pl.concat([weak.select(v="variant_l"), weak.select(v="variant_r")]).get_column("v")
    touched = known.filter(pl.col(UNIQUE_ID).is_in(ends.implode())).get_column("person_key")
    known = known.filter(pl.col("person_key").is_in(touched.unique().implode()))
    public = known.filter(pl.col("source") != "wages")
    person = public.group_by("person_key").agg(
        dobs=pl.col("birth_date").drop_nulls().unique(), ssns=pl.col("ssn").drop_nulls().unique()
    )
    known_ev = known.select(UNIQUE_ID, "person_key").join(person, on="person_key", how="left")
    new_ev = new.select(
        UNIQUE_ID,
        dobs=pl.concat_list(pl.col("birth_date")).list.drop_nulls(),
        ssns=pl.concat_list(pl.col("ssn")).list.drop_nulls(),
    )
    ev = pl.concat([new_ev, known_ev.drop("person_key")], how="vertical_relaxed").unique(UNIQUE_ID)

    def side(s: str) -> pl.DataFrame:
        return ev.rename({UNIQUE_ID: f"variant_{s}", "dobs": f"dobs_{s}", "ssns": f"ssns_{s}"})

    def differ(c: str) -> pl.Expr:
        both = (pl.col(f"{c}_l").list.len() > 0) & (pl.col(f"{c}_r").list.len() > 0)
        common = pl.col(f"{c}_l").list.set_intersection(pl.col(f"{c}_r")).list.len() > 0
        return (both & ~common).fill_null(False)

    checked = weak.join(side("l"), on="variant_l", how="left").join(
        side("r"), on="variant_r", how="left"
    )
    kept = checked.filter(~differ("dobs") & ~differ("ssns")).select(weak.columns)
    return pl.concat([accepted.filter(~_weak()), kept])


def _weight_to_probability(w: pl.Expr) -> pl.Expr:
    return 1.0 / (1.0 + (2.0 ** (-w)))


def link_year(
    recs: YearRecords,
    registry: pl.DataFrame,
    model: Model,
    secret: str,
    year: int,
    decisions: pl.DataFrame | None = None,
) -> YearLinks:
    """Link year `year`'s records against the registry; see the module docstring."""
    var, known = recs.variants, registry
    # sorted by variant id, as `var` is: _persons and score rely on it
    new = var.join(known.select(UNIQUE_ID), on=UNIQUE_ID, how="anti", maintain_order="left")
    stats = {"records": recs.records.height, "variants": var.height, "new_variants": new.height}

    pairs, candidates = score(model, new, known) if new.height else (no_pairs(), 0)
    guard = _guarded()
    # a wage variant the guard stopped links only where names were compared: not through a
    # nameless wage row of the same SSN
    stopped = pl.concat(
        [
            pairs.filter(guard & (pl.col(f"source_{s}") == "wages")).select(v=f"variant_{s}")
            for s in ("l", "r")
        ]
    ).get_column("v").implode()
    via_nameless = ~pl.col("names_compared") & (
        pl.col("variant_l").is_in(stopped) | pl.col("variant_r").is_in(stopped)
    )
    # wage rows join persons on a valid SSN (the name guard aside), and only on it
    wage_ssn = _wage_pair() & pl.col("ssn_exact")
    # twins and household members: first names that differ outright link on the SSN only
    twins = pl.col("first_names_differ") & ~pl.col("ssn_exact")
    # two valid SSNs that differ (not by a transposition) link only where birth dates agree
    ssn_conflict = (pl.col("mw_ssn") < 0) & ~(pl.col("mw_birth_date") > 0)
    probable = (pl.col("match_weight") >= MATCH_THRESHOLD) & ~_wage_pair() & ~twins & ~ssn_conflict
    # who a candidate is: a known variant's person; a new variant's identity (the same
    # identity under two sources is one candidate)
    identity = pl.concat_str(
        [pl.col(c).cast(pl.String).fill_null("") for c in IDENTITY_FIELDS], separator="|"
    )
    scored = pl.concat([pairs.select(v="variant_l"), pairs.select(v="variant_r")]).unique()

    def of_scored(df: pl.DataFrame) -> pl.DataFrame:
        return df.join(scored, left_on=UNIQUE_ID, right_on="v", how="semi")

    person_of = pl.concat(
        [
            of_scored(new).select(UNIQUE_ID, person=identity),
            of_scored(known).select(UNIQUE_ID, person="person_key"),
        ]
    )
    accepted = _without_conflicting_weak(
        _mutual_best_weak(
            pairs.filter((probable | wage_ssn) & ~guard & ~via_nameless), person_of
        ),
        new,
        known,
    )
    stats["scored_pairs"] = pairs.height
    stats["candidate_pairs"] = candidates
    # wage pairs agreeing on the SSN that the name guard kept apart
    stats["guarded_pairs"] = pairs.filter(guard & pl.col("ssn_exact")).height
    review = pairs.filter((pl.col("match_weight") - MATCH_THRESHOLD).abs() <= REVIEW_BAND)

    # edges between variants: model, same local id, reviewer decisions
    model_edges = accepted.select(
        a="variant_l", b="variant_r", w="match_weight",
        method=pl.when(_wage_pair()).then(pl.lit("ssn")).otherwise(pl.lit("probabilistic")),
    )  # fmt: skip
    pool = pl.concat([new.select(UNIQUE_ID, "id_space"), known.select(UNIQUE_ID, "id_space")])
    id_edges = (
        new.select(UNIQUE_ID, "id_space")
        .drop_nulls("id_space")
        .join(pool.drop_nulls("id_space"), on="id_space", suffix="_o")
        .filter(pl.col(UNIQUE_ID) != pl.col(f"{UNIQUE_ID}_o"))
        .select(a=UNIQUE_ID, b=f"{UNIQUE_ID}_o", w=pl.lit(None, pl.Float64),
                method=pl.lit("local_id"))
    )  # fmt: skip
    # each variant's first record: how decisions and the review name variants
    refs = pl.concat(
        [var.lazy().select("record", UNIQUE_ID), known.lazy().select("record", UNIQUE_ID)]
    ).unique("record")
    dec = _decisions(decisions, refs)
    forbid = dec.filter(pl.col("decision") == MUST_NOT_LINK)
    review_edges = dec.filter(pl.col("decision") == MUST_LINK).select(
        "a", "b", w=pl.lit(None, pl.Float64), method=pl.lit("reviewer")
    )
    edges = pl.concat([model_edges, id_edges, review_edges])
    if forbid.height:
        pair_key = pl.concat_str(pl.min_horizontal("a", "b"), pl.max_horizontal("a", "b"))
        banned = forbid.select(pair_key.alias("k"))
        edges = edges.filter(~pair_key.is_in(banned.get_column("k").implode()))
    stats["decisions"] = dec.height

    keyed, merges, splits = _persons(new, known, edges, forbid, secret, year)
    # the registry after this year: new variants, merged keys resolved
    grown = pl.concat([known, keyed.select(list(REGISTRY_SCHEMA))], how="vertical_relaxed")
    registry_out = _resolve_registry(grown, merges, splits)
    variant_key = registry_out.select(
        UNIQUE_ID, "person_key", "match_probability", "match_method"
    )
    per_variant = (
        var.select(UNIQUE_ID)
        .join(variant_key, on=UNIQUE_ID, how="left", maintain_order="left")
        .drop(UNIQUE_ID)
    )
    rows = recs.records.get_column(VARIANT_ROW)
    links = pl.concat(
        [recs.records.drop(VARIANT_ROW), per_variant.select(pl.all().gather(rows))],
        how="horizontal",
    ).sort("source", "org_id", "record_id")
    stats["persons"] = links.get_column("person_key").n_unique()
    stats["merges"] = merges.height
    stats["splits"] = splits.height
    review_out = _review(review, refs)
    return YearLinks(links, merges, splits, registry_out, review_out, pairs, stats)


def _decisions(decisions: pl.DataFrame | None, refs: pl.LazyFrame) -> pl.DataFrame:
    """A reviewer's decisions on records, as decisions on the variants they carry."""
    if decisions is None or decisions.is_empty():
        return pl.DataFrame(schema={"a": pl.String, "b": pl.String, "decision": pl.String})
    named = pl.concat([decisions.get_column("record_a"), decisions.get_column("record_b")])
    refs = refs.filter(pl.col("record").is_in(named.implode())).collect()
    return (
        decisions.join(refs.rename({"record": "record_a", UNIQUE_ID: "a"}), on="record_a")
        .join(refs.rename({"record": "record_b", UNIQUE_ID: "b"}), on="record_b")
        .select("a", "b", "decision")
    )


def _persons(
    new: pl.DataFrame,
    known: pl.DataFrame,
    edges: pl.DataFrame,
    forbid: pl.DataFrame,
    secret: str,
    year: int,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Person keys of the new variants, and the merges and splits the evidence causes.

    The graph works on integers: a new variant is its row in `new` (sorted by variant id,
    so the smallest row of a component is its smallest variant), a known person is
    `new.height` plus its rank among the persons the edges touch.
    """
    n = new.height
    ends = pl.concat([edges.select(v="a"), edges.select(v="b")]).unique()
    touched = known.join(ends, left_on=UNIQUE_ID, right_on="v", how="semi")
    persons = (
        known.join(touched.select("person_key").unique(), on="person_key", how="semi")
        .group_by("person_key")
        .agg(pl.col("first_year").min())
        .sort("person_key")
        .with_row_index("node")
        .with_columns(pl.col("node").cast(pl.Int64) + n)
    )
    node_of = pl.concat(
        [
            new.select(UNIQUE_ID).with_columns(node=pl.int_range(n, dtype=pl.Int64)),
            touched.select(UNIQUE_ID, "person_key")
            .join(persons.select("person_key", "node"), on="person_key")
            .drop("person_key"),
        ]
    )
    e = (
        edges.join(node_of.rename({UNIQUE_ID: "a", "node": "na"}), on="a")
        .join(node_of.rename({UNIQUE_ID: "b", "node": "nb"}), on="b")
        .filter(pl.col("na") != pl.col("nb"))
    )
    loops = pl.DataFrame({"a": pl.int_range(n, dtype=pl.Int64, eager=True)}).with_columns(b="a")
    comp = components(pl.concat([e.select(a="na", b="nb"), loops]))
    # each component's surviving key: the known person first seen earliest, else a new key
    known_in = (
        comp.join(persons, on="node")
        .sort("first_year", "person_key")
        .select("label", known_key="person_key")
    )
    survivor = known_in.group_by("label", maintain_order=True).agg(
        pl.col("known_key").first().alias("survivor")
    )
    anchors = (
        comp.filter(pl.col("node") < n)
        .group_by("label")
        .agg(pl.col("node").min().alias("anchor"))
        .join(survivor, on="label", how="anti")
    )
    anchor_ids = new.get_column(UNIQUE_ID).gather(anchors.get_column("anchor"))
    anchors = anchors.with_columns(person_keys(anchor_ids, secret).alias("nk"))
    key_of_label = pl.concat(
        [survivor.select("label", person_key="survivor"), anchors.select("label", person_key="nk")]
    )
    merges = (
        known_in.join(survivor, on="label")
        .filter(pl.col("known_key") != pl.col("survivor"))
        .select(retired_key="known_key", surviving_key="survivor", year=pl.lit(year, pl.Int64))
        .unique()
        .sort("retired_key")
    )
    # how each new variant was linked: its strongest edge
    strength = {m: i for i, m in enumerate(METHODS)}
    best = (
        pl.concat([e.select(node="na", w="w", method="method"),
                   e.select(node="nb", w="w", method="method")])
        .filter(pl.col("node") < n)
        .with_columns(pl.col("method").replace_strict(strength, return_dtype=pl.Int8).alias("s"))
        .sort("s", pl.col("w").fill_null(float("inf")), descending=[False, True])
        .group_by("node", maintain_order=True)
        .first()
    )  # fmt: skip
    of_new = (
        comp.filter(pl.col("node") < n)
        .join(key_of_label, on="label")
        .join(best, on="node", how="left")
        .sort("node")
    )
    keyed = new.with_columns(
        of_new.get_column("person_key"),
        pl.lit(year, pl.Int64).alias("first_year"),
        of_new.get_column("method").fill_null("single_record").alias("match_method"),
        pl.when(of_new.get_column("method") == "probabilistic")
        .then(_weight_to_probability(of_new.get_column("w")))
        .otherwise(1.0)
        .alias("match_probability"),
    )
    splits = _splits(keyed, known, merges, forbid, secret, year)
    return keyed, merges, splits


def _splits(
    keyed: pl.DataFrame,
    known: pl.DataFrame,
    merges: pl.DataFrame,
    forbid: pl.DataFrame,
    secret: str,
    year: int,
) -> pl.DataFrame:
    """A must-not-link pair that still shares a person: the variant `b` leaves with a new key."""
    if forbid.is_empty():
        return _no_splits()
    current = _resolve_registry(
        pl.concat([known, keyed.select(list(REGISTRY_SCHEMA))], how="vertical_relaxed"),
        merges,
        _no_splits(),
    ).select(UNIQUE_ID, "person_key")
    together = (
        forbid.join(current.rename({UNIQUE_ID: "a", "person_key": "ka"}), on="a")
        .join(current.rename({UNIQUE_ID: "b", "person_key": "kb"}), on="b")
        .filter(pl.col("ka") == pl.col("kb"))
        .unique("b")
        .sort("b")
    )
    return together.select(
        pl.col("b").alias(UNIQUE_ID),
        pl.col("kb").alias("old_key"),
        person_keys(together.select(pl.lit("split|") + pl.col("b")).to_series(), secret).alias(
            "new_key"
        ),
        pl.lit(year, pl.Int64).alias("year"),
        pl.lit("reviewer decision").alias("reason"),
    )


def _no_splits() -> pl.DataFrame:
    return pl.DataFrame(schema={**SPLITS_SCHEMA, UNIQUE_ID: pl.String})


def _resolve_registry(
    registry: pl.DataFrame, merges: pl.DataFrame, splits: pl.DataFrame
) -> pl.DataFrame:
    out = resolve(registry, merges)
    if splits.height:
        out = (
            out.join(splits.select(UNIQUE_ID, "new_key"), on=UNIQUE_ID, how="left")
            .with_columns(
                pl.coalesce("new_key", "person_key").alias("person_key"),
                pl.when(pl.col("new_key").is_not_null())
                .then(pl.lit("reviewer"))
                .otherwise(pl.col("match_method"))
                .alias("match_method"),
            )
            .drop("new_key")
        )
    return out.select(list(REGISTRY_SCHEMA)).sort(UNIQUE_ID)


def _review(review: pl.DataFrame, refs: pl.LazyFrame) -> pl.DataFrame:
    """Borderline pairs by record, as a reviewer sees and decides them."""
    shown = pl.concat([review.get_column("variant_l"), review.get_column("variant_r")])
    by_variant = (
        refs.filter(pl.col(UNIQUE_ID).is_in(shown.implode()))
        .group_by(UNIQUE_ID)
        .agg(pl.col("record").min())
        .collect()
    )
    gammas = [c for c in review.columns if c.startswith("mw_")]
    return (
        review.join(by_variant.rename({UNIQUE_ID: "variant_l", "record": "record_a"}),
                    on="variant_l")
        .join(by_variant.rename({UNIQUE_ID: "variant_r", "record": "record_b"}), on="variant_r")
        .select("record_a", "record_b", "match_weight", *gammas,
                pl.lit(None, pl.String).alias("decision"))
        .sort("record_a", "record_b")
    )  # fmt: skip


def kept_review(before: pl.DataFrame, found: pl.DataFrame, links: pl.DataFrame) -> pl.DataFrame:
    """A year's review queue on a re-run: the pairs found now, and those found before that
    still name one of the year's records. A re-run scores no variant already known, so
    it finds no pair again; without this it would empty the queue a reviewer works on."""
    mine = links.select(record_ref()).to_series().implode()
    still = before.filter(pl.col("record_a").is_in(mine) | pl.col("record_b").is_in(mine))
    return (
        pl.concat([still, found], how="vertical_relaxed")
        .unique(["record_a", "record_b"], keep="last", maintain_order=True)
        .sort("record_a", "record_b")
    )


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


def redelivery_splits(
    before: pl.DataFrame, after: pl.DataFrame, merges: pl.DataFrame, year: int
) -> pl.DataFrame:
    """Records of a re-linked year whose person changed other than by a merge."""
    on = ["source", "org_id", "record_id"]
    old = resolve(before.select(*on, "person_key"), merges).rename({"person_key": "old_key"})
    new = resolve(after.select(*on, "person_key"), merges)
    return (
        old.join(new, on=on)
        .filter(pl.col("old_key") != pl.col("person_key"))
        .select("old_key", new_key="person_key", year=pl.lit(year, pl.Int64),
                reason=pl.lit("re-delivered file"))
        .unique()
        .sort("old_key", "new_key")
    )  # fmt: skip


def empty_registry() -> pl.DataFrame:
    return pl.DataFrame(schema=REGISTRY_SCHEMA)


@dataclass
class Relinked:
    """History linked again with another model, old keys carried over where they fit."""

    links: pl.DataFrame  # every year's records with their keys (RECORD_LINKS rows)
    registry: pl.DataFrame
    merges: pl.DataFrame  # old keys whose persons the new model joins
    splits: pl.DataFrame  # records that leave their old key
    changed_records: int


def relink(
    years: list[int],
    records_of: Callable[[int], YearRecords],
    old_links: pl.DataFrame,
    model: Model,
    secret: str,
    reason: str,
    decisions: pl.DataFrame | None = None,
) -> Relinked:
    """Link every year again, from an empty registry, and keep each person's old key where
    the new model keeps the person: a new person takes the old key that most of its records
    had (each old key goes to the person holding most of its records, on a tie the one with
    the earliest record); other old keys it absorbs are merges, and records that leave
    their old key are splits.

    `records_of(year)`: that year's records and variants (`variants_of`; read one year at a
    time); `old_links`: the records' current keys, resolved through every merge.
    """
    registry, links, merges = empty_registry(), [], []
    for year in sorted(years):
        r = link_year(records_of(year), registry, model, secret, year, decisions)
        registry, links, merges = r.registry, [*links, r.links], [*merges, r.merges]
    last, on, fresh_merges = max(years), RECORD_COLUMNS, pl.concat(merges)
    fresh = resolve(pl.concat(links), fresh_merges)
    both = fresh.rename({"person_key": "new"}).join(
        old_links.select(*on, old="person_key"), on=on, how="left"
    )
    # ties go to the person holding the earliest record (year, source, org, record id)
    first = pl.concat_str(pl.col("year").cast(pl.String), record_ref(), separator="/")
    counts = both.drop_nulls("old").group_by("new", "old").agg(n=pl.len(), first=first.min())
    owner = counts.sort(["n", "first"], descending=[True, False]).unique(
        "old", keep="first", maintain_order=True
    )
    chosen = owner.sort(["n", "old"], descending=[True, False]).unique(
        "new", keep="first", maintain_order=True
    )
    final = (
        both.select("new").unique()
        .join(chosen.select("new", kept="old"), on="new", how="left")
        .select("new", final=pl.coalesce("kept", "new"))
    )  # fmt: skip
    new_merges = (
        owner.join(chosen.select("new", surviving_key="old"), on="new")
        .filter(pl.col("old") != pl.col("surviving_key"))
        .select(retired_key="old", surviving_key="surviving_key", year=pl.lit(last, pl.Int64))
        .sort("retired_key")
    )
    placed = both.join(final, on="new")
    old_now = resolve(placed.select(*on, person_key="old").drop_nulls("person_key"), new_merges)
    moved = placed.join(old_now.rename({"person_key": "old_now"}), on=on).filter(
        pl.col("old_now") != pl.col("final")
    )
    new_splits = (
        moved.select(old_key="old_now", new_key="final", year=pl.lit(last, pl.Int64),
                     reason=pl.lit(reason))
        .unique()
        .sort("old_key", "new_key")
    )  # fmt: skip

    def rekeyed(df: pl.DataFrame) -> pl.DataFrame:
        """Fresh keys (resolved) replaced by the keys carried over."""
        return (
            resolve(df, fresh_merges)
            .join(final, left_on="person_key", right_on="new")
            .with_columns(pl.col("final").alias("person_key"))
            .select(df.columns)
        )

    return Relinked(
        rekeyed(pl.concat(links)).sort("source", "org_id", "record_id"),
        rekeyed(registry).select(list(REGISTRY_SCHEMA)).sort(UNIQUE_ID),
        new_merges,
        new_splits,
        moved.height,
    )
