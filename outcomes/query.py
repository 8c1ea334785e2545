"""DuckDB over the warehouse: analysts query the analytic and published zones in place."""

from __future__ import annotations

from pathlib import Path

import duckdb

from outcomes.schema import Zone

QUERYABLE = (Zone.ANALYTIC, Zone.PUBLISHED)  # never the restricted zone


def connect(warehouse_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per table; Parquet is read where it lies."""
    con = duckdb.connect()
    for zone in QUERYABLE:
        base = Path(warehouse_dir) / zone.value
        if not base.exists():
            continue
        for table in sorted(
            p for p in base.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
        ):
            partitioned = any(table.glob("year=*/*.parquet"))
            pattern = table / ("*/*.parquet" if partitioned else "*.parquet")
            if not any(table.glob("**/*.parquet")):
                continue
            con.execute(
                f"create view {table.name} as select * from read_parquet("
                f"'{pattern.as_posix()}', hive_partitioning = {str(partitioned).lower()})"
            )
    return con
