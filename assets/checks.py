"""Asset checks on every staged source, shown in the Dagster UI beside each partition.

Each check is its own step, partitioned like its asset, and takes the staged partition
(and the tables it compares it with) from the warehouse IO manager.

- suite (blocking): Great Expectations runs the source's suite over what was staged,
  one batch per source and year (a partner's own client ids are checked as such:
  outcomes.suites.ORG_SCOPED); the staged rows must pass every expectation.
- quarantine_rate (blocking): no file quarantined more than its threshold, as staging
  decided it (the check reports the decision recorded on the staged partition).
- nothing_lost (blocking): rows read = staged + quarantined + collapsed, for every
  file, and the tables on disk hold exactly those counts; it also reports how many
  number cells of ssn, zip and county_fips staging gave back their leading zeros.
- columns_unchanged (warning): a partner's delivery has the same columns as the
  year before.

Metadata carries counts, rule names and line numbers only: never a value.
"""

import warnings
from collections.abc import Sequence

import dagster as dg
import polars as pl

from assets.common import materialized
from assets.partitions import yearly
from assets.resources import OutcomesConfig
from assets.validate import (
    FILES,
    QUARANTINE_BY_FILE,
    QUARANTINE_LIMIT,
    WORST_FILE_SHARE,
    ZERO_PADDED,
    YearParameters,
    clients_by_partner,
)
from outcomes.charts import markdown_rows
from outcomes.ingest import LandingError, discover, read_header
from outcomes.schema import (
    KNOWN_CLIENTS,
    LOAD_LEDGER,
    QUARANTINE,
    REFERENCE,
    SOURCES,
    Source,
    Table,
    Zone,
    reference_table,
    staged_table,
)
from outcomes.suites import SuiteResult, run_suite
from outcomes.validate import REASONS
from outcomes.warehouse import Warehouse

# checks are partitioned like their assets: a preview feature, and the one that fits
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")

SUITE = "suite"
QUARANTINE_RATE = "quarantine_rate"
NOTHING_LOST = "nothing_lost"
COLUMNS_UNCHANGED = "columns_unchanged"
EXAMPLE_LINES = 10
DATA_DOCS = "data_docs"


def data_docs_dir(wh: Warehouse, source: Source):
    return wh.root / Zone.RESTRICTED.value / DATA_DOCS / source.name


def _md_table(header: list[str], rows: list[list[object]]) -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_rows(header, rows))


