"""Record linkage: which records are the same person (restricted zone only).

Each year links only its own records, against the identity registry of the
persons already known, with the linkage model file the warehouse keeps: the
first year linked trains one (and says so); later years and re-runs score with
it; `outcomes linkage train` makes a new version on purpose.
"""


from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl

from assets.common import inputs, output, partition_year, step_release, table_spec
from assets.partitions import earlier_years, yearly
from assets.resources import OutcomesConfig
from outcomes import linkage_model as lm
from outcomes.charts import bar_chart_markdown, markdown_table
from outcomes.integrate import identities
from outcomes.link import (
    DECISIONS_SCHEMA,
    IDENTITY_REGISTRY,
    Relinked,
    YearLinks,
    YearRecords,
    kept_review,
    link_year,
    redelivery_splits,
    relink,
    resolve,
    variants_of,
)
from outcomes.release import Release
from outcomes.schema import (
    LINKAGE_REVIEW,
    PERSON_KEY_MERGES,
    PERSON_KEY_SPLITS,
    RECORD_LINKS,
    SOURCES,
    staged_table,
)
from outcomes.secret import check_key_fingerprint
from outcomes.warehouse import Warehouse

LINKED_SOURCES = ("spells", "wages", "services")
# a reviewer's decisions: record_a, record_b, decision (must_link | must_not_link)
DECISIONS_FILE = "restricted/linkage/review_decisions.csv"
HISTOGRAM_LOW, HISTOGRAM_HIGH, HISTOGRAM_STEP = -20, 40, 5  # match weight bins


def year_identities(wh: Warehouse, year: int) -> pl.LazyFrame:
    return identities(*(wh.scan(staged_table(SOURCES[n]), [year]) for n in LINKED_SOURCES))


def read_decisions(root: Path) -> pl.DataFrame:
    path = root / DECISIONS_FILE
    if not path.exists():
        return pl.DataFrame(schema=DECISIONS_SCHEMA)
    return pl.read_csv(path, schema_overrides=DECISIONS_SCHEMA).select(list(DECISIONS_SCHEMA))


def model_for(
    wh: Warehouse, year: int, recs: YearRecords, log: dg.DagsterLogManager
) -> tuple[int, lm.Model]:
    """The warehouse's current model; on a warehouse with none, one trained on this year's
    identity variants."""
    version = lm.current_version(wh.root)
    if version is not None:
        return version, lm.Model.load(lm.model_dir(wh.root, version))
    reason = f"no model in the warehouse: trained on {year}"
    version, model = lm.train_version(wh, recs.variants, reason)
    log.info(
        f"the warehouse had no linkage model: trained version {version} on "
        f"{model.trained_on:,} identity variants of {year}; later years and re-runs reuse it"
    )
    return version, model


