"""Reading and writing warehouse tables: Parquet (zstd), Hive `year=YYYY/`, atomic.

Every write goes to a hidden file beside the target and is renamed over it, so a
run that dies leaves the previous output in place and readers never see half a
file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import polars as pl

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

    def write(self, table: Table, df: pl.DataFrame, year: int | None = None) -> Path:
        """Write one partition (or the whole unpartitioned table) atomically."""
        df = conform(df, table)
        if table.by_year:
            df = df.drop("year")
        target = self.path(table, year)
        private = table.zone == Zone.RESTRICTED
        write_atomic(df, target, private)
        if private:
            owner_only(target)
        return target

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


def write_atomic(df: pl.DataFrame, target: Path, private: bool = False) -> None:
    """Beside the target, then renamed over it; `private` files are 0600 before the rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        df.write_parquet(tmp, compression=PARQUET_COMPRESSION, statistics=True)
        if private:
            os.chmod(tmp, OWNER_ONLY_FILE)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
