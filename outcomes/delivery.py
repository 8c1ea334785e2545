"""A delivery checked before it is sent (`outcomes validate`).

The partner's mapping and the suites are applied file by file exactly as a run
would (outcomes.validate.stage_file), the rows that would be quarantined are
named by line and rule, never by value, and each file says whether it would
fail its partition. Nothing is written anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from outcomes.config import LandingCaps
from outcomes.ingest import LINE, LandingError, LandingFile, discover, read_text
from outcomes.schema import SOURCES
from outcomes.validate import (
    REASONS,
    QuarantineThresholdError,
    check_threshold,
    read_references,
    stage_file,
    suite_parameters,
)

UNKNOWN_CLIENT = "client_id:unknown_client"


@dataclass(frozen=True)
class FileReport:
    """What a run would do with one file."""

    file: str
    max_share: float
    rows_read: int = 0
    quarantined: pl.DataFrame | None = None  # line and reasons: no values
    duplicates_collapsed: int = 0
    zero_padded: int = 0
    failure: str | None = None  # why the file's partition would fail
    note: str | None = None  # a rule this check could not judge

    @property
    def fails(self) -> bool:
        return self.failure is not None

    @property
    def rows_quarantined(self) -> int:
        return 0 if self.quarantined is None else self.quarantined.height


def _selected(files: list[LandingFile], landing_dir: Path, wanted: Collection[str]) -> list:
    """The landing files named (paths inside the delivery, or paths to files in it)."""
    if not wanted:
        return files
    by_path = {f.relative: f for f in files}
    root = landing_dir.resolve()
    out = []
    for name in wanted:
        p = Path(name)
        if p.is_absolute() or p.exists():
            p = p.resolve()
            rel = p.relative_to(root).as_posix() if p.is_relative_to(root) else None
        else:
            rel = p.as_posix()
        if rel not in by_path:
            raise LandingError(
                f"{name}: not a contract file of {landing_dir} (e.g. "
                "nonprofit/<partner_id>/services_YYYY.csv, public/<agency_id>/spells_YYYY.xlsx)"
            )
        out.append(by_path[rel])
    return out


def _client_ids(services: list[LandingFile], caps: LandingCaps) -> list[str] | None:
    """Client ids in any row of these services files (None when none can be read)."""
    ids: list[pl.Series] = []
    for f in services:
        try:
            ids.append(read_text(f, caps=caps).rows.get_column("client_id"))
        except LandingError:
            continue  # its own report says why
    if not ids:
        return None
    return pl.concat(ids).drop_nulls().unique().sort().to_list()


def check_delivery(
    landing_dir: Path,
    *,
    max_share: Callable[[str], float],
    years: range,
    reference_dir: Path | None = None,
    files: Collection[str] = (),
    caps: LandingCaps | None = None,
) -> list[FileReport]:
    """Every contract file of the delivery (or those named), as a run would stage it.

    Raises LandingError when the delivery cannot be checked at all: a reference file
    missing or broken, a symbolic link, two files for one slot, a name not in it.
    """
    caps = caps or LandingCaps()
    references = read_references(reference_dir or landing_dir)
    counties = references["counties"].get_column("county_fips").to_list()
    partnerships = references["partnerships"].get_column("partnership_id").to_list()
    found = discover(landing_dir)
    services = [f for f in found if f.source is SOURCES["services"]]
    reports = []
    for f in _selected(found, landing_dir, files):
        share = max_share(f.source.name)
        if f.year not in years:
            reports.append(FileReport(f.relative, share, failure=(
                f"{f.relative}: year {f.year} is outside the partitions "
                f"{years.start}-{years.stop - 1}")))  # fmt: skip
            continue
        known, unchecked, note = None, (), None
        if f.source is SOURCES["client_surveys"]:
            history = [s for s in services if s.org_id == f.org_id and s.year <= f.year]
            known = _client_ids(history, caps)
            if known is None:
                unchecked = (UNKNOWN_CLIENT,)
                note = (f"{UNKNOWN_CLIENT} not checked: no readable services file of "
                        f"{f.org_id} for {f.year} or earlier in this delivery")  # fmt: skip
        params = suite_parameters(f.source, f.year, county_fips=counties,
                                  partnership_ids=partnerships, known_clients=known)  # fmt: skip
        try:
            text, staged = stage_file(f, params, caps, unchecked)
        except LandingError as e:
            reports.append(FileReport(f.relative, share, failure=str(e), note=note))
            continue
        failure = None
        try:
            check_threshold(staged, f.relative, share)
        except QuarantineThresholdError as e:
            failure = str(e)
        reports.append(FileReport(
            f.relative, share, rows_read=staged.rows_read,
            quarantined=staged.quarantine.select(LINE, REASONS).sort(LINE),
            duplicates_collapsed=staged.duplicates_collapsed,
            zero_padded=sum(text.zero_padded.values()), failure=failure, note=note,
        ))  # fmt: skip
    return reports


def report_lines(reports: list[FileReport], max_rows: int) -> list[str]:
    """The check as text: per file a verdict, then up to max_rows quarantined lines."""
    out = []
    for r in reports:
        verdict = "FAILS its partition" if r.fails else "passes"
        share = f"{r.rows_quarantined / r.rows_read:.1%}" if r.rows_read else "0.0%"
        out.append(
            f"{r.file}: {verdict}; {r.rows_read:,} rows read, {r.rows_quarantined:,} would be "
            f"quarantined ({share}, limit {r.max_share:.0%})"
            + (f", {r.duplicates_collapsed:,} identical rows collapsed"
               if r.duplicates_collapsed else "")
            + (f", {r.zero_padded:,} number cells given their leading zeros"
               if r.zero_padded else "")
        )  # fmt: skip
        if r.failure:
            out.append(f"  why: {r.failure}")
        if r.note:
            out.append(f"  note: {r.note}")
        if r.quarantined is not None:
            for line, reasons in r.quarantined.head(max_rows).iter_rows():
                out.append(f"  line {line}: {', '.join(reasons)}")
            if r.rows_quarantined > max_rows:
                out.append(f"  ... and {r.rows_quarantined - max_rows:,} more rows")
    failing = sum(r.fails for r in reports)
    out.append(
        f"{len(reports)} file(s) checked, {failing} would fail"
        + ("" if failing else ": the delivery can be sent")
    )
    return out