def _quality(result: YearLinks, model: lm.Model, version: int) -> dict[str, dg.MetadataValue]:
    """What evaluators see of linkage: counts and distributions, never an identifier."""
    links = result.links
    weights = result.pairs.get_column("match_weight")
    hist = (
        pl.DataFrame({"w": weights})
        .with_columns(
            (pl.col("w").clip(HISTOGRAM_LOW, HISTOGRAM_HIGH) // HISTOGRAM_STEP * HISTOGRAM_STEP)
            .cast(pl.Int64)
        )
        .group_by("w")
        .len("pairs")
        .sort("w")
    )
    sizes = links.group_by("person_key").len("records").group_by("records").len("persons")
    linked = links.join(links.group_by("person_key").agg(pl.col("source").n_unique().alias("k")),
                        on="person_key")  # fmt: skip
    per_org = linked.group_by("source", "org_id").agg(
        pl.len().alias("records"),
        (pl.col("k") > 1).mean().round(4).alias("share_linked_to_another_source"),
    ).sort("source", "org_id")
    params = model.parameters().with_columns(pl.col(pl.Float64).round(6))
    # persons of this year's records by the sectors they appear in
    sectors = links.group_by("person_key").agg(
        (pl.col("source") != "services").any().alias("public"),
        (pl.col("source") == "services").any().alias("nonprofit"),
    )
    both = sectors.filter(pl.col("public") & pl.col("nonprofit")).height
    return {
        "model_version": version,
        "match_threshold": lm.MATCH_THRESHOLD,
        # candidate pairs the blocking rules gave, all scored by the model
        "comparisons": result.stats["candidate_pairs"],
        "identity_variants_new": result.stats["new_variants"],
        "name_guarded_wage_pairs": result.stats["guarded_pairs"],
        "borderline_pairs": result.review.height,
        "reviewer_decisions_applied": result.stats["decisions"],
        "persons_in_both_sectors": both,
        "cross_sector_overlap": round(both / max(1, sectors.filter("nonprofit").height), 4),
        "merges": result.merges.height,
        "splits": result.splits.height,
        "match_weight_histogram": dg.MetadataValue.md(bar_chart_markdown(
            hist.rename({"w": "match weight from"}), "match weight from", "pairs",
            "Scored pairs by match weight", log_y=True,
        )),
        "cluster_sizes": dg.MetadataValue.md(bar_chart_markdown(
            sizes.sort("records"), "records", "persons", "Persons by records linked", log_y=True
        )),
        "linked_share_by_partner": dg.MetadataValue.md(bar_chart_markdown(
            per_org.with_columns(pl.concat_str("source", "org_id", separator="/").alias("partner"))
            .select("partner", "records", "share_linked_to_another_source"),
            "partner", "share_linked_to_another_source",
            "Share of records linked to another source",
        )),
        "model_parameters": dg.MetadataValue.md(markdown_table(params)),
    }  # fmt: skip


_STAGED = [staged_table(SOURCES[n]).name for n in LINKED_SOURCES]
# what a year's linkage writes, in one release (the registry is its own, unpartitioned state)
LINKAGE_WRITES = [RECORD_LINKS, PERSON_KEY_MERGES, PERSON_KEY_SPLITS, LINKAGE_REVIEW,
                  IDENTITY_REGISTRY]  # fmt: skip
# the persons already known: the registry sums up every earlier year's record links
_EARLIER_LINKS = dg.AssetDep(RECORD_LINKS.name, partition_mapping=earlier_years())
_EARLIER_MERGES = dg.AssetDep(PERSON_KEY_MERGES.name, partition_mapping=earlier_years())
_DEPS = [*_STAGED, _EARLIER_LINKS, _EARLIER_MERGES]


@dg.multi_asset(
    specs=[
        table_spec(
            RECORD_LINKS, "link", _DEPS,
            RECORD_LINKS.description + " Probabilistic (Fellegi-Sunter, Splink), incremental:"
            " a year is scored against the identity registry of the persons already known.",
        ),
        *(table_spec(t, "link", _DEPS) for t in (PERSON_KEY_MERGES, PERSON_KEY_SPLITS,
                                                  LINKAGE_REVIEW)),
    ],
    partitions_def=yearly,
    ins=inputs(*_STAGED) | {"earlier_merges": dg.AssetIn(PERSON_KEY_MERGES.name)},
)  # fmt: skip
def linkage(
    context: dg.AssetExecutionContext, outcomes: OutcomesConfig, staged_spells: pl.LazyFrame,
    staged_wages: pl.LazyFrame, staged_services: pl.LazyFrame, earlier_merges: pl.LazyFrame,
):  # fmt: skip
    """Link this year's records against the persons already known; earlier keys stay."""
    year = partition_year(context)
    wh = outcomes.warehouse
    check_key_fingerprint(wh.root, outcomes.linkage_key)  # a warehouse keeps one key
    # locked from the start: the registry is read, then written
    with step_release(context, wh, LINKAGE_WRITES) as release:
        recs = variants_of(identities(staged_spells, staged_wages, staged_services))
        yield from _link(context, outcomes, year, recs, earlier_merges.collect(), release)


def _link(
    context: dg.AssetExecutionContext, outcomes: OutcomesConfig, year: int,
    recs: YearRecords, earlier_merges: pl.DataFrame, release: Release,
) -> Iterator[dg.Output]:  # fmt: skip
    """The linkage of one year; a re-run reads what the year's last run wrote (its own
    partitions) to keep its merges, splits and review queue."""
    wh = outcomes.warehouse
    version, model = model_for(wh, year, recs, context.log)
    registry = wh.read(IDENTITY_REGISTRY)
    before = wh.read(RECORD_LINKS, [year])
    result = link_year(
        recs, registry, model, outcomes.linkage_key, year,
        read_decisions(wh.root),
    )  # fmt: skip
    # a re-run keeps the merges this year caused before; a changed record is a recorded split
    merges = pl.concat([wh.read(PERSON_KEY_MERGES, [year]), result.merges]).unique().sort(
        "retired_key"
    )
    # a re-run of an old year resolves keys through the merges later years found too:
    # those partitions are this op's own output (state), not an input of the year
    later = [y for y in wh.years(PERSON_KEY_MERGES) if y > year]
    all_merges = pl.concat([earlier_merges, merges, wh.read(PERSON_KEY_MERGES, later)]).unique()
    splits = pl.concat(
        [
            wh.read(PERSON_KEY_SPLITS, [year]),
            result.splits.drop(lm.UNIQUE_ID),
            redelivery_splits(before, result.links, all_merges, year),
        ]
    ).unique().sort("old_key", "new_key")
    found = result.review.with_columns(pl.lit(year, pl.Int64).alias("year"))
    review = kept_review(wh.read(LINKAGE_REVIEW, [year]), found, result.links)
    wh.write(IDENTITY_REGISTRY, result.registry, release=release)
    quality = _quality(result, model, version)
    yield output(RECORD_LINKS, result.links, persons=result.stats["persons"], **quality)
    for table, df in ((PERSON_KEY_MERGES, merges), (PERSON_KEY_SPLITS, splits),
                      (LINKAGE_REVIEW, review)):  # fmt: skip
        yield output(table, df)


def relink_warehouse(wh: Warehouse, secret: str, version: int) -> Relinked:
    """Link the warehouse's whole history again with model `version` (on request only:
    `outcomes linkage train --relink`), writing every year's record links, the registry,
    and each key change as a merge or split of the latest year; the event is recorded."""
    check_key_fingerprint(wh.root, secret)
    years = wh.years(RECORD_LINKS)
    if not years:
        raise ValueError("nothing to re-link: the warehouse has no record links yet")
    model = lm.Model.load(lm.model_dir(wh.root, version))
    old = resolve(wh.read(RECORD_LINKS), wh.read(PERSON_KEY_MERGES))
    reason = f"re-linked with model v{version:04d}"
    out = relink(
        years, lambda y: variants_of(year_identities(wh, y)), old, model, secret, reason,
        read_decisions(wh.root),
    )  # fmt: skip
    last = years[-1]
    merges = pl.concat([wh.read(PERSON_KEY_MERGES, [last]), out.merges]).unique()
    splits = pl.concat([wh.read(PERSON_KEY_SPLITS, [last]), out.splits]).unique()
    targets = [(RECORD_LINKS, y) for y in years]
    targets += [(PERSON_KEY_MERGES, last), (PERSON_KEY_SPLITS, last), (IDENTITY_REGISTRY, None)]
    with wh.release(f"relink {years[0]}-{last}", targets) as release:  # all years, or none
        for y in years:
            wh.write(RECORD_LINKS, out.links.filter(pl.col("year") == y), y, release)
        wh.write(PERSON_KEY_MERGES, merges.sort("retired_key"), last, release)
        wh.write(PERSON_KEY_SPLITS, splits.sort("old_key", "new_key"), last, release)
        wh.write(IDENTITY_REGISTRY, out.registry, release=release)
    changes = f"{out.changed_records} records changed key: {out.merges.height} merges, "
    lm.record_event(wh, version, "relinked", f"{changes}{out.splits.height} splits")
    return out
