"""Staging: every landing file of a year read, typed and checked; bad rows to quarantine."""

from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from assets.common import partition_year, step_release, table_asset
from assets.ingest import landing
from assets.partitions import years_up_to
from assets.resources import OutcomesConfig, written
from outcomes import validate
from outcomes.ingest import LandingError, LandingFile, discover
from outcomes.release import Release
from outcomes.schema import (
    LOAD_LEDGER,
    QUARANTINE,
    SOURCES,
    Source,
    Table,
    empty,
    ledger_part,
    quarantine_part,
    reference_table,
    staged_table,
)
from outcomes.suites import in_org
from outcomes.validate import (
    QuarantineThresholdError,
    StagedFile,
    check_threshold,
    stage_file,
)
from outcomes.warehouse import Warehouse

ZERO_PADDED = "zero_padded"  # metadata: number cells of ssn, zip, county_fips padded


class YearParameters:
    """The suites' parameters for one source and year, computed once: from the reference
    tables and, for client surveys, the clients each partner's services made known."""

    def __init__(self, source: Source, year: int, wh: Warehouse):
        self.per_partner = source.name == "client_surveys"  # the one per-partner parameter
        self.clients = known_clients(wh, year) if self.per_partner else {}
        self.base = validate.suite_parameters(
            source, year,
            county_fips=wh.read(reference_table("counties")).get_column("county_fips").to_list(),
            partnership_ids=(
                wh.read(reference_table("partnerships")).get_column("partnership_id").to_list()
                if source.name == "partnership_surveys" else None
            ),
        )  # fmt: skip

    def of_file(self, org_id: str) -> dict:
        """One partner's file: its own clients."""
        if not self.per_partner:
            return self.base
        return self.base | {"known_clients": self.clients.get(org_id, [])}

    def of_year(self) -> dict:
        """Every file of the year at once: a client is its partner's (suites.in_org)."""
        if not self.per_partner:
            return self.base
        scoped = [in_org(org, c) for org, ids in self.clients.items() for c in ids]
        return self.base | {"known_clients": scoped}


def known_clients(wh: Warehouse, year: int) -> dict[str, list[str]]:
    """Per partner, the client ids in any row of its services files of `year` or earlier,
    even a row quarantined for another reason (a bad county must not lose the surveys)."""
    services = SOURCES["services"]
    years = range(0, year + 1)
    staged = wh.scan(staged_table(services), years).select("org_id", "client_id")
    rejected = wh.scan(quarantine_part(services), years).select(
        "org_id", client_id=pl.col("raw").str.json_path_match("$.client_id").str.strip_chars()
    )
    ids = pl.concat([staged, rejected]).drop_nulls().unique().sort("org_id", "client_id")
    per_org = ids.group_by("org_id", maintain_order=True).agg("client_id").collect()
    return dict(per_org.iter_rows())


def ledger_row(f: LandingFile, result: StagedFile, previous: pl.DataFrame) -> dict:
    """A file's ledger entry; re-loading the same bytes keeps its first loaded_at."""
    sha = f.sha256()
    before = previous.filter((pl.col("file") == f.relative) & (pl.col("file_sha256") == sha))
    loaded_at = before["loaded_at"][0] if before.height else datetime.now(UTC)
    return {
        "source": f.source.name, "org_id": f.org_id, "year": f.year, "file": f.relative,
        "file_sha256": sha, "rows_read": result.rows_read,
        "rows_staged": result.staged.height, "rows_quarantined": result.rows_quarantined,
        "duplicates_collapsed": result.duplicates_collapsed,
        "invalid_ssn": result.invalid_ssn, "loaded_at": loaded_at,
    }  # fmt: skip