def quarantine_summary(quarantine: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    """Top reasons and a few failing lines: rule names and line numbers, no values."""
    reasons = quarantine.select(pl.col(REASONS).explode()).to_series().value_counts(sort=True)
    examples = quarantine.sort("file", "line").head(EXAMPLE_LINES)
    return {
        "top_reasons": _md_table(["rule", "rows"], [list(r) for r in reasons.head(5).rows()]),
        "example_failing_lines": _md_table(
            ["file", "line", "rules"],
            [[r["file"], r["line"], ", ".join(r[REASONS])] for r in examples.iter_rows(named=True)],
        ),
    }


def _suite_metadata(
    results: dict[str, SuiteResult], staged: pl.DataFrame, quarantine: pl.DataFrame
) -> dict:
    counts = dict(quarantine.select(pl.col(REASONS).explode()).to_series().value_counts().rows())
    table = [
        [o.rule, o.expectation, o.column, "pass" if o.success else "FAIL", counts.get(o.rule, 0)]
        for result in results.values() for o in result.outcomes
    ]  # fmt: skip
    errors = sorted({o.error for r in results.values() for o in r.outcomes if o.error})
    meta: dict = {
        "files_validated": staged.get_column("file").n_unique() if results else 0,
        "rows_validated": sum(r.rows for r in results.values()),
        "expectations": _md_table(
            ["rule", "expectation", "column", "staged rows", "rows quarantined by the rule"],
            table,
        ),
        **quarantine_summary(quarantine),
    }
    if errors:  # a failed suite can be a configuration bug: say so
        meta["gx_errors"] = dg.MetadataValue.md("\n".join(f"- {e[:300]}" for e in errors))
    return meta


def _staged_check(source: Source, name: str, description: str, *, blocking: bool = True,
                  ins: Sequence[Table] = ()):  # fmt: skip
    """A check on one staged source, partitioned by year like its asset. The check gets
    the staged partition as `staged` and each of `ins` (the same year) by its name."""
    staged = staged_table(source).name
    return dg.multi_asset_check(
        name=f"{staged}_{name}",
        specs=[dg.AssetCheckSpec(name, asset=staged, blocking=blocking, partitions_def=yearly,
                                 description=description,
                                 additional_deps=[t.name for t in ins])],
        ins={"staged": dg.AssetIn(staged), **{t.name: dg.AssetIn(t.name) for t in ins}},
    )  # fmt: skip


def _suite_result(
    source: Source, context: dg.AssetCheckExecutionContext, outcomes: OutcomesConfig,
    staged: pl.LazyFrame, counties: pl.LazyFrame, partnerships: pl.LazyFrame,
    quarantine: pl.LazyFrame, known: pl.LazyFrame | None = None,
) -> dg.AssetCheckResult:  # fmt: skip
    year = int(context.partition_key)
    rows = staged.collect()
    clients = clients_by_partner(known.collect()) if known is not None else None
    params = YearParameters(source, year, counties, partnerships, clients)
    # one GX batch for the source-year: its fixed cost is paid once, not per file
    batches = {f"{source.name} {year}": (rows, params.of_year(rows))} if rows.height else {}
    docs = data_docs_dir(outcomes.warehouse, source)
    results = run_suite(source.name, batches, source.dtypes, docs) if batches else {}
    meta = _suite_metadata(results, rows, quarantine.filter(pl.col("source") == source.name)
                           .collect())  # fmt: skip
    if results:
        meta["data_docs"] = dg.MetadataValue.path(str(docs / "index.html"))
    return dg.AssetCheckResult(passed=all(r.success for r in results.values()), metadata=meta)


def suite_check(source: Source) -> dg.AssetChecksDefinition:
    per_partner = source.name == "client_surveys"  # its clients: those its services made known
    decorate = _staged_check(
        source,
        SUITE,
        f"Great Expectations runs expectations/{source.name}.json over every "
        "staged file; every expectation must pass. Data Docs in the restricted zone.",
        ins=[reference_table("counties"), reference_table("partnerships"), QUARANTINE,
             *([KNOWN_CLIENTS] if per_partner else [])],
    )  # fmt: skip
    if per_partner:
        @decorate
        def _partner_suite(context: dg.AssetCheckExecutionContext, outcomes: OutcomesConfig,
                           staged: pl.LazyFrame, counties: pl.LazyFrame,
                           partnerships: pl.LazyFrame, quarantine: pl.LazyFrame,
                           known_clients: pl.LazyFrame):  # fmt: skip
            yield _suite_result(source, context, outcomes, staged, counties, partnerships,
                                quarantine, known_clients)  # fmt: skip

        return _partner_suite

    @decorate
    def _suite(context: dg.AssetCheckExecutionContext, outcomes: OutcomesConfig,
               staged: pl.LazyFrame, counties: pl.LazyFrame, partnerships: pl.LazyFrame,
               quarantine: pl.LazyFrame):  # fmt: skip
        yield _suite_result(source, context, outcomes, staged, counties, partnerships,
                            quarantine)  # fmt: skip

    return _suite


def quarantine_rate_check(source: Source) -> dg.AssetChecksDefinition:
    @_staged_check(
        source,
        QUARANTINE_RATE,
        "No file quarantined more than its share of rows "
        "(OUTCOMES_MAX_QUARANTINE_SHARE, or _<SOURCE> for one source): what staging "
        "decided, reported.",
    )
    def _rate(context: dg.AssetCheckExecutionContext, staged: pl.LazyFrame):
        # staging applied the limit to each file and recorded it: nothing is decided twice
        decided = materialized(context.instance, staged_table(source).name,
                               context.partition_key)  # fmt: skip
        limit, worst = decided.get(QUARANTINE_LIMIT), decided.get(WORST_FILE_SHARE)
        yield dg.AssetCheckResult(
            passed=limit is not None and worst is not None and worst <= limit,
            metadata={
                "limit": limit, "worst_file_share": worst,
                FILES: dg.MetadataValue.md(str(decided.get(QUARANTINE_BY_FILE, ""))),
            },
        )  # fmt: skip

    return _rate


def nothing_lost_check(source: Source) -> dg.AssetChecksDefinition:
    @_staged_check(
        source,
        NOTHING_LOST,
        "For every file: rows read = staged + quarantined + duplicates "
        "collapsed, and the staged and quarantine tables hold exactly those rows.",
        ins=[QUARANTINE, LOAD_LEDGER],
    )
    def _lost(context: dg.AssetCheckExecutionContext, staged: pl.LazyFrame,
              quarantine: pl.LazyFrame, load_ledger: pl.LazyFrame):  # fmt: skip
        mine = pl.col("source") == source.name
        on_disk = [
            frame.group_by("file").agg(pl.len().alias(name)).collect()
            for frame, name in ((staged, "staged_on_disk"),
                                (quarantine.filter(mine), "q_on_disk"))
        ]  # fmt: skip
        ledger = load_ledger.filter(mine).collect()
        for counts in on_disk:
            ledger = ledger.join(counts, on="file", how="left")
        ledger = ledger.with_columns(pl.col("staged_on_disk", "q_on_disk").fill_null(0))
        # staging counts the number cells it padded (not a ledger column in the contract)
        decided = materialized(context.instance, staged_table(source).name,
                               context.partition_key)  # fmt: skip
        broken = ledger.filter(
            (
                pl.col("rows_read")
                != pl.col("rows_staged")
                + pl.col("rows_quarantined")
                + pl.col("duplicates_collapsed")
            )
            | (pl.col("rows_staged") != pl.col("staged_on_disk"))
            | (pl.col("rows_quarantined") != pl.col("q_on_disk"))
        )
        yield dg.AssetCheckResult(
            passed=broken.is_empty(),
            metadata={
                "files": ledger.height,
                "rows_read": int(ledger["rows_read"].sum()),
                "rows_staged": int(ledger["rows_staged"].sum()),
                "rows_quarantined": int(ledger["rows_quarantined"].sum()),
                "duplicates_collapsed": int(ledger["duplicates_collapsed"].sum()),
                "files_out_of_balance": broken.get_column("file").to_list(),
                **{k: v for k, v in decided.items() if k.startswith(ZERO_PADDED)},
            },
        )

    return _lost


def columns_check(source: Source) -> dg.AssetChecksDefinition:
    @_staged_check(
        source,
        COLUMNS_UNCHANGED,
        "Warns when an organisation's file has other columns than its "
        "delivery of the year before (a changed export can break a mapping).",
        blocking=False,
    )
    def _columns(context: dg.AssetCheckExecutionContext, outcomes: OutcomesConfig,
                 staged: pl.LazyFrame):  # fmt: skip
        year = int(context.partition_key)
        files = {
            (f.org_id, f.year): f
            for f in discover(outcomes.settings.landing_dir)
            if f.source is source and f.year in (year, year - 1)
        }
        changes = []
        for (org, y), f in sorted(files.items()):
            before = files.get((org, y - 1))
            if y != year or before is None:
                continue
            try:
                now, then = set(read_header(f)), set(read_header(before))
            except LandingError as e:
                changes.append([f.relative, "unreadable", str(e)[:120]])
                continue
            if now != then:
                changes.append(
                    [
                        f.relative,
                        ", ".join(sorted(now - then)) or "-",
                        ", ".join(sorted(then - now)) or "-",
                    ]
                )
        yield dg.AssetCheckResult(
            passed=not changes,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "files_compared": sum(1 for (o, y) in files if y == year and (o, y - 1) in files),
                "changes": _md_table(["file", "added", "removed"], changes),
            },
        )

    return _columns


