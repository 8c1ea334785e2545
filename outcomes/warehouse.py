"""Reading and writing warehouse tables: Parquet (zstd), Hive `year=YYYY/`, atomic.

A step writes its tables inside one release (`Warehouse.release`, see
outcomes.release): they become visible together when the step ends, a step that
dies leaves the previous release whole, and no two writers write one partition at
once. A lone `write` is a release of one file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from outcomes import release as releases
from outcomes.config import PARQUET_COMPRESSION
from outcomes.schema import Table, Zone
from outcomes.zones import OWNER_ONLY_FILE, owner_only

DATA_FILE = "data.parquet"
class Warehouse:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    def table_dir(self, table: Table) -> Path:
        return self.root / table.zone.value / table.name

    def path(self, table: Table, year: int | None = None) -> Path:
        if table.by_year:
            if year is None:
                raise ValueError(f"{table.name} is partitioned by year: give a year")
            return self.table_dir(table) / f"year={year}" / DATA_FILE
        return self.table_dir(table) / DATA_FILE

    def partition(self, table: Table, year: int | None = None) -> str:
        """What a writer locks: the folder of one partition (or of an unpartitioned table)."""
        return releases.partition_of(self.root, self.path(table, year))

    @contextlib.contextmanager
    def release(
        self, label: str, targets: Iterable[tuple[Table, int | None]], wait: float | None = None
    ) -> Iterator[releases.Release]:
        """Lock the partitions a step writes; `write(..., release=r)` inside the block, and
        every file appears when it ends (none if it raises)."""
        targets = list(targets)
        with releases.release(self.root, label, {self.partition(t, y) for t, y in targets},
                              wait) as r:  # fmt: skip
            yield r
        if any(t.zone == Zone.RESTRICTED for t, _ in targets):
            owner_only(self.root / Zone.RESTRICTED.value)

    def write(
        self, table: Table, df: pl.DataFrame, year: int | None = None,
        release: releases.Release | None = None,
    ) -> Path:  # fmt: skip
        """Write one partition (or the whole unpartitioned table): in `release`, or alone."""
        if release is None:
            with self.release(f"write {table.name} {year or ''}".strip(), [(table, year)]) as r:
                return self.write(table, df, year, r)
        df = conform(df, table)
        if table.by_year:
            df = df.drop("year")
        mode = OWNER_ONLY_FILE if table.zone == Zone.RESTRICTED else None
        return release.stage(self.path(table, year), lambda tmp: write_parquet(df, tmp), mode)

    def recover(self) -> releases.Recovered:
        """Finish or undo what writers killed in this warehouse left behind."""
        return releases.sweep(self.root)

    def years(self, table: Table) -> list[int]:
        base = self.table_dir(table)
        if not base.exists():
            return []
        return sorted(
            int(p.parent.name.removeprefix("year=")) for p in base.glob(f"year=*/{DATA_FILE}")
        )

    def scan(self, table: Table, years: Iterable[int] | None = None) -> pl.LazyFrame:
        """The table as a lazy frame (with its year column), empty if nothing is written."""
        if not table.by_year:
            p = self.path(table)
            return pl.scan_parquet(p) if p.exists() else pl.LazyFrame(schema=table.schema)
        wanted = self.years(table) if years is None else sorted(set(years) & set(self.years(table)))
        if not wanted:
            return pl.LazyFrame(schema=table.schema)
        files = [self.path(table, y) for y in wanted]
        return pl.scan_parquet(
            files, hive_partitioning=True, hive_schema={"year": pl.Int64()}
        ).select(table.schema.keys())

    def read(self, table: Table, years: Iterable[int] | None = None) -> pl.DataFrame:
        return self.scan(table, years).collect()


def conform(df: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Exactly the table's columns, in order, with its dtypes: a schema drift fails here."""
    missing = [c for c in table.schema if c not in df.columns]
    if missing:
        raise ValueError(f"{table.name}: missing columns {missing}")
    return df.select(pl.col(c).cast(t) for c, t in table.schema.items())


def write_parquet(df: pl.DataFrame, path: Path) -> None:
    df.write_parquet(path, compression=PARQUET_COMPRESSION, statistics=True)