def stage_year(
    source: Source, year: int, outcomes: OutcomesConfig, release: Release
) -> dict[str, int]:
    """Stage every file of one source and year; all or nothing for the partition."""
    s, wh = outcomes.settings, outcomes.warehouse
    files = [f for f in discover(s.landing_dir) if f.source is source and f.year == year]
    results, errors = [], []
    padded: dict[str, int] = {}  # number cells given back their leading zeros, per column
    params = YearParameters(source, year, wh)
    for f in files:
        try:
            text, result = stage_file(f, params.of_file(f.org_id), s.caps)
            check_threshold(result, f.relative, s.max_share(source.name))
            results.append((f, result))
            for column, n in text.zero_padded.items():
                padded[column] = padded.get(column, 0) + n
        except (LandingError, QuarantineThresholdError) as e:
            errors.append(str(e))
    if errors:
        raise dg.Failure(
            description=f"{source.name} {year}: " + "; ".join(errors),
            metadata={"files_failed": len(errors)},
        )
    table = staged_table(source)
    staged = pl.concat([r.staged for _, r in results], how="vertical_relaxed") if results else None
    staged = empty(table) if staged is None else staged.with_columns(pl.lit(year).alias("year"))
    previous_ledger = wh.read(ledger_part(source), [year])
    ledger = pl.DataFrame(
        [ledger_row(f, r, previous_ledger) for f, r in results], schema=LOAD_LEDGER.schema
    )
    quarantine = (
        pl.concat([r.quarantine for _, r in results], how="vertical_relaxed").with_columns(
            pl.lit(year).alias("year")
        )
        if results
        else empty(QUARANTINE)
    )
    wh.write(quarantine_part(source), quarantine, year, release)
    wh.write(ledger_part(source), ledger, year, release)
    path = wh.write(table, staged, year, release)
    return {
        "rows": staged.height,
        "path": str(path),
        "files": len(files),
        "rows_quarantined": quarantine.height,
        "duplicates_collapsed": int(ledger["duplicates_collapsed"].sum()),
        ZERO_PADDED: sum(padded.values()),
        **{f"{ZERO_PADDED}_{c}": n for c, n in sorted(padded.items())},
    }


def _deps(source: Source) -> list:
    deps: list = [landing[source.name], "counties"]
    if source.name == "client_surveys":  # a response's client must be known to the partner
        deps.append(dg.AssetDep("staged_services", partition_mapping=years_up_to()))
    if source.name == "partnership_surveys":
        deps.append("partnerships")
    return deps


def staged_asset(source: Source) -> dg.AssetsDefinition:
    table = staged_table(source)

    @table_asset(
        table,
        "validate",
        _deps(source),
        table.description
        + " Rows that break the suite go to quarantine; the file fails over the threshold.",
    )
    def _staged(
        context: dg.AssetExecutionContext, outcomes: OutcomesConfig
    ) -> dg.MaterializeResult:
        year = partition_year(context)
        targets = [quarantine_part(source), ledger_part(source), table]
        with step_release(context, outcomes.warehouse, targets) as release:
            stats = stage_year(source, year, outcomes, release)
        context.log.info(
            f"{source.name} {year}: {stats['files']} files, {stats['rows']} rows staged, "
            f"{stats['rows_quarantined']} quarantined"
        )
        return written(
            table, stats["rows"], stats["path"], files=stats["files"],
            rows_quarantined=stats["rows_quarantined"],
            **{k: v for k, v in stats.items() if k.startswith(ZERO_PADDED)},
            duplicates_collapsed=stats["duplicates_collapsed"],
        )  # fmt: skip

    return _staged


staged_assets = [staged_asset(s) for s in SOURCES.values()]
_STAGED_DEPS = [a.key for a in staged_assets]


def _combine_parts(
    context: dg.AssetExecutionContext, table: Table, part: Callable[[Source], Table], wh: Warehouse
) -> tuple[int, str]:
    year = partition_year(context)
    with step_release(context, wh, [table]) as release:
        df = pl.concat([wh.read(part(s), [year]) for s in SOURCES.values()],
                       how="vertical_relaxed")  # fmt: skip
        path = wh.write(table, df, year, release)
    return df.height, str(path)


@table_asset(
    QUARANTINE,
    "validate",
    _STAGED_DEPS,
    QUARANTINE.description + " Restricted: it holds raw values.",
)
def quarantine(context: dg.AssetExecutionContext, outcomes: OutcomesConfig) -> dg.MaterializeResult:
    rows, path = _combine_parts(context, QUARANTINE, quarantine_part, outcomes.warehouse)
    return written(QUARANTINE, rows, path)


@table_asset(LOAD_LEDGER, "validate", _STAGED_DEPS)
def load_ledger(
    context: dg.AssetExecutionContext, outcomes: OutcomesConfig
) -> dg.MaterializeResult:
    rows, path = _combine_parts(context, LOAD_LEDGER, ledger_part, outcomes.warehouse)
    return written(LOAD_LEDGER, rows, path)
