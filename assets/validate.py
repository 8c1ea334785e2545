"""Staging: every landing file of a year read, typed and checked; bad rows to quarantine.

One step per year stages every source, so the year's staged tables, its quarantine and
its load ledger are written once, together. Services come before client surveys: a
survey's client must be one its partner's services made known, this year or before.
"""

from datetime import UTC, datetime
from functools import cached_property

import dagster as dg
import polars as pl

from assets.common import inputs, output, partition_year, step_release, table_spec
from assets.ingest import landing
from assets.partitions import earlier_years, yearly
from assets.resources import OutcomesConfig
from outcomes import validate
from outcomes.charts import markdown_rows
from outcomes.ingest import LandingError, LandingFile, discover
from outcomes.schema import (
    KNOWN_CLIENTS,
    LOAD_LEDGER,
    QUARANTINE,
    SOURCES,
    Source,
    empty,
    staged_table,
)
from outcomes.suites import in_org, in_org_expr
from outcomes.validate import QuarantineThresholdError, StagedFile, check_threshold, stage_file
from outcomes.warehouse import conform

ZERO_PADDED = "zero_padded"  # metadata: number cells of ssn, zip, county_fips padded
# metadata of each staged partition: the threshold staging applied, and the worst file
QUARANTINE_LIMIT, WORST_FILE_SHARE, FILES = "quarantine_limit", "worst_file_share", "files"
QUARANTINE_BY_FILE = "quarantine_by_file"
SERVICES = SOURCES["services"]


class YearParameters:
    """The suites' parameters for one source and year, computed once: from the reference
    tables and, for client surveys, the clients each partner's services made known."""

    def __init__(
        self, source: Source, year: int, counties: pl.LazyFrame, partnerships: pl.LazyFrame,
        clients: dict[str, list[str]] | None = None,
    ):  # fmt: skip
        self.per_partner = source.name == "client_surveys"  # the one per-partner parameter
        self.clients = clients or {}
        self.base = validate.suite_parameters(
            source, year,
            county_fips=counties.select("county_fips").collect().to_series().to_list(),
            partnership_ids=(
                partnerships.select("partnership_id").collect().to_series().to_list()
                if source.name == "partnership_surveys" else None
            ),
        )  # fmt: skip

    def of_file(self, org_id: str) -> dict:
        """One partner's file: its own clients."""
        if not self.per_partner:
            return self.base
        return self.base | {"known_clients": self.clients.get(org_id, [])}

    def of_year(self, rows: pl.DataFrame) -> dict:
        """Every file of the year at once: a client is its partner's (suites.in_org).

        Only the known clients the rows name are passed: the others cannot change the
        result, and GX copies the whole value set each time it reads an expectation
        (a state's known clients made that check the slowest op of a run)."""
        if not self.per_partner:
            return self.base
        named = set(rows.select(in_org_expr("client_id")).to_series().drop_nulls().to_list())
        scoped = [k for org, ids in self.clients.items() for c in ids
                  if (k := in_org(org, c)) in named]  # fmt: skip
        return self.base | {"known_clients": scoped}


def known_clients(
    before: pl.LazyFrame, staged: pl.DataFrame, quarantined: pl.DataFrame, year: int
) -> pl.DataFrame:
    """KNOWN_CLIENTS of `year`: the clients known before it, and those of the year's
    services rows, staged or quarantined for another reason (a bad county must not lose
    the surveys)."""
    rejected = quarantined.filter(pl.col("source") == SERVICES.name).select(
        "org_id", client_id=pl.col("raw").str.json_path_match("$.client_id").str.strip_chars()
    )
    ids = pl.concat([before.select("org_id", "client_id").collect(),
                     staged.select("org_id", "client_id"), rejected])  # fmt: skip
    return (
        ids.drop_nulls().unique().sort("org_id", "client_id")
        .with_columns(year=pl.lit(year, pl.Int64))
    )  # fmt: skip


def clients_by_partner(known: pl.DataFrame) -> dict[str, list[str]]:
    per_org = known.group_by("org_id", maintain_order=True).agg("client_id")
    return dict(per_org.sort("org_id").iter_rows())


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


