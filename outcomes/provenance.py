"""Provenance of published indicators: the input files, the code and the run behind each.

An indicator-year is computed from the linked inputs its definition reads
(`indicators.input_files`); those inputs were made from landing files that
load_ledger lists with the sha256 of the bytes parsed. Recording those files, the code
version and the Dagster run beside each published indicator-year lets an evaluator
say exactly what a number rests on (`outcomes provenance INDICATOR YEAR`).
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.metadata
import subprocess
from pathlib import Path

import polars as pl

from outcomes import schema
from outcomes.indicators import REGISTRY, input_files

PACKAGE = "outcomes"
_SOURCE_DIR = Path(__file__).resolve().parent


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=_SOURCE_DIR, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.cache
def code_version() -> str:
    """The package version, plus the git commit (and `.dirty` for local changes) when the
    code runs from a checkout: 0.1.0+g1a2b3c4d5e6f."""
    version = importlib.metadata.version(PACKAGE)
    commit = _git("rev-parse", "--short=12", "HEAD")
    if not commit:
        return version
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return f"{version}+g{commit}{'.dirty' if dirty else ''}"


def indicator_provenance(
    ledger: pl.DataFrame, year: int, run_id: str, version: str, at: dt.datetime
) -> pl.DataFrame:
    """INDICATOR_PROVENANCE of one year: per indicator, every ledger file its inputs read."""
    files = input_files(year)
    wanted = [
        (ind.indicator_id, source, input_year)
        for ind in REGISTRY.values()
        for name in ind.sources
        for source, years in files[name].items()
        for input_year in years
    ]
    keys = pl.DataFrame(
        wanted,
        schema={"indicator_id": pl.String, "source": pl.String, "year": pl.Int64},
        orient="row",
    ).unique()
    rows = keys.join(ledger, on=["source", "year"], how="inner").rename({"year": "input_year"})
    table = schema.INDICATOR_PROVENANCE.schema
    return (
        rows.with_columns(
            year=pl.lit(year),
            run_id=pl.lit(run_id),
            code_version=pl.lit(version),
            computed_at=pl.lit(at).dt.convert_time_zone("UTC"),
        )
        .select(list(table))
        .cast(table)
        .sort("indicator_id", "source", "input_year", "org_id", "file")
    )
