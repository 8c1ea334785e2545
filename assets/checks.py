"""Asset checks on every staged source, shown in the Dagster UI beside each partition.

- suite (blocking): Great Expectations runs the source's suite over what was staged,
  one batch per source and year (a partner's own client ids are checked as such:
  outcomes.suites.ORG_SCOPED); the staged rows must pass every expectation.
- quarantine_rate (blocking): no file quarantined more than its threshold.
- nothing_lost (blocking): rows read = staged + quarantined + collapsed, for every
  file, and the tables on disk hold exactly those counts; it also reports how many
  number cells of ssn, zip and county_fips staging gave back their leading zeros.
- columns_unchanged (warning): a partner's delivery has the same columns as the
  year before.

Metadata carries counts, rule names and line numbers only: never a value.
"""

import warnings

import dagster as dg
import polars as pl

from assets.common import materialized
from assets.partitions import yearly
from assets.resources import OutcomesConfig
from assets.validate import ZERO_PADDED, YearParameters
from outcomes.charts import markdown_rows
from outcomes.ingest import LandingError, discover, read_header
from outcomes.schema import (
    REFERENCE,
    SOURCES,
    Source,
    Zone,
    ledger_part,
    quarantine_part,
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


def _staged_check(source: Source, name: str, description: str, blocking: bool = True):
    """A check on one staged source, partitioned by year like its asset."""
    return dg.asset_check(
        asset=staged_table(source).name,
        name=name,
        blocking=blocking,
        partitions_def=yearly,
        description=description,
    )


def suite_check(source: Source) -> dg.AssetChecksDefinition:
    table = staged_table(source)

    @_staged_check(
        source,
        SUITE,
        f"Great Expectations runs expectations/{source.name}.json over every "
        "staged file; every expectation must pass. Data Docs in the restricted zone.",
    )
    def _suite(context: dg.AssetCheckExecutionContext, outcomes: OutcomesConfig):
        year = int(context.partition_key)
        wh = outcomes.warehouse
        staged = wh.read(table, [year])
        # one GX batch for the source-year: its fixed cost is paid once, not per file
        batch = (staged, YearParameters(source, year, wh).of_year())
        batches = {f"{source.name} {year}": batch} if staged.height else {}
        docs = data_docs_dir(wh, source)
        results = run_suite(source.name, batches, source.dtypes, docs) if batches else {}
        quarantine = wh.read(quarantine_part(source), [year])
        meta = _suite_metadata(results, staged, quarantine)
        if results:
            meta["data_docs"] = dg.MetadataValue.path(str(docs / "index.html"))
        return dg.AssetCheckResult(passed=all(r.success for r in results.values()), metadata=meta)

    return _suite


def quarantine_rate_check(source: Source) -> dg.AssetChecksDefinition:
    @_staged_check(
        source,
        QUARANTINE_RATE,
        "No file quarantined more than its share of rows "
        "(OUTCOMES_MAX_QUARANTINE_SHARE, or _<SOURCE> for one source).",
    )
    def _rate(context: dg.AssetCheckExecutionContext, outcomes: OutcomesConfig):
        year = int(context.partition_key)
        limit = outcomes.settings.max_share(source.name)
        ledger = outcomes.warehouse.read(ledger_part(source), [year]).with_columns(
            (pl.col("rows_quarantined") / pl.col("rows_read")).fill_nan(0).alias("share")
        )
        worst = float(ledger["share"].max() or 0.0)
        return dg.AssetCheckResult(
            passed=worst <= limit,
            metadata={
                "limit": limit,
                "worst_file_share": worst,
                "files": _md_table(
                    ["file", "rows read", "quarantined", "share"],
                    [
                        [r["file"], r["rows_read"], r["rows_quarantined"], f"{r['share']:.2%}"]
                        for r in ledger.iter_rows(named=True)
                    ],
                ),
            },
        )

    return _rate


def nothing_lost_check(source: Source) -> dg.AssetChecksDefinition:
    table = staged_table(source)

    @_staged_check(
        source,
        NOTHING_LOST,
        "For every file: rows read = staged + quarantined + duplicates "
        "collapsed, and the staged and quarantine tables hold exactly those rows.",
    )
    def _lost(context: dg.AssetCheckExecutionContext, outcomes: OutcomesConfig):
        year = int(context.partition_key)
        wh = outcomes.warehouse
        on_disk = [
            wh.read(t, [year]).group_by("file").agg(pl.len().alias(name))
            for t, name in ((table, "staged_on_disk"), (quarantine_part(source), "q_on_disk"))
        ]
        ledger = wh.read(ledger_part(source), [year])
        for counts in on_disk:
            ledger = ledger.join(counts, on="file", how="left")
        ledger = ledger.with_columns(pl.col("staged_on_disk", "q_on_disk").fill_null(0))
        # staging counts the number cells it padded (not a ledger column in the contract)
        staged = materialized(context.instance, table.name, context.partition_key)
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
        return dg.AssetCheckResult(
            passed=broken.is_empty(),
            metadata={
                "files": ledger.height,
                "rows_read": int(ledger["rows_read"].sum()),
                "rows_staged": int(ledger["rows_staged"].sum()),
                "rows_quarantined": int(ledger["rows_quarantined"].sum()),
                "duplicates_collapsed": int(ledger["duplicates_collapsed"].sum()),
                "files_out_of_balance": broken.get_column("file").to_list(),
                **{k: v for k, v in staged.items() if k.startswith(ZERO_PADDED)},
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
    def _columns(context: dg.AssetCheckExecutionContext, outcomes: OutcomesConfig):
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
        return dg.AssetCheckResult(
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


def reference_suite_check(name: str) -> dg.AssetChecksDefinition:
    table = reference_table(name)

    @dg.asset_check(
        asset=name,
        name=SUITE,
        blocking=True,
        description=f"Great Expectations runs expectations/{name}.json over the reference table.",
    )
    def _suite(outcomes: OutcomesConfig):
        wh = outcomes.warehouse
        counties = wh.read(reference_table("counties")).get_column("county_fips").to_list()
        result = run_suite(name, {name: (wh.read(table), {"county_fips": counties})}, table.schema)
        return dg.AssetCheckResult(
            passed=result[name].success,
            metadata={
                "rows_validated": result[name].rows,
                "failed_expectations": [o.rule for o in result[name].failed],
            },
        )

    return _suite


reference_checks = [reference_suite_check(name) for name in REFERENCE]