class SourceYear:
    """One source's files of a year, staged; `errors` names each file that failed."""

    def __init__(self, source: Source, year: int, files: list[LandingFile],
                 params: YearParameters, outcomes: OutcomesConfig):  # fmt: skip
        s = outcomes.settings
        self.source, self.year, self.limit = source, year, s.max_share(source.name)
        self.results: list[tuple[LandingFile, StagedFile]] = []
        self.errors: list[str] = []
        self.padded: dict[str, int] = {}  # number cells given back their zeros, per column
        for f in files:
            try:
                text, result = stage_file(f, params.of_file(f.org_id), s.caps)
                check_threshold(result, f.relative, self.limit)  # decided here, once
            except (LandingError, QuarantineThresholdError) as e:
                self.errors.append(str(e))
                continue
            self.results.append((f, result))
            for column, n in text.zero_padded.items():
                self.padded[column] = self.padded.get(column, 0) + n

    @cached_property
    def staged(self) -> pl.DataFrame:
        frames = [r.staged for _, r in self.results]
        if not frames:
            return empty(staged_table(self.source))
        return pl.concat(frames, how="vertical_relaxed").with_columns(year=self.year)

    @cached_property
    def quarantine(self) -> pl.DataFrame:
        frames = [r.quarantine for _, r in self.results]
        if not frames:
            return empty(QUARANTINE)
        return conform(pl.concat(frames, how="vertical_relaxed").with_columns(year=self.year),
                       QUARANTINE)  # fmt: skip

    def metadata(self, ledger: pl.DataFrame) -> dict[str, object]:
        """Counts and the threshold decision per file; the quarantine_rate check shows it."""
        mine = ledger.filter(pl.col("source") == self.source.name).with_columns(
            share=(pl.col("rows_quarantined") / pl.col("rows_read")).fill_nan(0.0)
        )
        return {
            FILES: mine.height,
            "rows_quarantined": int(mine["rows_quarantined"].sum()),
            "duplicates_collapsed": int(mine["duplicates_collapsed"].sum()),
            QUARANTINE_LIMIT: self.limit,
            WORST_FILE_SHARE: float(mine["share"].max() or 0.0),
            QUARANTINE_BY_FILE: dg.MetadataValue.md(markdown_rows(
                ["file", "rows read", "quarantined", "share"],
                [[r["file"], r["rows_read"], r["rows_quarantined"], f"{r['share']:.2%}"]
                 for r in mine.iter_rows(named=True)],
            )),
            ZERO_PADDED: sum(self.padded.values()),
            **{f"{ZERO_PADDED}_{c}": n for c, n in sorted(self.padded.items())},
        }


STAGED = [staged_table(s) for s in SOURCES.values()]
STAGING_WRITES = [*STAGED, QUARANTINE, LOAD_LEDGER, KNOWN_CLIENTS]
_KNOWN_BEFORE = dg.AssetDep(KNOWN_CLIENTS.name, partition_mapping=earlier_years())
_REFERENCE = ["counties", "partnerships"]


def _deps(source: Source) -> list:
    deps: list = [landing[source.name], *_REFERENCE]
    if source.name == "client_surveys":  # a response's client must be known to the partner
        deps.append(KNOWN_CLIENTS.name)
    return deps


@dg.multi_asset(
    specs=[
        *(table_spec(
            staged_table(s), "validate", _deps(s),
            staged_table(s).description
            + " Rows that break the suite go to quarantine; the file fails over the threshold.",
        ) for s in SOURCES.values()),
        table_spec(QUARANTINE, "validate", [landing[s] for s in SOURCES],
                   QUARANTINE.description + " Restricted: it holds raw values."),
        table_spec(LOAD_LEDGER, "validate", [landing[s] for s in SOURCES]),
        table_spec(KNOWN_CLIENTS, "validate", [landing[SERVICES.name], _KNOWN_BEFORE]),
    ],
    partitions_def=yearly,
    ins=inputs(*_REFERENCE) | {"known_before": dg.AssetIn(KNOWN_CLIENTS.name)},
)  # fmt: skip
def staging(
    context: dg.AssetExecutionContext, outcomes: OutcomesConfig, counties: pl.LazyFrame,
    partnerships: pl.LazyFrame, known_before: pl.LazyFrame,
):  # fmt: skip
    """Every landing file of the year: staged rows, quarantine and ledger, all or nothing."""
    year = partition_year(context)
    wh = outcomes.warehouse
    files = [f for f in discover(outcomes.settings.landing_dir) if f.year == year]
    with step_release(context, wh, STAGING_WRITES):
        done: dict[str, SourceYear] = {}
        known = None
        for source in SOURCES.values():
            if source.name == "client_surveys":
                services = done[SERVICES.name]
                known = known_clients(known_before, services.staged, services.quarantine, year)
            clients = clients_by_partner(known) if known is not None else None
            params = YearParameters(source, year, counties, partnerships, clients)
            mine = [f for f in files if f.source is source]
            done[source.name] = SourceYear(source, year, mine, params, outcomes)
        failed = {n: s.errors for n, s in done.items() if s.errors}
        if failed:
            raise dg.Failure(
                description="; ".join(f"{n} {year}: " + "; ".join(e) for n, e in failed.items()),
                metadata={"files_failed": sum(len(e) for e in failed.values())},
            )
        previous = wh.read(LOAD_LEDGER, [year])  # its own partition: keeps loaded_at
        ledger = pl.DataFrame(
            [ledger_row(f, r, previous) for s in done.values() for f, r in s.results],
            schema=LOAD_LEDGER.schema,
        )
        # in the order of their lineage: the surveys' known clients first
        yield output(KNOWN_CLIENTS, known, partners=known.get_column("org_id").n_unique())
        for s in done.values():
            staged = s.staged
            context.log.info(
                f"{s.source.name} {year}: {len(s.results)} files, {staged.height} rows staged, "
                f"{sum(r.rows_quarantined for _, r in s.results)} quarantined"
            )
            yield output(staged_table(s.source), staged, **s.metadata(ledger))
        yield output(QUARANTINE, pl.concat([s.quarantine for s in done.values()]))
        yield output(LOAD_LEDGER, ledger)