staged_checks = [
    factory(source)
    for source in SOURCES.values()
    for factory in (suite_check, quarantine_rate_check, nothing_lost_check, columns_check)
]


def _reference_result(name: str, reference: pl.LazyFrame, counties: pl.LazyFrame):
    rows = reference.collect()
    fips = counties.select("county_fips").collect().to_series().to_list()
    result = run_suite(name, {name: (rows, {"county_fips": fips})}, reference_table(name).schema)
    return dg.AssetCheckResult(
        passed=result[name].success,
        metadata={
            "rows_validated": result[name].rows,
            "failed_expectations": [o.rule for o in result[name].failed],
        },
    )


def reference_suite_check(name: str) -> dg.AssetChecksDefinition:
    """The reference file's suite; its county lists are checked against the counties."""
    of_counties = name == "counties"
    decorate = dg.multi_asset_check(
        name=f"{name}_{SUITE}",
        specs=[dg.AssetCheckSpec(
            SUITE, asset=name, blocking=True,
            additional_deps=[] if of_counties else ["counties"],
            description=f"Great Expectations runs expectations/{name}.json over the "
            "reference table.",
        )],
        ins={"reference": dg.AssetIn(name), **({} if of_counties else {"counties": "counties"})},
    )  # fmt: skip
    if of_counties:
        @decorate
        def _counties(reference: pl.LazyFrame):
            yield _reference_result(name, reference, reference)

        return _counties

    @decorate
    def _suite(reference: pl.LazyFrame, counties: pl.LazyFrame):
        yield _reference_result(name, reference, counties)

    return _suite


reference_checks = [reference_suite_check(name) for name in REFERENCE]
